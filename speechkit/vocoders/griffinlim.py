"""Log-mel to waveform without training: Griffin-Lim phase reconstruction of HiFi-GAN's log-mel spectrogram."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GriffinLimVocoder"]


class GriffinLimVocoder(nn.Module):
    """``(num_mels, frames)`` HiFi-GAN log-mel -> ``(frames * hop_length,)`` waveform by Griffin-Lim.

    The Slaney mel filters (librosa) are inverted by least squares (non-negative part), the magnitudes sharpened by
    ``power`` (1.2-1.5 reduces smearing), the phase reconstructed by torchaudio's Griffin-Lim; the output is
    peak-normalised to 0.9.

    Args:
        sample_rate: audio rate.
        n_fft: FFT size.
        hop_length: STFT hop.
        win_length: Hann window length.
        num_mels: mel bins.
        fmin: lowest mel frequency.
        fmax: highest mel frequency (``None`` = Nyquist).
        n_iter: Griffin-Lim iterations.
        power: magnitude exponent.
        rand_init: start from random phases (torch's global generator: outputs then vary from call to call);
            ``False`` starts from zero phases, so the same mel always gives the same waveform.
    """

    def __init__(self, *, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256, win_length: int = 1024,
                 num_mels: int = 80, fmin: float = 0.0, fmax: float | None = 8000.0, n_iter: int = 32,
                 power: float = 1.3, rand_init: bool = False):
        super().__init__()
        import librosa
        import torchaudio

        basis = torch.from_numpy(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin,
                                                     fmax=fmax)).float()
        self.register_buffer("inverse", torch.linalg.pinv(basis), persistent=False)
        self.griffinlim = torchaudio.transforms.GriffinLim(n_fft=n_fft, n_iter=n_iter, win_length=win_length,
                                                           hop_length=hop_length, power=1.0, rand_init=rand_init)
        self.hop_length, self.power = hop_length, power
        self.output_sample_rate = sample_rate

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        mag = (self.inverse @ torch.exp(mel.float())).clamp(min=0) ** self.power  # (n_fft // 2 + 1, frames)
        wav = self.griffinlim(mag)
        n = mel.shape[-1] * self.hop_length
        wav = torch.nn.functional.pad(wav, (0, max(0, n - len(wav))))[:n]
        return wav / wav.abs().max().clamp(min=1e-4) * 0.9
