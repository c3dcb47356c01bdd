"""The unit-to-mel vocoder: its decoder's locality, the folder format, the pipelines' use of it, and training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from speechkit.vocoders import UnitMelVocoder, UnitVocoder, VocoderError
from speechkit.vocoders.unitmel.config import UnitMelConfig
from speechkit.vocoders.unitmel.vocoder import build_unit_mel
from tests.unit.vocoders.test_training import _compose, make_corpus


def tiny(num_units: int = 12, **kw) -> UnitMelVocoder:
    torch.manual_seed(0)
    cfg = UnitMelConfig(num_units=num_units, num_speakers=2, num_styles=2, channels=16, dilations=(1, 2),
                        post_layers=1, duration_predictor=8, griffin_lim_iters=4, **kw)
    model = build_unit_mel(cfg)
    with torch.no_grad():
        model.out.weight.mul_(20)  # a spectrum with some contrast, so speakers and styles differ audibly
    return UnitMelVocoder(model, cfg, ["a", "b"], ["plain", "loud"])


def test_output_length_and_conditioning():
    voc = tiny()
    units, durations = torch.tensor([1, 5, 7, 2]), torch.tensor([3, 1, 4, 2])
    wav = voc(units, speaker="b", style="loud", durations=durations)
    assert wav.shape == (10 * 320,) and wav.dtype == torch.float32 and torch.isfinite(wav).all()
    mel = voc.mel(units, speaker="b", style="loud", durations=durations)
    assert mel.shape == (80, 13)  # ceil(10 frames * 320 / 256)
    assert not torch.equal(mel, voc.mel(units, speaker="a", style="loud", durations=durations))
    assert not torch.equal(mel, voc.mel(units, speaker="b", style="plain", durations=durations))
    # ids work as names do; dur_prediction gives the predictor's frames
    assert torch.equal(mel, voc.mel(units, speaker=1, style=1, durations=durations))
    n = int(voc.model.predict_durations(units[None]).sum())
    assert len(voc(units, dur_prediction=True)) == n * 320



def test_no_style_means_the_style_named_default_else_id_0():
    voc, units, durations = tiny(), torch.tensor([1, 5, 7, 2]), torch.tensor([3, 1, 4, 2])
    assert torch.equal(voc.mel(units, speaker="a", durations=durations),
                       voc.mel(units, speaker="a", style=0, durations=durations))  # no "default" in the list
    voc.styles = ["animated", "default"]  # Expresso's names: the neutral one is the default, not id 0
    assert torch.equal(voc.mel(units, speaker="a", durations=durations),
                       voc.mel(units, speaker="a", style=1, durations=durations))
    assert not torch.equal(voc.mel(units, speaker="a", durations=durations),
                           voc.mel(units, speaker="a", style=0, durations=durations))

def test_decoder_is_local_in_time():
    # a frame's mel depends only on the units within the receptive field: changing a unit far away leaves it alone
    voc = tiny()
    rf = voc.config.receptive_field  # 1 + 4 * (1 + 2) = 13 unit frames
    units = torch.randint(0, 12, (80,), generator=torch.Generator().manual_seed(0))
    changed = units.clone()
    changed[-1] = (units[-1] + 1) % 12
    a, b = voc.mel(units), voc.mel(changed)
    far = int((80 - rf - 4) * voc.model.upsample)  # mel frames whose units are all > rf away from the change
    assert torch.allclose(a[:, :far], b[:, :far], atol=1e-6) and not torch.allclose(a, b, atol=1e-3)


def test_bad_inputs_get_clear_errors():
    voc = tiny()
    with pytest.raises(VocoderError, match="units must be < 12"):
        voc([1, 12])
    with pytest.raises(VocoderError, match="speaker='z': unknown speaker"):
        voc([1, 2], speaker="z")
    with pytest.raises(VocoderError, match="not conditioned on F0"):
        voc([1, 2], f0=[100.0, 120.0])
    with pytest.raises(VocoderError, match="durations must be 2 positive integers"):
        voc([1, 2], durations=[1])
    with pytest.raises(VocoderError, match="f0 must be 'none'"):
        UnitMelConfig(num_units=4, f0="continuous").validate()


def test_folder_round_trip_and_loader_dispatch(tmp_path):
    from speechkit.vocoders.hifigan.voices import SpeakerTable

    voc = tiny()
    voc.speaker_table = SpeakerTable({"a": np.ones(4), "b": np.arange(4.0)})
    folder = voc.save_pretrained(tmp_path / "voc")
    assert json.loads((folder / "config.json").read_text())["kind"] == "unit_mel"
    back = UnitVocoder.from_pretrained(folder)
    assert isinstance(back, UnitMelVocoder) and back.speakers == ["a", "b"] and back.styles == ["plain", "loud"]
    assert back.speaker_table.names == ["a", "b"]
    units = torch.tensor([3, 4, 5, 6])
    assert torch.equal(back.mel(units, speaker="b"), voc.mel(units, speaker="b"))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["kind"] = "code_hifigan"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VocoderError, match="not a CodeHiFiGAN config"):
        UnitVocoder.from_pretrained(folder)  # a CodeHiFiGAN folder whose weights are a decoder's: named as such
    with pytest.raises(VocoderError, match="not a unit-to-mel vocoder"):
        UnitMelVocoder.from_pretrained(folder)


def test_resynthesizer_and_continuation_take_it(tmp_path):
    from speechkit.pipeline import Resynthesizer
    from tests.unit.test_pipeline import speech_like, tiny_encoder

    rs = Resynthesizer(tiny_encoder(), tiny(), voice_match="synthesis")
    wav = speech_like()
    enc = rs.encoder(wav, sample_rate=16000)
    out = rs(wav, 16000, speaker="b", style="loud")
    assert torch.equal(out, rs.vocoder(enc["units"], speaker="b", style="loud", durations=enc["durations"]))
    assert rs(wav, 16000).shape == out.shape  # keeps a voice (by synthesis: no speaker embeddings here)


def test_training_exports_resumes_and_learns(tmp_path):
    from speechkit.train.unit_mel import run

    units = make_corpus(tmp_path, n=8)
    base = ["preset=debug", f"data.units={units}", f"data.audio_root={tmp_path}", "data.speaker=expresso",
            "data.style=expresso", "model.num_units=20", f"out={tmp_path / 'run'}"]
    assert run(_compose(base, task="unit_mel")) == 0
    out = tmp_path / "run"
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "mel_l1" in r] == [1, 2, 3, 4] and any("valid_mel_l1" in r for r in rows)
    voc = UnitVocoder.from_pretrained(out / "model")
    assert isinstance(voc, UnitMelVocoder) and voc.speakers == ["ex01", "ex02"] and voc.styles == ["happy", "sad"]
    assert voc.speaker_table.names == ["ex01", "ex02"]
    assert len(voc([1, 2, 3], speaker="ex02", durations=[2, 2, 2])) == 6 * 320
    # resume continues the step count; more steps lower the training loss on this tiny corpus
    assert run(_compose(base + ["optim.max_steps=60", "train.log_every=10", "optim.lr=3e-3"], task="unit_mel")) == 0
    rows = [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "mel_l1" in r]
    later = [r for r in rows if r["step"] > 4]
    assert later[0]["step"] == 10 and later[-1]["step"] == 60
    assert later[-1]["mel_l1"] < 0.7 * rows[0]["mel_l1"]
    with pytest.raises(VocoderError, match="segment_size must be a positive multiple of 4 unit frames"):
        run(_compose(base + ["data.segment_size=960"], task="unit_mel"))


def test_warm_start_copies_tensors_and_maps_unit_rows(tmp_path):
    import importlib.util
    from pathlib import Path

    from speechkit.train.unit_mel import warm_start

    old = tiny(num_units=6)
    old.save_pretrained(tmp_path / "old")
    torch.manual_seed(1)
    new = build_unit_mel(old.config.__class__(**{**old.config.to_dict(), "num_units": 6,
                                                  "mel": old.config.mel}))
    mapping = [5, 5, 0, 1, 2, 3]
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    n = warm_start(new, str(tmp_path / "old"), ["a", "b"], ["plain", "loud"], str(tmp_path / "map.json"))
    theirs, ours = old.model.state_dict(), new.state_dict()
    assert n == len(ours)
    assert torch.equal(ours["unit_embedding.weight"], theirs["unit_embedding.weight"][torch.tensor(mapping)])
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if k != "unit_embedding.weight")
    with pytest.raises(VocoderError, match="speakers .* differ"):
        warm_start(new, str(tmp_path / "old"), ["a", "c"], ["plain", "loud"])
    (tmp_path / "bad.json").write_text(json.dumps([0, 1]))
    with pytest.raises(VocoderError, match="needs 6 old unit ids"):
        warm_start(new, str(tmp_path / "old"), ["a", "b"], ["plain", "loud"], str(tmp_path / "bad.json"))

    spec = importlib.util.spec_from_file_location("unit_map", Path(__file__).resolve().parents[3] / "data_prep" /
                                                  "unit_map.py")
    um = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(um)
    old_units = np.array([0, 0, 1, 2, 2, 3, 1, 0])
    renamed = np.array([3, 0, 2, 1])[old_units]  # the same tokenizer, units renamed
    counts = um.co_occurrence([(renamed, old_units), (renamed[:5], old_units)], k_new=5, k_old=4)
    m, agree = um.unit_map(counts)
    assert m[:4] == [1, 3, 2, 0] and m[4] == 0 and agree == 1.0  # unit 4 never seen: the most frequent old unit
