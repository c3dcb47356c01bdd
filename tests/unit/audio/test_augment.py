"""speechkit.audio.augment: conditions do what they say, keep length and timing, and are reproducible."""

from __future__ import annotations

import math
import random

import pytest
import torch

from speechkit.audio import augment as A

SR = 16000


def _speechlike(seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Voiced bursts (harmonics of 120 Hz up to 6 kHz) with pauses: energy in time and across the band."""
    t = torch.arange(int(seconds * SR)) / SR
    g = torch.Generator().manual_seed(seed)
    x = sum(torch.sin(2 * math.pi * 120 * k * t + torch.rand(1, generator=g) * 6) / k for k in range(1, 50))
    return 0.3 * x * (torch.sin(2 * math.pi * 3 * t) > 0) / x.abs().max()


def _band_energy(x: torch.Tensor, low: float, high: float) -> float:
    spec = torch.fft.rfft(x).abs() ** 2
    f = torch.fft.rfftfreq(x.numel(), 1 / SR)
    return float(spec[(f >= low) & (f < high)].sum())


def test_degrade_keeps_length_is_reproducible_and_varies_with_the_seed():
    x = _speechlike()
    chains = set()
    for seed in range(12):
        y1, c1 = A.degrade(x, SR, random.Random(seed))
        y2, c2 = A.degrade(x, SR, random.Random(seed))
        assert y1.shape == x.shape and y1.dtype == torch.float32 and torch.equal(y1, y2) and c1 == c2
        assert y1.abs().max() <= 1.0 and torch.isfinite(y1).all()
        chains.add(tuple(c.split("(")[0] for c in c1))
    assert len(chains) >= 5  # the chains differ across items


def test_every_condition_can_be_forced_and_is_named():
    x = _speechlike()
    always = A.Conditions(room=1, noise=1, telephone=1, lowpass=0, level=1, clip=1, dc=1)
    y, chain = A.degrade(x, SR, random.Random(3), always)
    assert [c.split("(")[0] for c in chain] == ["room", "noise", "telephone", "level", "dc", "clip"]
    none = A.Conditions(room=0, noise=0, telephone=0, lowpass=0, level=0, clip=0, dc=0)
    y, chain = A.degrade(x, SR, random.Random(3), none)
    assert chain == [] and torch.equal(y, x)


def test_noise_is_added_at_the_requested_snr():
    x = _speechlike()
    for color in ("white", "pink", "brown"):
        n = A.colored_noise(x.numel(), color, random.Random(1))
        assert n.pow(2).mean().item() == pytest.approx(1.0, rel=1e-4)
        y = A.add_noise(x, n, snr_db=10.0)
        snr = 10 * math.log10(x.pow(2).mean() / (y - x).pow(2).mean())
        assert snr == pytest.approx(10.0, abs=1e-3)
    white, pink = (A.colored_noise(SR, c, random.Random(2)) for c in ("white", "pink"))
    # pink: more of its power below 500 Hz than white noise has
    assert _band_energy(pink, 0, 500) / _band_energy(pink, 0, 8000) > 3 * _band_energy(white, 0, 500) / \
        _band_energy(white, 0, 8000)


def test_room_response_decays_by_60_db_over_rt60_and_keeps_the_timing():
    rt60 = 0.5
    h = A.room_impulse_response(SR, rt60, random.Random(0))
    assert h[0] == 1.0 and h.numel() == int(rt60 * SR)
    first, last = h[SR // 100 : SR // 20].pow(2).mean(), h[-SR // 25 :].pow(2).mean()  # 10-50 ms vs last 40 ms
    assert 10 * math.log10(first / last) > 40
    x = _speechlike()
    y, chain = A.degrade(x, SR, random.Random(0), A.Conditions(room=1, noise=0, telephone=0, lowpass=0, level=0,
                                                               clip=0, dc=0))
    assert chain[0].startswith("room")
    lags = range(-40, 41)
    corr = [float(torch.dot(x[100 + k : 15000 + k], y[100:15000])) for k in lags]
    assert lags[max(range(len(corr)), key=corr.__getitem__)] == 0  # the direct path is not delayed
    assert y.pow(2).mean().item() == pytest.approx(x.pow(2).mean().item(), rel=1e-3)  # the speech level is kept


def test_telephone_and_lowpass_remove_the_high_band():
    x = _speechlike()
    tel = A._telephone(x, SR)
    assert tel.shape == x.shape
    assert _band_energy(tel, 4400, 8000) < 1e-2 * _band_energy(x, 4400, 8000)  # >= 20 dB down above the band
    assert _band_energy(tel, 500, 3000) > 0.3 * _band_energy(x, 500, 3000)
    lp = A._zero_phase_band(x, SR, 0.0, 5000.0)
    assert _band_energy(lp, 5100, 8000) < 1e-6 * _band_energy(x, 5100, 8000)


def test_hubert_crops_with_augment_keep_labels_and_are_reproducible(tmp_path):
    import json

    import soundfile as sf

    from speechkit.train.hubert import LabeledAudio
    from speechkit.units.hubert.config import HubertConfig

    cfg = HubertConfig(conv_layers=[(8, 10, 5), (8, 3, 2), (8, 2, 2)], embed_dim=16, num_layers=1, num_heads=2,
                       ffn_dim=16, conv_pos=4, conv_pos_groups=2)
    (tmp_path / "a.wav").parent.mkdir(exist_ok=True)
    sf.write(str(tmp_path / "a.wav"), _speechlike().numpy(), SR)
    (tmp_path / "m.tsv").write_text(f"{tmp_path}\na.wav\t{SR}\n")
    frames = cfg.num_frames(SR)
    (tmp_path / "l.jsonl").write_text(json.dumps({"id": "a", "units": list(range(frames))}) + "\n")
    plain = LabeledAudio(str(tmp_path / "m.tsv"), str(tmp_path / "l.jsonl"), cfg, 0.0, seed=0)
    aug = LabeledAudio(str(tmp_path / "m.tsv"), str(tmp_path / "l.jsonl"), cfg, 0.0, seed=0, augment=1.0)
    (w0, l0), (w1, l1), (w2, _) = plain[0], aug[0], aug[0]
    assert torch.equal(l0, l1) and torch.equal(w1, w2) and w1.shape == w0.shape and not torch.equal(w0, w1)
    aug.epoch = 1
    assert not torch.equal(aug[0][0], w1)  # new conditions each epoch
    with pytest.raises(Exception, match="data.augment must be a probability"):
        LabeledAudio(str(tmp_path / "m.tsv"), str(tmp_path / "l.jsonl"), cfg, 0.0, seed=0, augment=1.5)


def test_babble_mixes_stretches_of_other_speech():
    x = _speechlike(1.0, seed=0)
    clips = [_speechlike(0.4, seed=s) for s in (1, 2)]  # shorter than the input: tiled
    forced = A.Conditions(room=0, noise=1, telephone=0, lowpass=0, level=0, clip=0, dc=0)
    kinds = set()
    for seed in range(20):
        y, chain = A.degrade(x, SR, random.Random(seed), forced, babble=clips)
        kinds.add(chain[0].split("(")[1].split(",")[0])
        assert y.shape == x.shape and torch.isfinite(y).all()
    assert "babble" in kinds and kinds <= {"white", "pink", "brown", "babble"}
    mix = A._babble(clips, SR, random.Random(0))
    assert mix.shape == (SR,) and mix.abs().max() > 0
