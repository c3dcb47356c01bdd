"""The Vocos-style mel vocoder users load: :class:`VocosVocoder` (log-mel -> waveform).

Folder layout (``save_pretrained``): ``model.safetensors`` + ``config.json`` with ``{"kind": "vocos",
"format_version": 1, "model": {...}}``, where ``model.mel`` holds the log-mel settings it was trained on (a
:class:`~speechkit.vocoders.unitmel.config.MelSettings`). A unit-to-mel vocoder whose folder has ``mel_vocoder/``
with such a folder speaks through it instead of Griffin-Lim.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speechkit.utils.files import loader
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.unitmel.config import MelSettings
from speechkit.vocoders.vocos.model import VocosGenerator

__all__ = ["VocosConfig", "VocosVocoder", "KIND", "build_vocos"]

KIND = "vocos"
FORMAT_VERSION = 1


@dataclass(kw_only=True)
class VocosConfig:
    """A :class:`~speechkit.vocoders.vocos.model.VocosGenerator` and the log-mel it reads.

    Attributes:
        mel: the input log-mel (HiFi-GAN's, as the unit-to-mel decoder predicts); the head's hop is its hop.
        dim: channels of the ConvNeXt blocks.
        intermediate_dim: hidden width inside each block.
        num_layers: blocks.
        kernel_size: depthwise kernel (odd).
        n_fft: the head's FFT size (default: the mel's).
        win_length: the head's window (default: the mel's).
    """

    mel: MelSettings = field(default_factory=MelSettings)
    dim: int = 256
    intermediate_dim: int = 768
    num_layers: int = 8
    kernel_size: int = 7
    n_fft: int | None = None
    win_length: int | None = None

    @property
    def head_n_fft(self) -> int:
        return self.n_fft or self.mel.n_fft

    def validate(self) -> None:
        self.mel.validate()
        n, hop = self.head_n_fft, self.mel.hop_length
        win = self.win_length or self.mel.win_length
        if min(self.dim, self.intermediate_dim, self.num_layers) < 1 or self.kernel_size % 2 == 0:
            raise VocoderError(f"vocos config: dim, intermediate_dim, num_layers >= 1 and an odd kernel_size "
                               f"required. Found {self.dim}, {self.intermediate_dim}, {self.num_layers}, "
                               f"{self.kernel_size}")
        if win > n or (n - hop) % 2 or n < hop:
            raise VocoderError(f"vocos config: the head needs hop_length <= n_fft, win_length <= n_fft and "
                               f"n_fft - hop_length even. Found n_fft {n}, hop {hop}, win {win}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VocosConfig:
        if not isinstance(d, dict):
            raise VocoderError(f"vocos config: 'model' must be a mapping. Found {type(d).__name__}")
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise VocoderError(f"vocos config: unknown keys {unknown}")
        try:
            d = dict(d)
            if isinstance(d.get("mel"), dict):
                d["mel"] = MelSettings(**d["mel"])
            cfg = cls(**d)
            if not isinstance(cfg.mel, MelSettings):
                raise TypeError("mel must be a mapping")
            cfg.validate()
        except VocoderError:
            raise
        except (TypeError, ValueError, AttributeError) as e:
            raise VocoderError(f"vocos config: not a valid config ({type(e).__name__}: {e})") from None
        return cfg


def build_vocos(cfg: VocosConfig) -> VocosGenerator:
    """The generator a config describes (random weights)."""
    cfg.validate()
    m = cfg.mel
    return VocosGenerator(num_mels=m.num_mels, dim=cfg.dim, intermediate_dim=cfg.intermediate_dim,
                          num_layers=cfg.num_layers, kernel_size=cfg.kernel_size, n_fft=cfg.head_n_fft,
                          hop_length=m.hop_length, win_length=cfg.win_length or m.win_length)


class VocosVocoder(nn.Module):
    """``(num_mels, frames)`` log-mel -> ``(frames * hop_length,)`` waveform by a Vocos-style generator.

    Args:
        generator: the generator (put in eval mode).
        config: its config.

    Example:
        >>> voc = VocosVocoder.from_pretrained("checkpoints/default/vocoder/mel_vocoder")
        >>> wav = voc(mel)          # mel: (80, frames) HiFi-GAN log-mel -> (frames * 256,) at 16 kHz
    """

    def __init__(self, generator: VocosGenerator, config: VocosConfig):
        super().__init__()
        config.validate()
        self.generator, self.config = generator.eval(), config
        self.precision = "fp32"

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def output_sample_rate(self) -> int:
        return self.config.mel.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.mel.hop_length

    @property
    def receptive_field(self) -> int:
        """Mel frames that shape one output frame's spectrum (the inverse STFT then spans ``n_fft / hop``)."""
        return self.generator.receptive_field

    def set_precision(self, precision: str) -> VocosVocoder:
        """Runs the ConvNeXt blocks under ``"bf16"`` / ``"fp16"`` autocast (the head and inverse FFT stay fp32), or
        ``"fp32"``; without the kernels, fp32 and one warning line (:mod:`speechkit.precision`)."""
        from speechkit.precision import resolve_precision

        self.precision = resolve_precision(precision, self.device, what="VocosVocoder.set_precision")
        return self

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, *, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None) -> VocosVocoder:
        """Loads a folder written by :meth:`save_pretrained`; ``device`` and ``dtype`` as
        :func:`speechkit.utils.checkpoint.place` (``dtype`` turns on :meth:`set_precision`'s fast path where
        ``device`` computes in it).

        Raises:
            VocoderError: missing or corrupt files, another kind of model, or weights that do not fit the config.
        """
        from speechkit.utils.checkpoint import place

        return place(cls._load(folder), device, dtype)

    @classmethod
    @loader("Vocos vocoder folder", VocoderError)
    def _load(cls, folder: str | os.PathLike) -> VocosVocoder:
        """Reads the folder (see :meth:`from_pretrained`)."""
        from speechkit.vocoders.hifigan.vocoder import _load_strict_shapes, _read_our_folder

        d = Path(folder)
        state, meta = _read_our_folder(d, KIND)
        cfg = VocosConfig.from_dict(meta.get("model"))
        gen = build_vocos(cfg)
        _load_strict_shapes(gen, state, str(d / "model.safetensors"))
        return cls(gen, cfg)

    def save_pretrained(self, folder: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        from speechkit.utils.checkpoint import save_pretrained

        meta = {"kind": KIND, "format_version": FORMAT_VERSION, "model": self.config.to_dict(), **(extra or {})}
        return save_pretrained(folder, {k: v.detach().float().cpu() for k, v in self.generator.state_dict().items()},
                               meta)

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(num_mels, frames)`` or ``(1, num_mels, frames)`` log-mel -> ``(frames * hop_length,)`` float32."""
        from speechkit.precision import DTYPES

        m = torch.as_tensor(mel, dtype=torch.float32)
        if m.dim() == 2:
            m = m[None]
        if m.dim() != 3 or m.shape[0] != 1 or m.shape[1] != self.config.mel.num_mels or m.shape[2] == 0:
            raise VocoderError(f"mel must be ({self.config.mel.num_mels}, frames) with frames > 0. "
                               f"Found shape {tuple(m.shape)}")
        if not torch.isfinite(m).all():
            raise VocoderError("mel: contains NaN or infinite values")
        dev = self.device
        with torch.autocast(dev.type, dtype=DTYPES[self.precision], enabled=self.precision != "fp32"):
            wav = self.generator(m.to(dev))
        return wav[0].float()


def check_mel_match(vocoder: Any, mel: MelSettings, source: str) -> None:
    """Raises unless ``vocoder`` (a mel vocoder) reads the log-mel ``mel`` describes."""
    theirs = getattr(getattr(vocoder, "config", None), "mel", None)
    if isinstance(theirs, MelSettings):
        diff = {k: (getattr(theirs, k), getattr(mel, k)) for k in dataclasses.asdict(mel)
                if getattr(theirs, k) != getattr(mel, k)}
        if diff:
            raise VocoderError(f"{source}: its mel settings differ from the decoder's (vocoder, decoder): "
                               + ", ".join(f"{k} {a} vs {b}" for k, (a, b) in diff.items()))
