"""Configuration of the HuBERT / wav2vec 2.0 encoder family (a keyword-only dataclass, validated)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["HubertConfig", "BASE_CONV_LAYERS", "conv_frames", "receptive_field"]

# fairseq's default "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2": 320 samples per frame (50 Hz at 16 kHz)
BASE_CONV_LAYERS: list[tuple[int, int, int]] = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2


def conv_frames(conv_layers, num_samples: int) -> int:
    """Frames a stack of ``(channels, kernel, stride)`` convolutions gives for ``num_samples`` (0 if too short)."""
    n = num_samples
    for _, k, s in conv_layers:
        n = (n - k) // s + 1
        if n <= 0:
            return 0
    return n


def receptive_field(conv_layers) -> int:
    """Input samples that one output frame of the stack sees (the shortest input that gives a frame)."""
    n = 1
    for _, k, s in reversed(conv_layers):
        n = (n - 1) * s + k
    return n


@dataclass(kw_only=True)
class HubertConfig:
    """Architecture of a HuBERT-style encoder (names follow fairseq's ``HubertConfig`` where one exists).

    Attributes:
        conv_layers: ``(channels, kernel, stride)`` of each convolution of the waveform front end
            (fairseq ``conv_feature_layers``).
        extractor_mode: ``"default"`` (group norm after the first convolution only) or ``"layer_norm"`` (layer norm
            after every convolution) — fairseq ``extractor_mode``.
        conv_bias: convolutions of the front end have a bias (fairseq ``conv_bias``).
        embed_dim: transformer width (``encoder_embed_dim``).
        num_layers: transformer layers (``encoder_layers``).
        num_heads: attention heads (``encoder_attention_heads``).
        ffn_dim: feed-forward width (``encoder_ffn_embed_dim``).
        activation: ``"gelu"`` (exact), ``"gelu_accurate"`` (tanh approximation) or ``"relu"`` (``activation_fn``).
        layer_norm_first: pre-LN transformer (large models) instead of post-LN (base models).
        conv_pos: kernel of the convolutional positional embedding.
        conv_pos_groups: its groups.
        conv_pos_batch_norm: batch norm before the positional convolution instead of weight norm (mHuBERT-25Hz).
        normalize: the waveform is layer-normalised (zero mean, unit variance, eps 1e-5) as a whole before the
            model — fairseq keeps this flag in the *task* config.
        normalize_eps: epsilon of that normalisation (fairseq: 1e-5; HF feature extractors: 1e-7).
        sample_rate: expected input rate in Hz.
        layer_norm_eps: epsilon of every layer norm.
    """

    conv_layers: list[tuple[int, int, int]] = field(default_factory=lambda: list(BASE_CONV_LAYERS))
    extractor_mode: str = "default"
    conv_bias: bool = False
    embed_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    ffn_dim: int = 3072
    activation: str = "gelu"
    layer_norm_first: bool = False
    conv_pos: int = 128
    conv_pos_groups: int = 16
    conv_pos_batch_norm: bool = False
    normalize: bool = False
    normalize_eps: float = 1e-5
    sample_rate: int = 16000
    layer_norm_eps: float = 1e-5

    def validate(self) -> None:
        if self.extractor_mode not in ("default", "layer_norm"):
            raise ValueError(f"extractor_mode must be 'default' or 'layer_norm'. Found {self.extractor_mode!r}")
        if self.activation not in ("gelu", "gelu_accurate", "gelu_fast", "relu"):
            raise ValueError(f"activation must be gelu, gelu_accurate, gelu_fast or relu. Found {self.activation!r}")
        if not self.conv_layers or any(len(c) != 3 or min(c) <= 0 for c in self.conv_layers):
            raise ValueError(f"conv_layers must be a non-empty list of positive (dim, kernel, stride). "
                             f"Found {self.conv_layers!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim must be divisible by num_heads. Found {self.embed_dim} and {self.num_heads}")
        if self.embed_dim % self.conv_pos_groups:
            raise ValueError(f"embed_dim must be divisible by conv_pos_groups. Found {self.embed_dim}, "
                             f"{self.conv_pos_groups}")

    @property
    def hop_size(self) -> int:
        """Input samples per output frame (the product of the strides): 320 for base models, 640 at 25 Hz."""
        return math.prod(s for _, _, s in self.conv_layers)

    @property
    def frame_rate(self) -> float:
        """Output frames per second."""
        return self.sample_rate / self.hop_size

    @property
    def min_samples(self) -> int:
        """Shortest input that gives one frame (400 samples for base models)."""
        return receptive_field(self.conv_layers)

    def num_frames(self, num_samples: int) -> int:
        """Frames the front end produces for ``num_samples`` input samples (0 if too short)."""
        return conv_frames(self.conv_layers, num_samples)
