"""The mel-spectrogram HiFi-GAN vocoder (jik876/hifi-gan format; the VDTTS model's vocoder)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan import interop
from speechkit.vocoders.hifigan.config import MelHiFiGANConfig
from speechkit.vocoders.hifigan.factory import build_mel_hifigan
from speechkit.vocoders.hifigan.model import HiFiGANGenerator
from speechkit.vocoders.hifigan.vocoder import (
    FORMAT_VERSION,
    _Base,
    _is_our_folder,
    _latest_official,
    _load_strict_shapes,
    _read_our_folder,
)

__all__ = ["HiFiGANVocoder"]


class HiFiGANVocoder(_Base):
    """Mel-spectrogram HiFi-GAN vocoder (jik876/hifi-gan format; the VDTTS model's vocoder).

    Example:
        >>> voc = HiFiGANVocoder.from_pretrained("g_02500000", config_path="config.json")
        >>> wav = voc(mel)   # mel: (num_mels, frames) log-mel → (frames * hop_length,)
    """

    def __init__(self, generator: HiFiGANGenerator, config: MelHiFiGANConfig):
        super().__init__()
        config.validate()
        self.body = generator.eval().remove_weight_norm()
        self.config = config

    @property
    def generator(self) -> HiFiGANGenerator:  # type: ignore[override]
        return self.body

    @property
    def output_sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.generator.hop_length

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, config_path: str | os.PathLike | None = None,
                        device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> HiFiGANVocoder:
        """Loads a folder written by :meth:`save_pretrained`, or a jik876/hifi-gan ``g_XXXXXXXX`` (a folder of them:
        the latest) with its ``config.json``.

        Args:
            path: the folder or checkpoint file.
            config_path: an official checkpoint's ``config.json``; ``None`` = the one beside it.
            device: where to put it (default: the CPU).
            dtype: as :func:`speechkit.utils.checkpoint.place` (``torch.bfloat16`` / ``torch.float16`` turn on
                :meth:`set_precision`'s fast path where ``device`` computes in it).

        Raises:
            VocoderError: missing or corrupt files, or config and weights that disagree.
        """
        from speechkit.utils.checkpoint import place

        p = Path(path)
        if not p.exists():
            raise VocoderError(f"{p}: no such checkpoint file or vocoder folder")
        voc = cls._load_ours(p) if _is_our_folder(p) else cls._load_official(p, config_path)
        return place(voc, device, dtype)

    @classmethod
    def from_checkpoint(cls, ckpt: str | os.PathLike, config_path: str | os.PathLike | None = None) -> HiFiGANVocoder:
        """Deprecated alias (kept for one release) of ``HiFiGANVocoder.from_pretrained(ckpt, config_path=...)``."""
        warnings.warn("HiFiGANVocoder.from_checkpoint is deprecated; use "
                      "HiFiGANVocoder.from_pretrained(ckpt, config_path=...)", DeprecationWarning, stacklevel=2)
        return cls.from_pretrained(ckpt, config_path=config_path)

    @classmethod
    def _load_official(cls, ckpt: Path, config_path: str | os.PathLike | None) -> HiFiGANVocoder:
        p = _latest_official(ckpt) if ckpt.is_dir() else ckpt
        config_path = Path(config_path) if config_path is not None else p.parent / "config.json"
        cfg = interop.mel_config_from_official(interop.read_official_config(config_path), source=str(config_path))
        gen = build_mel_hifigan(cfg)
        _load_strict_shapes(gen, interop.state_dict_from_official(interop.load_official_checkpoint(p), kind="mel"),
                            str(p))
        return cls(gen, cfg)

    @classmethod
    def _load_ours(cls, folder: str | os.PathLike) -> HiFiGANVocoder:
        d = Path(folder)
        state, config = _read_our_folder(d, "mel_hifigan")
        cfg = MelHiFiGANConfig.from_dict(config["model"])
        gen = build_mel_hifigan(cfg)
        _load_strict_shapes(gen, state, str(d / "model.safetensors"))
        return cls(gen, cfg)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        from speechkit.utils.checkpoint import save_pretrained

        config = {"kind": "mel_hifigan", "format_version": FORMAT_VERSION, "model": self.config.to_dict()}
        return save_pretrained(folder, {k: v.float() for k, v in self.body.state_dict().items()}, config)

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(num_mels, frames)`` or ``(1, num_mels, frames)`` log-mel → ``(frames * hop_length,)`` float32."""
        m = torch.as_tensor(mel, dtype=torch.float32)
        if m.dim() == 2:
            m = m[None]
        if m.dim() != 3 or m.shape[0] != 1 or m.shape[1] != self.config.num_mels or m.shape[2] == 0:
            raise VocoderError(f"mel must be ({self.config.num_mels}, frames) with frames > 0. "
                               f"Found shape {tuple(m.shape)}")
        return self._synthesize(m.to(self.device))
