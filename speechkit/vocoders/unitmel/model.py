"""The unit-to-mel decoder: units (+ speaker, style) at the unit rate -> HiFi-GAN log-mel at the mel rate.

Every layer is local in time (per-frame layer norms, convolutions), so a frame's output depends only on the units
within the receptive field around it: what generalises to sentences never heard, and what a streaming decoder needs.
Batches are equal-length segments (training) or one utterance (inference): there is no padding mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechkit.vocoders.hifigan.model import DurationPredictor

__all__ = ["UnitMelDecoder"]


def channel_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """Layer norm over the channels of each frame of ``(batch, channels, time)``."""
    return norm(x.transpose(1, 2)).transpose(1, 2)


class ResidualLayer(nn.Module):
    """``x + proj(gelu(conv_dilated(norm(x) + cond)))``.

    Args:
        channels: width.
        kernel_size: odd kernel of the dilated convolution.
        dilation: its dilation.
        dropout: dropout before the projection (training only).
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.proj = nn.Conv1d(channels, channels, 1)
        self.cond = nn.Linear(channels, channels)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = channel_norm(x, self.norm)
        if cond is not None:
            h = h + self.cond(cond)[..., None]
        h = F.gelu(self.conv(h))
        return x + self.proj(F.dropout(h, self.dropout, self.training))


class UnitMelDecoder(nn.Module):
    """Units -> log-mel.

    Args:
        num_units: unit vocabulary size.
        num_mels: mel bins of the output.
        channels: width of every layer.
        kernel_size: kernel of the dilated convolutions (odd).
        dilations: one residual layer per dilation.
        post_layers: residual convolutions (kernel 5) at the mel rate.
        upsample: mel frames per unit frame (``code_hop_size / mel hop``, e.g. 320 / 256 = 1.25).
        num_speakers: rows of the speaker table (0 = none).
        num_styles: rows of the style table (0 = none).
        dropout: dropout in the residual layers.
        duration_hidden: hidden width of a duration predictor over the unit embeddings (0 = none).

    Example:
        >>> dec = UnitMelDecoder(num_units=100, num_mels=80, channels=64, num_speakers=4)
        >>> dec(torch.randint(0, 100, (2, 40)), speaker=torch.tensor([0, 3])).shape
        torch.Size([2, 80, 50])
    """

    def __init__(self, *, num_units: int, num_mels: int = 80, channels: int = 256, kernel_size: int = 5,
                 dilations: tuple[int, ...] = (1, 2, 4, 8), post_layers: int = 2, upsample: float = 1.25,
                 num_speakers: int = 0, num_styles: int = 0, dropout: float = 0.1, duration_hidden: int = 0):
        super().__init__()
        self.upsample = upsample
        self.unit_embedding = nn.Embedding(num_units, channels)
        self.speaker_embedding = nn.Embedding(num_speakers, channels) if num_speakers else None
        self.style_embedding = nn.Embedding(num_styles, channels) if num_styles else None
        self.layers = nn.ModuleList(ResidualLayer(channels, kernel_size, d, dropout) for d in dilations)
        self.post = nn.ModuleList(ResidualLayer(channels, 5, 1, dropout) for _ in range(post_layers))
        self.out_norm = nn.LayerNorm(channels)
        self.out = nn.Conv1d(channels, num_mels, 1)
        with torch.no_grad():
            self.out.bias.fill_(-5.0)  # about the mean HiFi-GAN log-mel of speech
        self.duration_predictor = DurationPredictor(channels, duration_hidden) if duration_hidden else None

    def mel_frames(self, unit_frames: int) -> int:
        """Mel frames covering ``unit_frames`` unit frames (rounded up)."""
        return math.ceil(unit_frames * self.upsample - 1e-9)

    def _condition(self, batch: int, speaker: torch.Tensor | None, style: torch.Tensor | None):
        cond = None
        for table, ids in ((self.speaker_embedding, speaker), (self.style_embedding, style)):
            if table is not None:
                e = table(ids if ids is not None else torch.zeros(batch, dtype=torch.long,
                                                                     device=table.weight.device))
                cond = e if cond is None else cond + e
        return cond

    def forward(self, units: torch.Tensor, speaker: torch.Tensor | None = None, style: torch.Tensor | None = None,
                mel_frames: int | None = None) -> torch.Tensor:
        """``(batch, frames)`` unit ids (one per frame), ``(batch,)`` speaker / style ids (id 0 when ``None``) ->
        ``(batch, num_mels, mel_frames)`` log-mel (default :meth:`mel_frames` of ``frames``)."""
        x = self.unit_embedding(units).transpose(1, 2)                     # (B, C, T)
        cond = self._condition(units.shape[0], speaker, style)              # (B, C)
        for layer in self.layers:
            x = layer(x, cond)
        n = mel_frames if mel_frames is not None else self.mel_frames(units.shape[1])
        x = F.interpolate(x, size=n, mode="linear", align_corners=False)   # (B, C, T_mel)
        for layer in self.post:
            x = layer(x, cond)
        return self.out(F.gelu(channel_norm(x, self.out_norm)))

    # ------------------------------------------------------------------ durations (the released predictor's rules)
    def log_durations(self, units: torch.Tensor) -> torch.Tensor:
        """Predicted ``log(d + 1)`` of deduplicated ``(batch, units)``."""
        if self.duration_predictor is None:
            raise RuntimeError("this decoder has no duration predictor")
        return self.duration_predictor(self.unit_embedding(units))

    def predict_durations(self, units: torch.Tensor) -> torch.Tensor:
        """Frames per unit, ``clamp(round(exp(log_d) - 1), min=1)``: ``(batch, units)`` -> ``(batch, units)`` int64."""
        return torch.clamp(torch.round(torch.exp(self.log_durations(units)) - 1).long(), min=1)

    def duration_loss(self, units: torch.Tensor) -> torch.Tensor:
        """MSE on ``log(d + 1)`` of the runs of frame-level ``(batch, frames)`` units, the first and last run of each
        row left out when it has more than two (segment borders may cut them)."""
        feats, counts = [], []
        for row in units:
            values, count = torch.unique_consecutive(row, return_counts=True)
            if len(count) > 2:
                values, count = values[1:-1], count[1:-1]
            feats.append(self.unit_embedding(values))
            counts.append(count)
        padded = nn.utils.rnn.pad_sequence(feats, batch_first=True)
        mask = nn.utils.rnn.pad_sequence([torch.ones_like(c, dtype=torch.bool) for c in counts], batch_first=True)
        return F.mse_loss(self.duration_predictor(padded)[mask], torch.log(torch.cat(counts).float() + 1))
