"""Configs of the HiFi-GAN family: the generator body, the unit (CodeHiFiGAN) model and the mel model.

Every config is a keyword-only dataclass whose fields are documented, with ``validate()`` raising
:class:`~speechkit.vocoders.errors.VocoderError` naming the field, the rule and the value. ``to_dict`` /
``from_dict`` give the JSON stored beside our weights (``config.json`` of a speechkit model folder). The official
config files (speech-resynthesis / fairseq / textlesslib ``config.json``) are read by
:mod:`speechkit.vocoders.hifigan.interop`, never here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from speechkit.vocoders.errors import VocoderError

__all__ = ["GeneratorConfig", "DurationPredictorConfig", "CodeHiFiGANConfig", "MelHiFiGANConfig", "F0_MODES"]

#: F0 conditioning modes: none; one continuous channel (normalised F0, 0 = unvoiced); an embedding of F0 bins.
F0_MODES = ("none", "continuous", "quantized")


def _positive_ints(name: str, values, allow_empty: bool = False) -> None:
    if (not values and not allow_empty) or not all(isinstance(v, int) and v > 0 for v in values):
        raise VocoderError(f"{name} must be a non-empty list of positive integers. Found {values!r}")


@dataclass(kw_only=True)
class GeneratorConfig:
    """The HiFi-GAN generator body: ``conv_pre`` → (leaky ReLU, transposed conv, mean of resblocks) per
    upsampling stage → leaky ReLU (slope 0.01) → ``conv_post`` → tanh.

    Defaults are the released V1 unit vocoders' (hop 320 = 5·4·4·2·2 samples per frame at 16 kHz).
    """

    upsample_initial_channel: int = 512
    """Channels after ``conv_pre``; halved at every upsampling stage (``upsample_initial_channel`` in the
    official configs)."""
    upsample_rates: tuple[int, ...] = (5, 4, 4, 2, 2)
    """Stride of each transposed convolution; their product is the hop (samples per input frame)."""
    upsample_kernel_sizes: tuple[int, ...] = (11, 8, 8, 4, 4)
    """Kernel of each transposed convolution (padding ``(k - u) // 2``)."""
    resblock: str = "1"
    """``"1"``: residual blocks of (dilated conv, conv) pairs (V1/V2); ``"2"``: single dilated convs (V3)."""
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    """Kernel of each parallel residual block (their outputs are averaged)."""
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    """Dilations of each residual block (3 per block for type 1, 2 for type 2 in the released configs)."""

    @property
    def hop_length(self) -> int:
        """Output samples per input frame (product of ``upsample_rates``)."""
        return math.prod(self.upsample_rates)

    def validate(self) -> None:
        _positive_ints("generator.upsample_rates", self.upsample_rates)
        _positive_ints("generator.upsample_kernel_sizes", self.upsample_kernel_sizes)
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise VocoderError(
                f"generator.upsample_kernel_sizes needs one kernel per upsample rate ({len(self.upsample_rates)}). "
                f"Found {len(self.upsample_kernel_sizes)}")
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True):
            if k < u:
                raise VocoderError(f"generator.upsample_kernel_sizes must be >= their upsample rate. Found kernel "
                                   f"{k} for rate {u}")
        if self.resblock not in ("1", "2"):
            raise VocoderError(f"generator.resblock must be '1' or '2'. Found {self.resblock!r}")
        _positive_ints("generator.resblock_kernel_sizes", self.resblock_kernel_sizes)
        if len(self.resblock_dilation_sizes) != len(self.resblock_kernel_sizes):
            raise VocoderError("generator.resblock_dilation_sizes needs one list per resblock kernel "
                               f"({len(self.resblock_kernel_sizes)}). Found {len(self.resblock_dilation_sizes)}")
        needed = 3 if self.resblock == "1" else 2
        for d in self.resblock_dilation_sizes:
            _positive_ints("generator.resblock_dilation_sizes", d)
            if len(d) < needed:
                raise VocoderError(f"generator.resblock_dilation_sizes: resblock type {self.resblock} uses "
                                   f"{needed} dilations per block. Found {list(d)}")
        last = self.upsample_initial_channel // 2 ** len(self.upsample_rates)
        if not isinstance(self.upsample_initial_channel, int) or last < 1:
            raise VocoderError(
                f"generator.upsample_initial_channel must be >= 2**{len(self.upsample_rates)} (it is halved at each "
                f"of the {len(self.upsample_rates)} stages). Found {self.upsample_initial_channel}")


