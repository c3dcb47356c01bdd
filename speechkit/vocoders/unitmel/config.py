"""Configuration of the unit-to-mel decoder (:class:`~speechkit.vocoders.unitmel.model.UnitMelDecoder`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from speechkit.vocoders.errors import VocoderError

__all__ = ["UnitMelConfig", "MelSettings"]


@dataclass(kw_only=True)
class MelSettings:
    """The log-mel spectrogram the decoder predicts: HiFi-GAN's (``speechkit.vocoders.hifigan.losses
    .MelSpectrogram``), so a mel HiFi-GAN trained on the same settings, or Griffin-Lim, turns it into a waveform."""

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    num_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0

    def validate(self) -> None:
        if self.win_length > self.n_fft or self.hop_length < 1 or self.num_mels < 1:
            raise VocoderError(f"mel: need 1 <= hop_length, win_length <= n_fft, num_mels >= 1. Found hop "
                               f"{self.hop_length}, win {self.win_length}, n_fft {self.n_fft}, mels {self.num_mels}")


@dataclass(kw_only=True)
class UnitMelConfig:
    """A unit-to-log-mel decoder: unit, speaker and style embeddings, a stack of dilated residual 1-D convolutions
    at the unit rate (the context each frame sees), linear upsampling to the mel rate and a short convolutional
    post-net; optionally the released duration predictor (for unit sequences without durations).

    Attributes:
        num_units: unit vocabulary size K.
        num_speakers: rows of the speaker table (0 = single speaker).
        num_styles: rows of the style table (0 = none).
        channels: width of every layer.
        kernel_size: kernel of the dilated convolutions.
        dilations: dilation of each residual layer (its count is the depth); the receptive field is
            ``1 + (kernel_size - 1) * sum(dilations)`` unit frames.
        post_layers: convolutions at the mel rate after upsampling.
        dropout: dropout inside the residual layers (training only).
        code_hop_size: output samples per unit frame (320 for 50 Hz units at 16 kHz).
        duration_predictor: hidden width of the duration predictor (0 = none).
        mel: the predicted spectrogram.
        griffin_lim_iters: Griffin-Lim iterations when no mel vocoder is given.
        griffin_lim_power: exponent applied to the magnitudes before phase reconstruction.
        griffin_lim_inversion: ``"nnls"`` or ``"pinv"`` inversion of the mel filters
            (:class:`~speechkit.vocoders.griffinlim.GriffinLimVocoder`).
        detail_gain: the spectral-detail postfilter's gain at synthesis (1 = none;
            :mod:`speechkit.vocoders.unitmel.postfilter`), measured on training speech by
            ``data_prep/mel_postfilter.py``.
        detail_width: mel bins of the postfilter's envelope (odd).
    """

    num_units: int
    num_speakers: int = 0
    num_styles: int = 0
    channels: int = 256
    kernel_size: int = 5
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    post_layers: int = 2
    dropout: float = 0.1
    code_hop_size: int = 320
    duration_predictor: int = 128
    mel: MelSettings = field(default_factory=MelSettings)
    griffin_lim_iters: int = 32
    griffin_lim_power: float = 1.0
    griffin_lim_inversion: str = "nnls"
    detail_gain: float = 1.0
    detail_width: int = 5
    f0: str = "none"
    """Always ``"none"`` (pitch comes from units, speaker, style and context); kept for the pipelines, which ask
    every unit vocoder for it."""

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    @property
    def receptive_field(self) -> int:
        """Unit frames that influence one output frame (before the post-net)."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    def validate(self) -> None:
        if self.num_units < 1 or self.num_speakers < 0 or self.num_styles < 0:
            raise VocoderError(f"num_units >= 1 and table sizes >= 0 required. Found {self.num_units}, "
                               f"{self.num_speakers}, {self.num_styles}")
        if self.channels < 1 or self.kernel_size % 2 == 0 or not self.dilations or min(self.dilations) < 1:
            raise VocoderError(f"channels >= 1, an odd kernel_size and dilations >= 1 required. Found {self.channels}, "
                               f"{self.kernel_size}, {self.dilations}")
        if self.f0 != "none":
            raise VocoderError(f"f0 must be 'none' for a unit-to-mel decoder. Found {self.f0!r}")
        if not 0 < self.detail_gain <= 4 or self.detail_width < 3 or self.detail_width % 2 == 0:
            raise VocoderError(f"detail_gain in (0, 4] and an odd detail_width >= 3 required. Found "
                               f"{self.detail_gain}, {self.detail_width}")
        self.mel.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitMelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise VocoderError(f"unit-mel config: unknown keys {unknown}")
        try:
            d = dict(d)
            if isinstance(d.get("mel"), dict):
                d["mel"] = MelSettings(**d["mel"])
            if "dilations" in d:
                d["dilations"] = tuple(d["dilations"])
            cfg = cls(**d)
            cfg.validate()
        except VocoderError:
            raise
        except (TypeError, ValueError, AttributeError) as e:  # a value of the wrong type
            raise VocoderError(f"unit-mel config: not a valid config ({type(e).__name__}: {e})") from None
        return cfg
