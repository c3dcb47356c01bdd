"""HiFi-GAN training losses and the mel spectrogram they compare.

Least-squares GAN losses, feature matching (L1 between discriminator feature maps), L1 between log-mel
spectrograms, and the duration predictor's MSE on ``log(d + 1)`` (in
:meth:`~speechkit.vocoders.hifigan.model.CodeHiFiGANGenerator.duration_loss`). The weights (feature matching 2,
mel 45, duration 1 in the releases) live in the training config, not here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MelSpectrogram", "discriminator_loss", "generator_adversarial_loss", "feature_matching_loss"]


class MelSpectrogram(nn.Module):
    """HiFi-GAN's log-mel spectrogram: reflect-pad ``(n_fft - hop) / 2`` each side, STFT without centring,
    magnitude ``sqrt(re² + im² + 1e-9)``, Slaney mel filters (librosa), ``log(clamp(x, 1e-5))``.

    Args:
        sample_rate: audio sample rate.
        n_fft: FFT size.
        num_mels: mel bins.
        hop_length: STFT hop.
        win_length: Hann window length.
        fmin: lowest mel frequency.
        fmax: highest mel frequency (``None`` = Nyquist; the released configs' ``fmax_for_loss``).

    Shapes: ``(batch, samples)`` → ``(batch, num_mels, samples // hop_length)``.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, num_mels: int = 80, hop_length: int = 256,
                 win_length: int = 1024, fmin: float = 0.0, fmax: float | None = None):
        super().__init__()
        import librosa

        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("mel_basis", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        pad = (self.n_fft - self.hop_length) // 2
        y = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(y.float(), self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=False, normalized=False, onesided=True, return_complex=True)
        spec = torch.view_as_real(spec)
        mag = torch.sqrt(spec.pow(2).sum(-1) + 1e-9)
        return torch.log(torch.clamp(torch.matmul(self.mel_basis, mag), min=1e-5))


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN loss of the discriminators: ``Σ mean((1 - D(y))²) + mean(D(ŷ)²)`` over
    sub-discriminators."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(g ** 2) for r, g in zip(real, fake, strict=True))


def generator_adversarial_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN loss of the generator: ``Σ mean((1 - D(ŷ))²)`` over sub-discriminators."""
    return sum(torch.mean((1 - g) ** 2) for g in fake)


def feature_matching_loss(fmap_real: list[list[torch.Tensor]], fmap_fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """``Σ mean(|F(y) - F(ŷ)|)`` over every feature map of every sub-discriminator (unweighted; the released
    recipe multiplies it by 2)."""
    return sum(torch.mean(torch.abs(r.detach() - g)) for dr, dg in zip(fmap_real, fmap_fake, strict=True)
               for r, g in zip(dr, dg, strict=True))
