"""HiFi-GAN building blocks: the generator body (mel input), the unit generator (CodeHiFiGAN) and its duration
predictor.

Modules take plain typed arguments (only :mod:`~speechkit.vocoders.hifigan.factory` reads configs). Convolutions
are plain ``nn.Conv1d`` / ``nn.ConvTranspose1d``; :meth:`HiFiGANGenerator.apply_weight_norm` adds weight
normalisation (``torch.nn.utils.parametrizations``) for training and :meth:`HiFiGANGenerator.remove_weight_norm`
folds it into plain weights for inference. The computation follows the released generators operation by
operation (leaky ReLU 0.1 inside, 0.01 before ``conv_post``, tanh output, resblock outputs summed in order then
divided by their count), so official weights give the official waveforms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize

__all__ = ["ResBlock1", "ResBlock2", "HiFiGANGenerator", "DurationPredictor", "CodeHiFiGANGenerator",
           "LRELU_SLOPE"]

LRELU_SLOPE = 0.1


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def _weight_2d(conv: nn.Conv1d | nn.ConvTranspose1d) -> torch.Tensor:
    """``conv``'s weight as ``(..., 1, kernel)`` in channels-last layout, cached until the weight changes."""
    w = conv.weight
    key = (w.data_ptr(), w._version, w.dtype, w.device)
    cached = conv.__dict__.get("_weight_2d")
    if cached is None or cached[0] != key:
        cached = (key, w.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last))
        conv.__dict__["_weight_2d"] = cached
    return cached[1]


def conv(module: nn.Conv1d | nn.ConvTranspose1d, x: torch.Tensor, slope: float | None = None) -> torch.Tensor:
    """Applies a 1-D (transposed) convolution, then a leaky ReLU of ``slope`` if given.

    ``(batch, channels, time)`` inputs go through the module itself. ``(batch, channels, 1, time)`` channels-last
    inputs run the equivalent 2-D convolution, which oneDNN computes several times faster on CPUs (same result up
    to float summation order); at inference on CPU the leaky ReLU is then fused into the convolution (a oneDNN
    post-op, bit-identical to applying it after).
    """
    if x.dim() == 3:
        y = module(x)
        return y if slope is None else F.leaky_relu(y, slope)
    b = module.bias
    grad = torch.is_grad_enabled() and module.weight.requires_grad
    if grad:  # training: differentiable, recomputed each call
        w = module.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    else:
        w, b = _weight_2d(module), None if b is None else b.detach()
    if isinstance(module, nn.ConvTranspose1d):
        y = F.conv_transpose2d(x, w, b, (1, module.stride[0]), (0, module.padding[0]), (0, module.output_padding[0]),
                               module.groups, (1, module.dilation[0]))
    elif slope is not None and not grad and x.device.type == "cpu" and _FUSED is not None:
        return _FUSED(x, w, b, [0, module.padding[0]], [1, module.stride[0]], [1, module.dilation[0]], module.groups,
                      "leaky_relu", [slope], "")
    else:
        y = F.conv2d(x, w, b, (1, module.stride[0]), (0, module.padding[0]), (1, module.dilation[0]), module.groups)
    return y if slope is None else F.leaky_relu(y, slope)


# oneDNN convolution with a fused element-wise post-op (what torch.compile uses on CPU); None if unavailable
_FUSED = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None) \
    if torch.backends.mkldnn.is_available() else None


