"""One loader shape for every model kind: ``X.from_pretrained(name_or_dir, *, device=None, dtype=None)``."""

from __future__ import annotations

import ast
import inspect
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from speechkit.pipeline import Resynthesizer, SpeechContinuation
from speechkit.precision import resolve_precision
from speechkit.ulm import UnitLM
from speechkit.units import HubertFeatureReader, KMeansQuantizer, SpeechEncoder
from speechkit.units.hubert import HubertModel
from speechkit.vocoders import CodeHiFiGANVocoder, UnitMelVocoder, UnitVocoder, VocoderError, VocosVocoder
from speechkit.vocoders.hifigan.mel_vocoder import HiFiGANVocoder
from tests.unit.test_pipeline import tiny_encoder, tiny_vocoder

KINDS = [SpeechEncoder, HubertFeatureReader, HubertModel, KMeansQuantizer, UnitLM, CodeHiFiGANVocoder,
         UnitMelVocoder, UnitVocoder, VocosVocoder, HiFiGANVocoder, Resynthesizer, SpeechContinuation]
REPO = Path(__file__).resolve().parents[2]
VOCODER_DATA = REPO / "tests" / "data" / "vocoders"
#: what each deprecated name's warning must point to
DEPRECATED = {"HubertFeatureReader.from_checkpoint": "HubertFeatureReader.from_pretrained(path, layer=...)",
              "KMeansQuantizer.load": "KMeansQuantizer.from_pretrained(path)",
              "load_hubert": "HubertModel.from_pretrained(path)",
              "CodeHiFiGANVocoder.from_checkpoint": "CodeHiFiGANVocoder.from_pretrained(ckpt, config_path=",
              "HiFiGANVocoder.from_checkpoint": "HiFiGANVocoder.from_pretrained(ckpt, config_path=...)",
              "load_unit_vocoder": "UnitVocoder.from_pretrained(path, config_path="}


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


# ---------------------------------------------------------------- the deprecated names: thin aliases, one release


