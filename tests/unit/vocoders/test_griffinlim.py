"""Griffin-Lim from HiFi-GAN log-mel: mel-filter inversion and determinism."""

from __future__ import annotations

import pytest
import torch

from speechkit.vocoders.griffinlim import GriffinLimVocoder
from speechkit.vocoders.hifigan.losses import MelSpectrogram


def speech_like(seconds: float = 1.0, sr: int = 16000, base: float = 120.0) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    f0 = base + 30 * torch.sin(2 * torch.pi * 2 * t)
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / sr
    return sum(0.6**k * torch.sin(k * phase) for k in range(1, 20)).float() * 0.2


@pytest.fixture(scope="module")
def mel():
    return MelSpectrogram(16000, 1024, 80, 256, 1024, 0.0, 8000.0)(speech_like()[None])[0]


def test_nnls_inversion_fits_the_mel_better_than_the_clipped_pseudo_inverse(mel):
    pinv = GriffinLimVocoder(inversion="pinv", n_iter=1)
    nnls = GriffinLimVocoder(inversion="nnls", n_iter=1)
    x = torch.exp(mel)
    errors = {}
    for name, g in (("pinv", pinv), ("nnls", nnls)):
        s = g.magnitudes(mel)
        assert s.shape == (513, mel.shape[1]) and (s >= 0).all()
        errors[name] = float(torch.linalg.norm(g.basis @ s - x) / torch.linalg.norm(x))
    assert errors["nnls"] < 0.5 * errors["pinv"]
    with pytest.raises(ValueError, match="inversion must be 'pinv' or 'nnls'"):
        GriffinLimVocoder(inversion="lstsq")


def test_zero_phase_start_is_deterministic_and_reproduces_the_mel(mel):
    g = GriffinLimVocoder(inversion="nnls", n_iter=32)
    a, b = g(mel), g(mel)
    assert torch.equal(a, b) and a.shape == (mel.shape[1] * 256,) and float(a.abs().max()) == pytest.approx(0.9)
    mels = MelSpectrogram(16000, 1024, 80, 256, 1024, 0.0, 8000.0)
    loud = mel > mel.max() - 6

    def error(wav):  # log-mel distance on the loud bins, up to a constant gain (outputs are peak-normalised)
        m = mels(wav[None])[0]
        return float((m - float((m - mel)[loud].median()) - mel)[loud].abs().mean())

    other = speech_like(base=190.0)[: len(a)]  # the same kind of sound at another pitch is far from this mel
    assert error(a) < 0.8 and error(a) < 0.6 * error(other)