@dataclass(kw_only=True)
class DurationPredictorConfig:
    """The duration predictor (fairseq ``VariancePredictor``): conv-ReLU-LayerNorm-dropout twice, then a linear
    layer predicting ``log(d + 1)`` frames per deduplicated unit."""

    hidden_dim: int = 128
    """Channels of both convolutions (``var_pred_hidden_dim``)."""
    kernel_size: int = 3
    """Kernel of both convolutions (``var_pred_kernel_size``; the second one always pads by 1, as released)."""
    dropout: float = 0.5
    """Dropout after each LayerNorm during training (``var_pred_dropout``)."""

    def validate(self) -> None:
        if self.hidden_dim < 1:
            raise VocoderError(f"duration_predictor.hidden_dim must be >= 1. Found {self.hidden_dim}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise VocoderError(f"duration_predictor.kernel_size must be odd and >= 1. Found {self.kernel_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise VocoderError(f"duration_predictor.dropout must be in [0, 1). Found {self.dropout}")


@dataclass(kw_only=True)
class CodeHiFiGANConfig:
    """A unit HiFi-GAN (CodeHiFiGAN): unit embeddings, optionally concatenated on channels with F0, a speaker
    and a style embedding (in that order), decoded by a HiFi-GAN generator; optional duration predictor."""

    num_units: int = 100
    """Size of the unit vocabulary (``num_embeddings``)."""
    embedding_dim: int = 128
    """Width of the unit, speaker, style and F0-bin embeddings (``embedding_dim``)."""
    num_speakers: int = 0
    """Rows of the speaker table (``num_speakers``, 200 in the releases that do not set it); 0 = no speaker input."""
    num_styles: int = 0
    """Rows of the style table (``num_styles``); 0 = no style input."""
    speaker_embedding_dim: int = 0
    """Width of an external speaker vector projected by a linear layer (fairseq ``embedder_params``); 0 = none.
    Exclusive with ``num_speakers``."""
    f0: str = "none"
    """F0 conditioning: ``"none"``, ``"continuous"`` (one channel of speaker-normalised F0, 0 = unvoiced, as
    speech-resynthesis' ``f0_normalize``) or ``"quantized"`` (an embedding of ``f0_bins`` F0 bins)."""
    f0_bins: int = 0
    """Number of F0 bins for ``f0="quantized"`` (``f0_quant_num_bin``)."""
    duration_predictor: DurationPredictorConfig | None = None
    """The duration predictor, or ``None`` (no ``dur_prediction``)."""
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    """The generator body."""
    sample_rate: int = 16000
    """Output sample rate (``sampling_rate``)."""

    @property
    def conditioning_dim(self) -> int:
        """Input channels of the generator: units + F0 + speaker + style (``model_in_dim``)."""
        dim = self.embedding_dim
        dim += {"none": 0, "continuous": 1, "quantized": self.embedding_dim}[self.f0]
        dim += self.embedding_dim if (self.num_speakers or self.speaker_embedding_dim) else 0
        dim += self.embedding_dim if self.num_styles else 0
        return dim

    @property
    def code_hop_size(self) -> int:
        """Output samples per unit frame."""
        return self.generator.hop_length

    def validate(self) -> None:
        for name in ("num_units", "embedding_dim", "sample_rate"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise VocoderError(f"{name} must be a positive integer. Found {getattr(self, name)!r}")
        for name in ("num_speakers", "num_styles", "speaker_embedding_dim", "f0_bins"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise VocoderError(f"{name} must be an integer >= 0. Found {getattr(self, name)!r}")
        if self.num_speakers and self.speaker_embedding_dim:
            raise VocoderError("num_speakers (a speaker table) and speaker_embedding_dim (external speaker vectors) "
                               f"are exclusive. Found {self.num_speakers} and {self.speaker_embedding_dim}")
        if self.f0 not in F0_MODES:
            raise VocoderError(f"f0 must be one of {F0_MODES}. Found {self.f0!r}")
        if (self.f0 == "quantized") != (self.f0_bins > 0):
            raise VocoderError(f"f0_bins must be > 0 exactly when f0 is 'quantized'. Found f0={self.f0!r}, "
                               f"f0_bins={self.f0_bins}")
        if self.duration_predictor is not None:
            self.duration_predictor.validate()
        self.generator.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodeHiFiGANConfig:
        """The config of a dict written by :meth:`to_dict` (unknown keys are refused)."""
        try:
            d = dict(d)
            d.pop("kind", None)
            dp = d.pop("duration_predictor", None)
            gen = d.pop("generator", {})
            cfg = cls(**d, duration_predictor=None if dp is None else DurationPredictorConfig(**dp),
                      generator=_generator_from_dict(gen))
            cfg.validate()
        except VocoderError:
            raise
        except (TypeError, ValueError, AttributeError) as e:  # a missing field or a value of the wrong type
            raise VocoderError(f"not a CodeHiFiGAN config ({type(e).__name__}: {e})") from None
        return cfg


@dataclass(kw_only=True)
class MelHiFiGANConfig:
    """The original HiFi-GAN: a log-mel spectrogram to a waveform (jik876/hifi-gan, used by the VDTTS model).

    Defaults are HiFi-GAN V1 at 22.05 kHz (hop 256 = 8·8·2·2)."""

    num_mels: int = 80
    """Mel channels of the input (``num_mels``)."""
    sample_rate: int = 22050
    """Output sample rate (``sampling_rate``)."""
    generator: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(
        upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4)))
    """The generator body."""

    def validate(self) -> None:
        if self.num_mels < 1:
            raise VocoderError(f"num_mels must be >= 1. Found {self.num_mels}")
        if self.sample_rate < 1:
            raise VocoderError(f"sample_rate must be >= 1. Found {self.sample_rate}")
        self.generator.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MelHiFiGANConfig:
        d = dict(d)
        d.pop("kind", None)
        gen = d.pop("generator", {})
        try:
            cfg = cls(**d, generator=_generator_from_dict(gen))
        except TypeError as e:
            raise VocoderError(f"not a mel HiFi-GAN config ({e})") from None
        cfg.validate()
        return cfg


def _generator_from_dict(d: dict[str, Any]) -> GeneratorConfig:
    d = dict(d)
    for key in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
        if key in d:
            d[key] = tuple(d[key])
    if "resblock_dilation_sizes" in d:
        d["resblock_dilation_sizes"] = tuple(tuple(x) for x in d["resblock_dilation_sizes"])
    if "resblock" in d:
        d["resblock"] = str(d["resblock"])
    try:
        return GeneratorConfig(**d)
    except TypeError as e:
        raise VocoderError(f"not a generator config ({e})") from None