class ResBlock1(nn.Module):
    """Residual block of HiFi-GAN V1/V2: for each dilation, ``x + conv(lrelu(conv_dilated(lrelu(x))))``.

    Args:
        channels: input and output channels.
        kernel_size: kernel of every convolution.
        dilations: dilation of the first convolution of each pair.

    Shapes: ``(batch, channels, time)`` → same.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=_padding(kernel_size))
            for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = conv(c2, conv(c1, F.leaky_relu(x, LRELU_SLOPE), LRELU_SLOPE))
            x = xt + x
        return x

    def reach(self) -> int:
        """Samples of context each side an output sample depends on."""
        return sum(c.dilation[0] * (c.kernel_size[0] - 1) // 2 for c in [*self.convs1, *self.convs2])


class ResBlock2(nn.Module):
    """Residual block of HiFi-GAN V3: for each dilation, ``x + conv_dilated(lrelu(x))``.

    Shapes: ``(batch, channels, time)`` → same.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d))
            for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c in self.convs:
            x = conv(c, F.leaky_relu(x, LRELU_SLOPE)) + x
        return x

    def reach(self) -> int:
        return sum(c.dilation[0] * (c.kernel_size[0] - 1) // 2 for c in self.convs)


class HiFiGANGenerator(nn.Module):
    """The HiFi-GAN generator: ``(batch, in_channels, frames)`` features → ``(batch, 1, frames * hop)`` waveform.

    Args:
        in_channels: input feature channels (mel bins, or the unit conditioning width).
        upsample_initial_channel: channels after ``conv_pre``, halved at each stage.
        upsample_rates: stride of each transposed convolution.
        upsample_kernel_sizes: kernel of each transposed convolution.
        resblock: ``"1"`` or ``"2"`` (residual block type).
        resblock_kernel_sizes: kernel of each parallel residual block.
        resblock_dilation_sizes: dilations of each residual block.

    Example:
        >>> g = HiFiGANGenerator(80, 32, (8, 8, 2, 2), (16, 16, 4, 4), "1", (3, 7, 11), ((1, 3, 5),) * 3)
        >>> g(torch.randn(1, 80, 10)).shape
        torch.Size([1, 1, 2560])
    """

    def __init__(self, in_channels: int, upsample_initial_channel: int, upsample_rates: tuple[int, ...],
                 upsample_kernel_sizes: tuple[int, ...], resblock: str, resblock_kernel_sizes: tuple[int, ...],
                 resblock_dilation_sizes: tuple[tuple[int, ...], ...]):
        super().__init__()
        self.upsample_rates = tuple(upsample_rates)
        self.num_kernels = len(resblock_kernel_sizes)
        block = ResBlock1 if str(resblock) == "1" else ResBlock2
        self.conv_pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            ch = upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(ch * 2, ch, k, u, padding=(k - u) // 2))
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(ch, rk, tuple(rd)))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3)

    @property
    def hop_length(self) -> int:
        """Output samples per input frame."""
        n = 1
        for u in self.upsample_rates:
            n *= u
        return n

    def forward(self, x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """``(batch, in_channels, frames)`` → ``(batch, 1, frames * hop_length)`` in [-1, 1].

        Args:
            x: input features.
            channels_last: compute with channels-last 2-D convolutions (several times faster on CPUs, equal up to
                float summation order). ``False`` runs the 1-D convolutions of the released code exactly.
        """
        if channels_last:
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = conv(self.conv_pre, x, LRELU_SLOPE)  # the pre-activation of the first upsampling
        for i, up in enumerate(self.ups):
            x = conv(up, x if i == 0 else F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs += block(x)
            x = xs / self.num_kernels
        x = conv(self.conv_post, F.leaky_relu(x))  # default slope 0.01 here, as released
        x = torch.tanh(x)
        return x.reshape(x.shape[0], 1, x.shape[-1]) if channels_last else x

    def receptive_field(self) -> int:
        """Input frames of context, each side, that an output sample can depend on (an upper bound): chunks
        synthesised with at least this much context on both sides equal the whole-sequence output."""
        reach = 3.0  # conv_pre, in input frames
        rate = 1
        for i, up in enumerate(self.ups):
            reach += -(-up.kernel_size[0] // up.stride[0]) / rate  # transposed conv, in its input samples
            rate *= up.stride[0]
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            reach += max(b.reach() for b in blocks) / rate
        reach += 3 / rate  # conv_post
        return int(reach) + 2

    def _convs(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, nn.Conv1d | nn.ConvTranspose1d)]

    def apply_weight_norm(self) -> HiFiGANGenerator:
        """Re-parametrises every convolution as ``g * v / ||v||`` (norm over all dims but 0), for training."""
        for m in self._convs():
            if not parametrize.is_parametrized(m, "weight"):
                parametrizations.weight_norm(m, "weight", dim=0)
        return self

    def remove_weight_norm(self) -> HiFiGANGenerator:
        """Folds weight normalisation into plain weights (no-op where there is none)."""
        for m in self._convs():
            if parametrize.is_parametrized(m, "weight"):
                parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        return self

    def init_weights(self, std: float = 0.01) -> HiFiGANGenerator:
        """HiFi-GAN's initialisation: normal(0, ``std``) weights for the upsampling, residual and output convs."""
        with torch.no_grad():
            for m in [*self.ups.modules(), *self.resblocks.modules(), self.conv_post]:
                if isinstance(m, nn.Conv1d | nn.ConvTranspose1d):
                    m.weight.normal_(0.0, std)
        return self


class DurationPredictor(nn.Module):
    """Predicts ``log(d + 1)`` frames for each deduplicated unit (fairseq ``VariancePredictor``).

    Args:
        in_dim: input feature width (the unit embedding width).
        hidden_dim: channels of both convolutions.
        kernel_size: kernel of both convolutions.
        dropout: dropout after each LayerNorm (training only).

    Shapes: ``(batch, units, in_dim)`` → ``(batch, units)``.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 128, kernel_size: int = 3, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv1d(in_dim, hidden_dim, kernel_size, padding=(kernel_size - 1) // 2)
        self.ln1 = nn.LayerNorm(hidden_dim)
        self.conv2 = nn.Conv1d(hidden_dim, hidden_dim, kernel_size, padding=1)  # padding 1 as released
        self.ln2 = nn.LayerNorm(hidden_dim)
        self.proj = nn.Linear(hidden_dim, 1)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x.transpose(1, 2))).transpose(1, 2)
        x = F.dropout(self.ln1(x), self.dropout, self.training)
        x = F.relu(self.conv2(x.transpose(1, 2))).transpose(1, 2)
        x = F.dropout(self.ln2(x), self.dropout, self.training)
        return self.proj(x).squeeze(2)


def repeat_frames(x: torch.Tensor, length: int, what: str) -> torch.Tensor:
    """Repeats each time step of ``(batch, channels, time)`` so the result has ``length`` steps (an integer
    ratio is required, as in the released code)."""
    t = x.shape[-1]
    if t == length:
        return x
    if length % t:
        from speechkit.vocoders.errors import VocoderError

        raise VocoderError(f"{what}: {t} frames cannot be aligned with {length} frames (one length must be a whole "
                           "multiple of the other)")
    return torch.repeat_interleave(x, length // t, dim=-1)


class CodeHiFiGANGenerator(nn.Module):
    """Unit HiFi-GAN: unit embeddings (+ F0, speaker, style, concatenated on channels in that order) → waveform.

    Args:
        num_units: unit vocabulary size.
        embedding_dim: width of the unit / speaker / style / F0-bin embeddings.
        generator: the generator body (its ``in_channels`` must equal the conditioning width).
        num_speakers: rows of the speaker table (0 = none).
        num_styles: rows of the style table (0 = none).
        speaker_embedding_dim: width of external speaker vectors, projected linearly (0 = none).
        f0: ``"none"``, ``"continuous"`` or ``"quantized"``.
        f0_bins: number of F0 bins for ``"quantized"``.
        duration_predictor: optional :class:`DurationPredictor` over unit embeddings.

    Example:
        >>> body = HiFiGANGenerator(16, 32, (5, 4, 4, 2, 2), (11, 8, 8, 4, 4), "1", (3,), ((1, 3, 5),))
        >>> g = CodeHiFiGANGenerator(num_units=100, embedding_dim=16, generator=body)
        >>> g(torch.randint(0, 100, (2, 7))).shape
        torch.Size([2, 1, 2240])
    """

    def __init__(self, *, num_units: int, embedding_dim: int, generator: HiFiGANGenerator, num_speakers: int = 0,
                 num_styles: int = 0, speaker_embedding_dim: int = 0, f0: str = "none", f0_bins: int = 0,
                 duration_predictor: DurationPredictor | None = None):
        super().__init__()
        self.f0_mode = f0
        self.unit_embedding = nn.Embedding(num_units, embedding_dim)
        self.f0_embedding = nn.Embedding(f0_bins, embedding_dim) if f0 == "quantized" else None
        self.speaker_embedding: nn.Module | None = None
        if num_speakers:
            self.speaker_embedding = nn.Embedding(num_speakers, embedding_dim)
        elif speaker_embedding_dim:
            self.speaker_embedding = nn.Linear(speaker_embedding_dim, embedding_dim)
        self.style_embedding = nn.Embedding(num_styles, embedding_dim) if num_styles else None
        self.duration_predictor = duration_predictor
        self.generator = generator

    def log_durations(self, units: torch.Tensor) -> torch.Tensor:
        """Predicted ``log(d + 1)`` for ``(batch, units)`` deduplicated units → ``(batch, units)``."""
        if self.duration_predictor is None:
            raise RuntimeError("this model has no duration predictor")
        return self.duration_predictor(self.unit_embedding(units))

    def predict_durations(self, units: torch.Tensor) -> torch.Tensor:
        """Frames per unit, ``clamp(round(exp(log_d) - 1), min=1)``: ``(batch, units)`` → ``(batch, units)`` int64."""
        log_d = self.log_durations(units)
        return torch.clamp(torch.round(torch.exp(log_d) - 1).long(), min=1)

    def conditioning(self, units: torch.Tensor, f0: torch.Tensor | None = None, speaker: torch.Tensor | None = None,
                     style: torch.Tensor | None = None) -> torch.Tensor:
        """The generator input.

        Args:
            units: ``(batch, frames)`` int64 unit ids (one per frame).
            f0: ``(batch, f0_frames)`` normalised F0 (float) or F0 bins (int); ``f0_frames`` a whole multiple or
                divisor of ``frames`` (the shorter one is repeated).
            speaker: ``(batch,)`` speaker ids, or ``(batch, speaker_embedding_dim)`` vectors.
            style: ``(batch,)`` style ids.

        Returns:
            ``(batch, conditioning_dim, max(frames, f0_frames))``.
        """
        x = self.unit_embedding(units).transpose(1, 2)
        parts = [x]
        if self.f0_mode != "none":
            if f0 is None:
                raise RuntimeError("this model is conditioned on F0: f0 is required")
            if self.f0_embedding is not None:
                f = self.f0_embedding(f0.long()).transpose(1, 2)
            else:
                f = f0.to(x.dtype).unsqueeze(1)
            length = max(x.shape[-1], f.shape[-1])
            parts = [repeat_frames(x, length, "units"), repeat_frames(f, length, "f0")]
        length = parts[0].shape[-1]
        for table, value in ((self.speaker_embedding, speaker), (self.style_embedding, style)):
            if table is not None:
                if value is None:
                    raise RuntimeError("speaker and style are required by the tables this model has")
                e = table(value if value.is_floating_point() else value.long()).to(x.dtype)
                parts.append(e.reshape(e.shape[0], -1, 1).expand(-1, -1, length))
        return torch.cat(parts, dim=1)

    def forward(self, units: torch.Tensor, f0: torch.Tensor | None = None, speaker: torch.Tensor | None = None,
                style: torch.Tensor | None = None, channels_last: bool = False) -> torch.Tensor:
        """``(batch, frames)`` units (+ conditioning, see :meth:`conditioning`) → ``(batch, 1, samples)``
        (``channels_last``: see :meth:`HiFiGANGenerator.forward`)."""
        return self.generator(self.conditioning(units, f0, speaker, style), channels_last)

    def duration_loss(self, units: torch.Tensor) -> torch.Tensor:
        """Training loss of the duration predictor on frame-level ``(batch, frames)`` units: MSE between the
        predicted ``log(d + 1)`` and the observed run lengths, the first and last run of each row left out (they
        may be cut by segment sampling) when a row has more than two runs — the released recipe."""
        feats, counts = [], []
        for row in units:
            values, count = torch.unique_consecutive(row, return_counts=True)
            if len(count) > 2:
                values, count = values[1:-1], count[1:-1]
            feats.append(self.unit_embedding(values))
            counts.append(count)
        padded = nn.utils.rnn.pad_sequence(feats, batch_first=True)  # zero features beyond each row, as released
        mask = nn.utils.rnn.pad_sequence([torch.ones_like(c, dtype=torch.bool) for c in counts], batch_first=True)
        log_pred = self.duration_predictor(padded)[mask]
        return F.mse_loss(log_pred, torch.log(torch.cat(counts).float() + 1))
