"""The Vocos-style mel vocoder: the inverse STFT's framing, the generator's locality, the folder format and what it
refuses, its place in the unit-to-mel vocoder (offline and streaming) and VDTTS, and its trainer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechkit.vocoders import UnitMelVocoder, VocoderError, VocosVocoder, load_mel_vocoder
from speechkit.vocoders.griffinlim import GriffinLimVocoder
from speechkit.vocoders.unitmel.config import MelSettings
from speechkit.vocoders.vocos.model import ISTFT
from speechkit.vocoders.vocos.vocoder import VocosConfig, build_vocos
from tests.unit.vocoders.test_unit_mel import tiny as tiny_unit_mel


def tiny_vocos(seed: int = 0, **mel) -> VocosVocoder:
    torch.manual_seed(seed)
    cfg = VocosConfig(mel=MelSettings(**mel), dim=16, intermediate_dim=24, num_layers=2)
    return VocosVocoder(build_vocos(cfg), cfg)


@pytest.mark.parametrize("n_fft,hop,win", [(1024, 256, 1024), (64, 16, 48), (640, 160, 640)])
def test_istft_inverts_the_hifigan_framed_stft(n_fft, hop, win):
    # the reference is the signal itself: frames taken as MelSpectrogram takes them (reflect pad (n_fft - hop) / 2,
    # no centring) must overlap-add back to it, so frame j sits where the mel's frame j does
    x = torch.randn(2, 40 * hop, generator=torch.Generator().manual_seed(0))
    pad = (n_fft - hop) // 2
    y = F.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    w = F.pad(torch.hann_window(win), ((n_fft - win) // 2, n_fft - win - (n_fft - win) // 2))
    spec = torch.stft(y, n_fft, hop, window=w, center=False, return_complex=True)
    assert spec.shape[-1] == 40
    out = ISTFT(n_fft, hop, win)(spec)
    assert out.shape == x.shape
    assert torch.allclose(out, x, atol=1e-4)


def test_output_length_and_locality():
    voc = tiny_vocos()
    for frames in (1, 2, 37):
        assert voc(torch.randn(80, frames)).shape == (frames * 256,)
    # one mel frame changed far away leaves the start alone: the blocks see receptive_field frames, the inverse
    # STFT 4 more (1024 / 256)
    mel = torch.randn(80, 100, generator=torch.Generator().manual_seed(1)) - 4
    changed = mel.clone()
    changed[:, -1] += 3.0
    a, b = voc(mel), voc(changed)
    reach = (voc.receptive_field // 2 + 4) * 256
    assert torch.equal(a[: len(a) - reach], b[: len(b) - reach])
    assert not torch.equal(a[-256:], b[-256:])


def test_save_load_roundtrip_and_kind(tmp_path):
    voc = tiny_vocos()
    mel = torch.randn(80, 20) - 4
    voc.save_pretrained(tmp_path / "v")
    meta = json.loads((tmp_path / "v" / "config.json").read_text())
    assert meta["kind"] == "vocos" and meta["model"]["mel"]["hop_length"] == 256
    back = VocosVocoder.from_pretrained(tmp_path / "v")
    assert torch.equal(back(mel), voc(mel))
    assert isinstance(load_mel_vocoder(tmp_path / "v", MelSettings()), VocosVocoder)


def _corrupt(folder, how):
    st = folder / "model.safetensors"
    if how == "truncated":
        st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
    elif how == "no config":
        (folder / "config.json").unlink()
    elif how == "other kind":
        meta = json.loads((folder / "config.json").read_text())
        meta["kind"] = "unit_mel"
        (folder / "config.json").write_text(json.dumps(meta))
    elif how == "other size":
        meta = json.loads((folder / "config.json").read_text())
        meta["model"]["dim"] = 32
        (folder / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("how,words", [("truncated", "model.safetensors"), ("no config", "config.json"),
                                       ("other kind", "mel vocoder"), ("other size", "shape")])
def test_bad_folders_are_refused_naming_the_file(tmp_path, how, words):
    tiny_vocos().save_pretrained(tmp_path / "v")
    _corrupt(tmp_path / "v", how)
    with pytest.raises(VocoderError) as e:
        load_mel_vocoder(tmp_path / "v", MelSettings())
    assert str(tmp_path / "v") in str(e.value) and words in str(e.value)


def test_bad_mels_are_refused():
    voc = tiny_vocos()
    with pytest.raises(VocoderError, match=r"\(80, frames\)"):
        voc(torch.randn(64, 10))
    with pytest.raises(VocoderError, match="NaN"):
        voc(torch.full((80, 10), float("nan")))


def test_unit_mel_folder_speaks_through_its_vocos(tmp_path):
    um = tiny_unit_mel()
    um.mel_vocoder = tiny_vocos()
    um.save_pretrained(tmp_path / "voc")
    assert json.loads((tmp_path / "voc" / "mel_vocoder" / "config.json").read_text())["kind"] == "vocos"
    loaded = UnitMelVocoder.from_pretrained(tmp_path / "voc")
    assert isinstance(loaded.mel_vocoder, VocosVocoder)
    units, durations = torch.tensor([1, 5, 7, 2]), torch.tensor([3, 1, 4, 2])
    wav = loaded(units, speaker="b", durations=durations)
    expected = loaded.mel_vocoder(loaded.mel(units, speaker="b", durations=durations))
    assert wav.shape == (10 * 320,) and torch.equal(wav, expected[: 10 * 320])
    # Griffin-Lim stays selectable
    gl = UnitMelVocoder.from_pretrained(tmp_path / "voc", mel_vocoder="griffinlim")
    assert isinstance(gl.mel_vocoder, GriffinLimVocoder)
    with pytest.raises(VocoderError, match="mel_vocoder must be"):
        UnitMelVocoder.from_pretrained(tmp_path / "voc", mel_vocoder="wavenet")


@pytest.mark.parametrize("mel,rule", [(dict(hop_length=160, win_length=640), "hop_length 160 vs 256"),
                                      (dict(fmax=7600.0), "fmax 7600.0 vs 8000.0")])
def test_unit_mel_folder_with_other_mel_settings_is_refused(tmp_path, mel, rule):
    um = tiny_unit_mel()
    um.save_pretrained(tmp_path / "voc")
    tiny_vocos(**mel).save_pretrained(tmp_path / "voc" / "mel_vocoder")
    with pytest.raises(VocoderError) as e:
        UnitMelVocoder.from_pretrained(tmp_path / "voc")
    assert "mel_vocoder/config.json" in str(e.value) and rule in str(e.value)


def test_streaming_matches_offline_with_windows_past_the_receptive_field():
    from speechkit.vocoders.streaming import WindowVocoderStream, vocoder_stream

    um = tiny_unit_mel()
    um.mel_vocoder = tiny_vocos()
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 12, 160))
    offline = um(frames, speaker="a", durations=torch.ones(len(frames), dtype=torch.long))
    # decoder 13 unit frames + Vocos (2 blocks of 7 + 7: 19 mel frames, +4 of inverse STFT) each side < 32 units
    stream = vocoder_stream(um, "a", None, left=32, lookahead=32)
    assert isinstance(stream, WindowVocoderStream)
    out = []
    for start in range(0, len(frames), 8):
        out.append(stream.push(start, frames[start: start + 8], frames[start + 8: start + 40]))
    streamed = torch.cat(out)
    assert streamed.shape == offline.shape
    assert torch.allclose(streamed, offline, atol=1e-5)


def test_vdtts_loads_a_vocos_with_its_mel_settings(tmp_path):
    from speechkit.errors import SpeechkitError
    from speechkit.vdtts.config import VDTTSConfig
    from speechkit.vdtts.vocoding import load_vocoder

    cfg = VDTTSConfig()
    right = dict(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                 num_mels=cfg.num_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    tiny_vocos(**right).save_pretrained(tmp_path / "ok")
    tiny_vocos().save_pretrained(tmp_path / "bundle_mels")
    for kind in ("vocos", "auto"):
        voc = load_vocoder(cfg, kind, tmp_path / "ok")
        assert isinstance(voc, VocosVocoder) and voc(torch.randn(cfg.num_mels, 5)).shape == (5 * cfg.hop_length,)
    with pytest.raises(SpeechkitError, match="mel settings differ"):
        load_vocoder(cfg, "vocos", tmp_path / "bundle_mels")


def test_multi_resolution_stft_loss_is_zero_only_for_the_same_signal():
    from speechkit.train.vocos import MultiResolutionSTFTLoss

    loss = MultiResolutionSTFTLoss([(256, 64), (512, 128)])
    y = torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))
    assert loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(0.5 * y, y).item() == pytest.approx(0.5 + math.log(2), rel=1e-2)   # convergence 0.5 + |log 0.5|
    assert math.isfinite(loss(torch.zeros_like(y), y).item())


def _tone(freq: float, n: int, sr: int = 16000, phase: float = 0.0) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / sr
    return (0.5 * torch.sin(2 * math.pi * freq * t + phase)).float()[None]


def test_phase_loss_frames_are_the_heads_and_each_term_measures_its_own_difference():
    from speechkit.train.vocos import PhaseLoss

    loss = PhaseLoss(ISTFT(1024, 256, 1024))
    # its frames are the ones the head's inverse STFT overlap-adds: analysis then synthesis gives the signal back
    x = torch.randn(2, 40 * 256, generator=torch.Generator().manual_seed(0))
    spec = loss.istft.analyse(x)
    assert spec.shape == (2, 513, 40)
    assert torch.allclose(loss.istft(spec), x, atol=1e-4)

    y = _tone(440.0, 32 * 256) + 0.3 * _tone(1250.0, 32 * 256, phase=1.0)
    same = loss.parts(y, y)
    assert all(v.item() == pytest.approx(0.0, abs=5e-4) for v in same.values())
    # a sign flip moves every phase by pi: IP at its maximum, the steps between bins and frames unchanged
    flip = loss.parts(-y, y)
    assert flip["ip"].item() == pytest.approx(2.0, abs=1e-3)
    assert flip["gd"].item() == pytest.approx(0.0, abs=1e-3) and flip["iaf"].item() == pytest.approx(0.0, abs=1e-3)
    # a mel cannot tell a signal from its negative: with ip=0 (loss.phase_ip) the flip costs nothing
    assert loss(-y, y, ip=0.0).item() == pytest.approx(0.0, abs=2e-3)
    assert loss(-y, y, ip=0.5).item() == pytest.approx(1.0, abs=2e-3)
    # a delay of d samples turns bin k by 2 pi k d / n_fft: the group delay moves by 2 pi d / n_fft, the frequency not
    d = 40
    delayed = loss.parts(F.pad(y, (d, 0))[:, : y.shape[1]], y)
    assert delayed["gd"].item() == pytest.approx(1 - math.cos(2 * math.pi * d / 1024), rel=0.25)   # edges: padding
    assert delayed["iaf"].item() < 0.02 and delayed["ip"].item() > 0.1
    # a wrong frequency (the buzz of mismatched harmonics): the phase advance per frame differs
    detuned = loss.parts(_tone(452.0, 32 * 256) + 0.3 * _tone(1250.0, 32 * 256, phase=1.0), y)
    assert detuned["iaf"].item() > 0.2


def test_phase_loss_ignores_bins_the_audio_leaves_silent_and_keeps_gradients_finite():
    from speechkit.train.vocos import PhaseLoss

    loss = PhaseLoss(ISTFT(1024, 256))
    y = _tone(440.0, 16 * 256)
    # a quiet tone where the audio has no energy changes nothing, whatever its phase
    assert loss(y + 0.01 * _tone(5000.0, 16 * 256), y).item() < 0.01
    # level does not matter either: the phase of half the output is the same phase
    assert loss(0.5 * y, y).item() == pytest.approx(0.0, abs=5e-4)
    # silence in, silence out (a zero-padded segment) and silence out for speech in: finite values and gradients
    for out, ref in ((torch.zeros_like(y), torch.zeros_like(y)), (torch.zeros_like(y), y)):
        out = out.clone().requires_grad_(True)
        value = loss(out, ref)
        value.backward()
        assert math.isfinite(value.item()) and torch.isfinite(out.grad).all()


def test_phase_loss_trains_in_the_loop_and_is_validated(tmp_path):
    from speechkit.cli.main import main
    from tests.reliability.test_kill_resume import _tone_folder

    audio = _tone_folder(tmp_path / "audio", n=4)
    runs = {}
    for weight in (0.0, 5.0):
        out = tmp_path / f"run_{weight}"
        assert main(["train", "vocos", "preset=debug", f"data.audio={audio}", f"out={out}", "optim.max_steps=30",
                     "optim.lr=3e-3", "train.log_every=10", "train.save_every=10", "train.valid_every=10",
                     "loss.adversarial=0", f"loss.phase={weight}"]) == 0
        runs[weight] = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    off, on = runs[0.0], runs[5.0]
    assert "loss_phase" not in off[-1] and "valid_phase" not in off[-1]
    assert all(0 < r["loss_phase"] < 6 for r in on)        # three terms, each in [0, 2]
    # the same steps and data otherwise: the phase term changes what is learnt
    assert on[-1]["loss_mel"] != off[-1]["loss_mel"]
    # the validation figure is the loss of the exported model on the held-out file, computed here on its own
    from speechkit.train.vocos import PhaseLoss, load_corpus
    from speechkit.vocoders.hifigan.losses import MelSpectrogram

    wav = load_corpus(audio, 16000, None, 0.95, "test")[1][0]       # the debug preset holds out the first file
    y = wav[None, : len(wav) // 256 * 256]
    voc = VocosVocoder.from_pretrained(tmp_path / "run_5.0" / "model")
    with torch.no_grad():
        y_hat = voc.generator(MelSpectrogram(16000, 1024, 80, 256, 1024, 0.0, 8000.0)(y))
    assert PhaseLoss(ISTFT(1024, 256))(y_hat, y).item() == pytest.approx(on[-1]["valid_phase"], abs=2e-4)


def test_training_debug_preset_learns_and_exports(tmp_path):
    from speechkit.cli.main import main
    from tests.reliability.test_kill_resume import _tone_folder

    audio = _tone_folder(tmp_path / "audio", n=4)
    out = tmp_path / "run"
    assert main(["train", "vocos", "preset=debug", f"data.audio={audio}", f"out={out}", "optim.max_steps=30",
                 "optim.lr=3e-3", "train.log_every=10", "train.save_every=10", "train.valid_every=10",
                 "train.discriminator_start=20"]) == 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert "loss_adv" in rows[-1] and "loss_adv" not in rows[0]    # the GAN joins at discriminator_start
    assert rows[-1]["valid_mel_l1"] < rows[0]["valid_mel_l1"]
    voc = VocosVocoder.from_pretrained(out / "model")
    assert json.loads((out / "model" / "config.json").read_text())["step"] == 30
    assert voc(torch.randn(80, 3)).shape == (768,)


def test_training_refuses_a_segment_off_the_hop(tmp_path):
    from speechkit.cli.main import main
    from tests.reliability.test_kill_resume import _tone_folder

    audio = _tone_folder(tmp_path / "audio", n=2)
    assert main(["train", "vocos", "preset=debug", f"data.audio={audio}", f"out={tmp_path / 'r'}",
                 "data.segment_size=1000"]) != 0


def _decoder_corpus(tmp_path):
    """A tiny unit-to-mel decoder (speakers a/b, styles plain/loud) and three Expresso-named files with units."""
    from speechkit.audio import io
    from speechkit.data.manifest import UnitRecord, write_units_jsonl

    um = tiny_unit_mel()
    um.save_pretrained(tmp_path / "decoder")
    rng = np.random.default_rng(0)
    records = []
    for stem in ("a_plain_00001", "b_loud_00002", "a_loud_00003"):
        wav = (0.3 * rng.standard_normal(16000)).astype(np.float32)
        io.save(tmp_path / "audio" / f"{stem}.wav", wav, 16000)
        units = rng.integers(0, 12, 20).tolist()
        records.append(UnitRecord(stem, str(tmp_path / "audio" / f"{stem}.wav"), units, [2] * 20))
    write_units_jsonl(tmp_path / "units.jsonl", records[:2])     # the third file has no units
    return um, tmp_path / "audio"


def test_decoded_mels_are_the_decoders_for_each_file_it_has_units_for(tmp_path):
    from speechkit.train.vocos import decoded_mels

    um, _ = _decoder_corpus(tmp_path)
    stems = ["a_plain_00001", "b_loud_00002", "a_loud_00003"]
    mels = decoded_mels(str(tmp_path / "decoder"), str(tmp_path / "units.jsonl"), stems, "expresso")
    assert sorted(mels) == [0, 1]
    from speechkit.data.manifest import read_units_jsonl

    r = read_units_jsonl(tmp_path / "units.jsonl")[1]
    expected = um.mel(torch.tensor(r.units), speaker="b", style="loud", durations=torch.tensor(r.duration))
    assert torch.equal(mels[1], expected) and mels[1].shape == (80, math.ceil(40 * 320 / 256))
    with pytest.raises(Exception, match="no record's audio stem"):
        decoded_mels(str(tmp_path / "decoder"), str(tmp_path / "units.jsonl"), ["zz_plain_00009"], "expresso")


def test_decoded_batch_replaces_rows_with_the_aligned_decoder_mel():
    import random

    from speechkit.train.vocos import _decoded_batch

    x = torch.zeros(3, 80, 8)
    decoded = {0: torch.randn(80, 50), 2: torch.randn(80, 10)}
    where = [(0, 256 * 5), (1, 0), (2, 256 * 4)]
    gains = torch.tensor([0.5, 1.0, 1.0])
    out = _decoded_batch(x, where, decoded, 256, 1.0, gains, random.Random(0))
    assert torch.allclose(out[0], decoded[0][:, 5:13] + math.log(0.5))
    assert torch.equal(out[1], x[1])                       # no decoder mel for that file: the true mel stays
    assert torch.equal(out[2, :, :6], decoded[2][:, 4:10]) and (out[2, :, 6:] == math.log(1e-5)).all()
    assert torch.equal(_decoded_batch(x, where, decoded, 256, 0.0, gains, random.Random(0)), x)


def test_fine_tuning_on_decoder_mels_from_a_warm_start(tmp_path):
    from speechkit.cli.main import main

    _, audio = _decoder_corpus(tmp_path)
    first = tmp_path / "first"
    assert main(["train", "vocos", "preset=debug", f"data.audio={audio}", f"out={first}", "optim.max_steps=2"]) == 0
    tuned = tmp_path / "tuned"
    assert main(["train", "vocos", "preset=debug", f"data.audio={audio}", f"out={tuned}", "optim.max_steps=2",
                 f"data.decoder={tmp_path / 'decoder'}", f"data.units={tmp_path / 'units.jsonl'}",
                 "data.decoded_share=1.0", f"train.init={first / 'model'}", "optim.lr=0"]) == 0
    # lr 0: the warm start's weights come through unchanged
    a, b = VocosVocoder.from_pretrained(first / "model"), VocosVocoder.from_pretrained(tuned / "model")
    mel = torch.randn(80, 6)
    assert torch.equal(a(mel), b(mel))
    assert main(["train", "vocos", "preset=debug", f"data.audio={audio}", f"out={tmp_path / 'bad'}",
                 f"data.decoder={tmp_path / 'decoder'}"]) != 0      # a decoder without units is refused


def test_the_default_bundle_speaks_through_its_vocos_and_griffin_lim_stays_selectable():
    from speechkit import Resynthesizer

    rs = Resynthesizer.from_pretrained("checkpoints/default")
    assert isinstance(rs.vocoder.mel_vocoder, VocosVocoder)
    assert rs.vocoder.mel_vocoder.config.mel == rs.vocoder.config.mel
    gl = Resynthesizer.from_pretrained("checkpoints/default", mel_vocoder="griffinlim")
    assert isinstance(gl.vocoder.mel_vocoder, GriffinLimVocoder)