def _deprecated_call(name, fn, *args, **kwargs):
    """Calls an alias; checks it warns exactly once, with a DeprecationWarning naming the replacement, attributed to
    this file (stacklevel=2); returns its result."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    dep = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(dep) == 1, [str(w.message) for w in dep]
    msg = str(dep[0].message)
    assert msg.startswith(f"{name} is deprecated; use ") and DEPRECATED[name] in msg, msg
    assert Path(dep[0].filename) == Path(__file__), dep[0].filename
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("saved")
    tiny_encoder().save_pretrained(d / "encoder")
    tiny_vocoder().save_pretrained(d / "vocoder")
    return d


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_hubert_reader_from_checkpoint_is_an_alias(saved):
    path, wav = saved / "encoder" / "hubert", torch.randn(4000) * 0.3
    new = HubertFeatureReader.from_pretrained(path, layer=1, max_chunk=1600)
    old = _deprecated_call("HubertFeatureReader.from_checkpoint", HubertFeatureReader.from_checkpoint, path, 1, 1600)
    assert (old.layer, old.max_chunk) == (new.layer, new.max_chunk) == (1, 1600)
    _same_weights(old, new)
    assert torch.equal(old(wav), new(wav))
    with pytest.raises(ValueError, match="layer must be between 1 and 1"):  # still a CheckpointError, a ValueError
        _deprecated_call("HubertFeatureReader.from_checkpoint", HubertFeatureReader.from_checkpoint, path, layer=2)


def test_load_hubert_is_an_alias(saved):
    from speechkit.units.hubert import load_hubert

    path = saved / "encoder" / "hubert"
    model, config = _deprecated_call("load_hubert", load_hubert, path)
    new = HubertModel.from_pretrained(path)
    assert config == new.config and model.config == config and not model.training
    _same_weights(model, new)
    wav = torch.randn(1, 4000)
    assert torch.equal(model(wav, output_layer=1)[0], new(wav, output_layer=1)[0])


def test_hubert_model_from_pretrained_device_and_dtype(saved):
    m = HubertModel.from_pretrained(saved / "encoder" / "hubert", device="cpu", dtype=torch.bfloat16)
    assert {p.dtype for p in m.parameters()} == {torch.bfloat16} and m.config.num_layers == 1
    with pytest.raises(ValueError, match="dtype must be"):
        HubertModel.from_pretrained(saved / "encoder" / "hubert", dtype=torch.int8)


def test_kmeans_load_is_an_alias(saved):
    path = saved / "encoder" / "kmeans.safetensors"
    old = _deprecated_call("KMeansQuantizer.load", KMeansQuantizer.load, path)
    new = KMeansQuantizer.from_pretrained(path)
    assert torch.equal(old.centroids, new.centroids)
    feats = torch.randn(20, new.dim)
    assert torch.equal(old(feats), new(feats))


def test_code_hifigan_from_checkpoint_is_an_alias(saved):
    ckpt, cfg = VOCODER_DATA / "base" / "g_00000000", VOCODER_DATA / "base" / "config.json"
    new = CodeHiFiGANVocoder.from_pretrained(ckpt, config_path=cfg)
    old = _deprecated_call("CodeHiFiGANVocoder.from_checkpoint", CodeHiFiGANVocoder.from_checkpoint, ckpt, cfg)
    _same_weights(old, new)
    units = torch.tensor([3, 3, 7, 1, 1, 1, 9])
    assert torch.equal(old(units), new(units))
    # speechkit folders too, as from_checkpoint read them
    folder = saved / "vocoder"
    old = _deprecated_call("CodeHiFiGANVocoder.from_checkpoint", CodeHiFiGANVocoder.from_checkpoint, folder)
    _same_weights(old, CodeHiFiGANVocoder.from_pretrained(folder))


def test_code_hifigan_from_pretrained_takes_every_official_file(tmp_path):
    """What from_checkpoint did with an official checkpoint (names lists beside it or given) from_pretrained does."""
    voc = tiny_vocoder()
    ckpt = voc.export_official(tmp_path / "official", step=7)
    elsewhere = tmp_path / "lists"
    elsewhere.mkdir()
    for name in ("config.json", "speakers.txt", "styles.txt"):
        shutil.move(tmp_path / "official" / name, elsewhere / name)
    with pytest.raises(VocoderError, match="config.json"):
        CodeHiFiGANVocoder.from_pretrained(ckpt)
    back = CodeHiFiGANVocoder.from_pretrained(ckpt, config_path=elsewhere / "config.json",
                                              speakers_path=elsewhere / "speakers.txt",
                                              styles_path=elsewhere / "styles.txt", device="cpu")
    assert back.speakers == ["a", "b", "c"] and back.styles == ["plain", "loud"]
    old = _deprecated_call("CodeHiFiGANVocoder.from_checkpoint", CodeHiFiGANVocoder.from_checkpoint, ckpt,
                           elsewhere / "config.json", elsewhere / "speakers.txt", elsewhere / "styles.txt")
    units = torch.tensor([1, 2, 2, 5])
    assert torch.equal(old(units, speaker="c", style="loud"), back(units, speaker="c", style="loud"))
    assert torch.equal(back(units, speaker="c", style="loud"), voc(units, speaker="c", style="loud"))
    # a folder of g_* files: the latest
    shutil.copy(ckpt, tmp_path / "official" / "g_00000003")
    for name in ("config.json", "speakers.txt", "styles.txt"):
        shutil.copy(elsewhere / name, tmp_path / "official" / name)
    assert torch.equal(CodeHiFiGANVocoder.from_pretrained(tmp_path / "official")(units, speaker="c"),
                       voc(units, speaker="c"))
    with pytest.raises(VocoderError, match="no such checkpoint file or vocoder folder"):
        CodeHiFiGANVocoder.from_pretrained(tmp_path / "missing")


def test_mel_hifigan_from_checkpoint_is_an_alias(tmp_path):
    ckpt = VOCODER_DATA / "mel_v3" / "g_00000000"
    new = HiFiGANVocoder.from_pretrained(ckpt, config_path=VOCODER_DATA / "mel_v3" / "config.json")
    old = _deprecated_call("HiFiGANVocoder.from_checkpoint", HiFiGANVocoder.from_checkpoint, ckpt)
    _same_weights(old, new)
    mel = torch.randn(new.config.num_mels, 6)
    assert torch.equal(old(mel), new(mel))
    new.save_pretrained(tmp_path / "mel")  # our folder, through both names
    again = _deprecated_call("HiFiGANVocoder.from_checkpoint", HiFiGANVocoder.from_checkpoint, tmp_path / "mel")
    assert torch.equal(again(mel), HiFiGANVocoder.from_pretrained(tmp_path / "mel")(mel))


def test_load_unit_vocoder_is_an_alias(saved):
    from speechkit.vocoders import load_unit_vocoder
    from tests.unit.vocoders.test_unit_mel import tiny

    tiny().save_pretrained(saved / "unit_mel")
    units = torch.tensor([1, 4, 4, 2, 9])
    for folder, kind in ((saved / "vocoder", CodeHiFiGANVocoder), (saved / "unit_mel", UnitMelVocoder)):
        old = _deprecated_call("load_unit_vocoder", load_unit_vocoder, folder, mel_vocoder="griffinlim")
        new = UnitVocoder.from_pretrained(folder, mel_vocoder="griffinlim", device="cpu")
        assert type(old) is type(new) is kind and isinstance(new, UnitVocoder)
        _same_weights(old, new)
        torch.manual_seed(0)
        a = old(units, speaker="a", dur_prediction=True)
        torch.manual_seed(0)
        assert torch.equal(a, new(units, speaker="a", dur_prediction=True))
    official = VOCODER_DATA / "base"
    old = _deprecated_call("load_unit_vocoder", load_unit_vocoder, official / "g_00000000", official / "config.json")
    _same_weights(old, UnitVocoder.from_pretrained(official / "g_00000000", config_path=official / "config.json"))
    assert not isinstance(HiFiGANVocoder.from_pretrained(VOCODER_DATA / "mel_v3"), UnitVocoder)
    with pytest.raises(TypeError, match="UnitVocoder.from_pretrained"):
        UnitVocoder()
    with pytest.raises(VocoderError, match="mel_vocoder must be"):
        UnitVocoder.from_pretrained(saved / "vocoder", mel_vocoder="vocos")


# ---------------------------------------------------------------- nothing in the repo calls them


def test_pipelines_load_and_run_without_a_deprecated_call(saved):
    """speechkit's own loaders never go through an alias: its deprecation warnings are errors here."""
    for sub in ("encoder", "vocoder"):
        assert (saved / sub).is_dir()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".* is deprecated; use ", category=DeprecationWarning)
        rs = Resynthesizer.from_pretrained(saved)
        out = rs(torch.randn(8000) * 0.3, sample_rate=16000)
        assert out.dim() == 1 and out.numel() > 0
        SpeechEncoder.from_pretrained(saved / "encoder")
        UnitVocoder.from_pretrained(saved / "vocoder")


