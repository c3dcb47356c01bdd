"""A Vocos-style mel vocoder: ConvNeXt blocks at the mel frame rate, then a Fourier head and an inverse STFT.

Nothing runs at the sample rate but one inverse FFT per frame, so the cost per second of audio is a few hundred
MFLOP against HiFi-GAN's tens of GFLOP (Siuzdak, "Vocos: Closing the gap between time-domain and Fourier-based
neural vocoders", 2023). Written for speechkit from the paper's description:

- the log-mel goes through a width-7 convolution to ``dim`` channels and a layer norm;
- ``num_layers`` ConvNeXt blocks: depthwise convolution (``kernel_size``), layer norm, ``dim -> intermediate_dim``
  linear, GELU, back to ``dim``, a learned per-channel scale, residual;
- a final layer norm and one linear layer to ``n_fft + 2`` numbers per frame: log-magnitude and phase of each of the
  ``n_fft // 2 + 1`` bins (magnitude ``exp`` clipped at 100, phase through ``cos``/``sin``, so it wraps freely);
- :class:`ISTFT` with "same" padding: frame ``j`` is centred on sample ``j * hop + hop / 2``, exactly the frames
  of HiFi-GAN's log-mel (:class:`~speechkit.vocoders.hifigan.losses.MelSpectrogram`), and ``T`` frames give
  ``T * hop`` samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VocosGenerator", "ISTFT", "ConvNeXtBlock"]


class ISTFT(nn.Module):
    """Inverse STFT whose frames sit where HiFi-GAN's mel frames do ("same" padding).

    ``torch.istft(center=True)`` would centre frame ``j`` on ``j * hop``; the mel of
    :class:`~speechkit.vocoders.hifigan.losses.MelSpectrogram` pads ``(n_fft - hop) / 2`` and does not centre, so
    its frame ``j`` covers ``[j * hop - (n_fft - hop) / 2, j * hop + (n_fft + hop) / 2)``. Here the frames are
    overlap-added on that grid and the ``(win - hop) / 2`` samples of padding are cut from each end; each sample is
    divided by the sum of squared windows over it (the least-squares inverse).

    Shapes: ``(batch, n_fft // 2 + 1, frames)`` complex -> ``(batch, frames * hop)``.
    """

    def __init__(self, n_fft: int, hop_length: int, win_length: int | None = None):
        super().__init__()
        win_length = win_length or n_fft
        if win_length > n_fft or (n_fft - hop_length) % 2:
            raise ValueError(f"ISTFT needs win_length <= n_fft and n_fft - hop_length even. Found n_fft {n_fft}, "
                             f"hop {hop_length}, win {win_length}")
        w = torch.hann_window(win_length)
        left = (n_fft - win_length) // 2
        self.register_buffer("window", F.pad(w, (left, n_fft - win_length - left)), persistent=False)
        self.n_fft, self.hop = n_fft, hop_length
        self.pad = (n_fft - hop_length) // 2

    def analyse(self, y: torch.Tensor) -> torch.Tensor:
        """The STFT this inverts: ``(batch, samples)`` -> ``(batch, n_fft // 2 + 1, samples // hop)`` complex,
        frame ``j`` centred on sample ``j * hop + hop / 2`` (reflect padding at the ends)."""
        y = F.pad(y[:, None], (self.pad, self.pad), mode="reflect")[:, 0]
        return torch.stft(y, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        b, _, t = spec.shape
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=1) * self.window[None, :, None]   # (B, n_fft, T)
        size = (t - 1) * self.hop + self.n_fft
        y = F.fold(frames, output_size=(1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop))[:, 0, 0]
        env = F.fold((self.window ** 2)[None, :, None].expand(1, -1, t), output_size=(1, size),
                     kernel_size=(1, self.n_fft), stride=(1, self.hop))[0, 0, 0]
        y = y[:, self.pad: size - self.pad]
        return y / env[self.pad: size - self.pad].clamp(min=1e-8)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> Linear -> GELU -> Linear -> scale, with a residual. ``(B, C, T)`` in and out."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)        # (B, T, C)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class VocosGenerator(nn.Module):
    """``(B, num_mels, T)`` log-mel -> ``(B, T * hop_length)`` waveform.

    Args:
        num_mels: input mel bins.
        dim: channels of the blocks.
        intermediate_dim: hidden width of each block's two linear layers.
        num_layers: ConvNeXt blocks.
        kernel_size: depthwise kernel (odd).
        n_fft: the head's FFT size (``n_fft // 2 + 1`` bins per frame).
        hop_length: samples per frame.
        win_length: the head's window.
    """

    def __init__(self, *, num_mels: int = 80, dim: int = 256, intermediate_dim: int = 768, num_layers: int = 8,
                 kernel_size: int = 7, n_fft: int = 1024, hop_length: int = 256, win_length: int = 1024):
        super().__init__()
        self.embed = nn.Conv1d(num_mels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, intermediate_dim, kernel_size, 1.0 / num_layers)
                                    for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop_length, win_length)
        self.receptive_field = 1 + 6 + num_layers * (kernel_size - 1)   # mel frames seen by one output frame
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def spectrum(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_fft // 2 + 1, T)`` complex spectrum the head predicts."""
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.out(self.final_norm(x.transpose(1, 2))).transpose(1, 2).float()   # (B, n_fft + 2, T)
        logmag, phase = h.chunk(2, dim=1)
        mag = torch.exp(logmag).clamp(max=1e2)
        return torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.istft(self.spectrum(mel))
