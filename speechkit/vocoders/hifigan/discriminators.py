"""HiFi-GAN's discriminators: multi-period (2-D convs over the waveform folded by a period) and multi-scale
(1-D grouped convs over the waveform and its 2× and 4× average-pooled versions).

Layer sizes are the released ones at ``scale=1``; module names follow the released checkpoints (``convs.N``,
``conv_post``). Every discriminator returns ``(scores, feature_maps)``; each multi-discriminator returns
``(real_scores, fake_scores, real_fmaps, fake_fmaps)`` lists, one entry per sub-discriminator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from speechkit.vocoders.hifigan.model import LRELU_SLOPE

__all__ = ["PeriodDiscriminator", "ScaleDiscriminator", "MultiPeriodDiscriminator", "MultiScaleDiscriminator"]


def _ch(c: int, scale: float, multiple: int = 1) -> int:
    return max(multiple, int(round(c * scale / multiple)) * multiple)


def _norm(module: nn.Module, spectral: bool) -> nn.Module:
    return parametrizations.spectral_norm(module) if spectral else parametrizations.weight_norm(module)


class PeriodDiscriminator(nn.Module):
    """Folds ``(batch, 1, samples)`` into ``(batch, 1, samples / period, period)`` (reflect-padding the end) and
    applies strided ``(kernel, 1)`` 2-D convolutions.

    Args:
        period: fold period.
        scale: channel multiplier (1.0 = 32, 128, 512, 1024, 1024 channels).
        kernel_size: temporal kernel.
        stride: temporal stride of the first four convolutions.
    """

    def __init__(self, period: int, scale: float = 1.0, kernel_size: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        chs = [1] + [_ch(c, scale) for c in (32, 128, 512, 1024, 1024)]
        pad = (kernel_size - 1) // 2
        self.convs = nn.ModuleList(
            _norm(nn.Conv2d(chs[i], chs[i + 1], (kernel_size, 1), (stride if i < 4 else 1, 1), padding=(pad, 0)),
                  False) for i in range(5))
        self.conv_post = _norm(nn.Conv2d(chs[-1], 1, (3, 1), 1, padding=(1, 0)), False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            t += n_pad
        return _conv_stack(self.convs, self.conv_post, x.view(b, c, t // self.period, self.period))



def _conv_stack(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Convolutions with leaky ReLU, then the output convolution: ``(flattened scores, feature maps)``."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return torch.flatten(x, 1, -1), fmap

class ScaleDiscriminator(nn.Module):
    """Strided, grouped 1-D convolutions over ``(batch, 1, samples)``.

    Args:
        spectral_norm: spectral instead of weight normalisation (the first, full-resolution scale).
        scale: channel multiplier (1.0 = 128 ... 1024 channels; channels stay multiples of the group count).
    """

    _LAYERS = ((128, 15, 1, 1, 7), (128, 41, 2, 4, 20), (256, 41, 2, 16, 20), (512, 41, 4, 16, 20),
               (1024, 41, 4, 16, 20), (1024, 41, 1, 16, 20), (1024, 5, 1, 1, 2))  # out, kernel, stride, groups, pad

    def __init__(self, spectral_norm: bool = False, scale: float = 1.0):
        super().__init__()
        convs, cin = [], 1
        for out, k, s, g, p in self._LAYERS:
            cout = _ch(out, scale, 16)
            convs.append(_norm(nn.Conv1d(cin, cout, k, s, groups=g, padding=p), spectral_norm))
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.conv_post = _norm(nn.Conv1d(cin, 1, 3, 1, padding=1), spectral_norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _conv_stack(self.convs, self.conv_post, x)


class _Multi(nn.Module):
    discriminators: nn.ModuleList

    def _inputs(self, y: torch.Tensor, y_hat: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return y, y_hat

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor):
        """Scores real ``y`` and generated ``y_hat``, both ``(batch, 1, samples)``."""
        real, fake, fmap_real, fmap_fake = [], [], [], []
        for i, d in enumerate(self.discriminators):
            y, y_hat = self._inputs(y, y_hat, i)
            r, fr = d(y)
            g, fg = d(y_hat)
            real.append(r)
            fake.append(g)
            fmap_real.append(fr)
            fmap_fake.append(fg)
        return real, fake, fmap_real, fmap_fake


class MultiPeriodDiscriminator(_Multi):
    """One :class:`PeriodDiscriminator` per period (2, 3, 5, 7, 11)."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), scale: float = 1.0):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, scale) for p in periods)


class MultiScaleDiscriminator(_Multi):
    """Three :class:`ScaleDiscriminator` on the waveform, its 2× and its 4× average-pooled versions (the first
    with spectral normalisation)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(i == 0, scale) for i in range(3))
        self.meanpools = nn.ModuleList(nn.AvgPool1d(4, 2, padding=2) for _ in range(2))

    def _inputs(self, y: torch.Tensor, y_hat: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i == 0:
            return y, y_hat
        return self.meanpools[i - 1](y), self.meanpools[i - 1](y_hat)