#: modules that may name the aliases: this test, and the package that re-exports ``load_hubert``
_MAY_NAME = {Path(__file__).resolve(), REPO / "speechkit" / "units" / "hubert" / "__init__.py"}


def _alias_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner, attr = node.value.id, node.attr
            if (attr == "from_checkpoint" and owner in ("HubertFeatureReader", "CodeHiFiGANVocoder", "HiFiGANVocoder",
                                                        "cls")) or (attr == "load" and owner == "KMeansQuantizer"):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {owner}.{attr}")
        elif isinstance(node, ast.Name) and node.id in ("load_hubert", "load_unit_vocoder"):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.id}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{path.relative_to(REPO)}:{node.lineno}: import {a.name}" for a in node.names
                      if a.name in ("load_hubert", "load_unit_vocoder")]
    return found


def test_no_code_in_the_repo_calls_a_deprecated_loader():
    """speechkit, data_prep, eval, benchmarks and the tests use the from_pretrained names (only this file, which
    tests the aliases, names them)."""
    files = [p for top in ("speechkit", "data_prep", "eval", "benchmarks", "tests") for p in (REPO / top).rglob("*.py")]
    found = [use for p in sorted(files) if p.resolve() not in _MAY_NAME for use in _alias_uses(p)]
    assert not found, "use the from_pretrained names:\n" + "\n".join(found)
