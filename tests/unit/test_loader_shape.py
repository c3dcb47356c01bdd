"""One loader shape for every model kind: ``X.from_pretrained(name_or_dir, *, device=None, dtype=None)``."""

from __future__ import annotations

import inspect

import pytest
import torch

from speechkit.pipeline import Resynthesizer, SpeechContinuation
from speechkit.precision import resolve_precision
from speechkit.ulm import UnitLM
from speechkit.units import HubertFeatureReader, KMeansQuantizer, SpeechEncoder
from speechkit.vocoders import CodeHiFiGANVocoder, UnitMelVocoder, VocosVocoder
from speechkit.vocoders.hifigan.mel_vocoder import HiFiGANVocoder
from tests.unit.test_pipeline import tiny_encoder, tiny_vocoder

KINDS = [SpeechEncoder, HubertFeatureReader, KMeansQuantizer, UnitLM, CodeHiFiGANVocoder, UnitMelVocoder,
         VocosVocoder, HiFiGANVocoder, Resynthesizer, SpeechContinuation]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_every_kind_has_from_pretrained_with_keyword_device_and_dtype(kind):
    params = inspect.signature(kind.from_pretrained).parameters
    for name in ("device", "dtype"):
        assert name in params, f"{kind.__name__}.from_pretrained has no {name}="
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY and params[name].default is None


def test_device_and_dtype_reach_the_loaded_models(tmp_path):
    expected = resolve_precision("bf16", "cpu", what="test")  # bf16 where this CPU computes in it, else fp32
    enc, voc = tiny_encoder(), tiny_vocoder()
    enc.save_pretrained(tmp_path / "encoder")
    voc.save_pretrained(tmp_path / "vocoder")
    e = SpeechEncoder.from_pretrained(tmp_path / "encoder", device="cpu", dtype=torch.bfloat16)
    assert e.reader.autocast == (torch.bfloat16 if expected == "bf16" else None)
    assert SpeechEncoder.from_pretrained(tmp_path / "encoder", dtype=torch.float32).reader.autocast is None
    v = CodeHiFiGANVocoder.from_pretrained(tmp_path / "vocoder", device="cpu", dtype=torch.bfloat16)
    assert v.precision == expected and v.device.type == "cpu"
    reader = HubertFeatureReader.from_pretrained(tmp_path / "encoder" / "hubert", layer=1, dtype=torch.bfloat16)
    assert reader.layer == 1 and reader.autocast == (torch.bfloat16 if expected == "bf16" else None)
    km = KMeansQuantizer.from_pretrained(tmp_path / "encoder" / "kmeans.safetensors", device="cpu")
    assert torch.equal(km.centroids, enc.quantizer.centroids)
    with pytest.raises(ValueError, match="dtype must be torch.float32, torch.bfloat16 or torch.float16"):
        CodeHiFiGANVocoder.from_pretrained(tmp_path / "vocoder", dtype=torch.int8)
