"""One entry point for every unit vocoder folder: CodeHiFiGAN (speechkit or official format) or unit-to-mel."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch

from speechkit.vocoders.mel_loading import MEL_KINDS, load_mel_vocoder

__all__ = ["UnitVocoder", "load_unit_vocoder", "load_mel_vocoder", "MEL_KINDS"]


class _AnyUnitVocoder(type):
    """``isinstance`` / ``issubclass`` against :class:`UnitVocoder`: any unit vocoder class (one with the unit-input
    checks every unit vocoder shares)."""

    def __instancecheck__(cls, obj) -> bool:
        return cls.__subclasscheck__(type(obj))

    def __subclasscheck__(cls, other) -> bool:
        from speechkit.vocoders.inputs import UnitInputs

        return type.__subclasscheck__(cls, other) or issubclass(other, UnitInputs)


class UnitVocoder(metaclass=_AnyUnitVocoder):
    """Any unit vocoder, loaded by the kind its folder names (as transformers' ``AutoModel`` does): a
    :class:`~speechkit.vocoders.unitmel.vocoder.UnitMelVocoder` or a
    :class:`~speechkit.vocoders.CodeHiFiGANVocoder`. Not instantiated itself; ``isinstance(voc, UnitVocoder)`` is
    true for both.

    Example:
        >>> from speechkit.vocoders import UnitVocoder
        >>> voc = UnitVocoder.from_pretrained("checkpoints/default/vocoder")   # whichever kind the folder holds
        >>> wav = voc(units, speaker="ex01")
    """

    def __new__(cls, *args, **kwargs):
        raise TypeError("UnitVocoder is not instantiated; load one with UnitVocoder.from_pretrained(path)")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, config_path: str | os.PathLike | None = None,
                        mel_vocoder: str = "auto", device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None):
        """Loads the unit vocoder at ``name_or_path``: a speechkit folder whose ``config.json`` says
        ``"kind": "unit_mel"`` (:meth:`UnitMelVocoder.from_pretrained
        <speechkit.vocoders.unitmel.vocoder.UnitMelVocoder.from_pretrained>`), otherwise a CodeHiFiGAN folder,
        official checkpoint or model-card name (:meth:`CodeHiFiGANVocoder.from_pretrained
        <speechkit.vocoders.CodeHiFiGANVocoder.from_pretrained>`).

        Args:
            name_or_path: the folder, checkpoint or card name.
            config_path: an official checkpoint's config.json (default: beside it).
            mel_vocoder: a unit-to-mel vocoder's waveform stage: ``"auto"`` (its ``mel_vocoder/`` where it has one,
                else Griffin-Lim) or ``"griffinlim"``; CodeHiFiGANs make the waveform themselves and ignore it.
            device: where to put it (default: the CPU).
            dtype: as :func:`speechkit.utils.checkpoint.place` (``torch.bfloat16`` / ``torch.float16`` turn on the
                vocoder's ``set_precision`` fast path where ``device`` computes in it).

        Raises:
            VocoderError: missing, corrupt or unsupported files (the message names them).
        """
        from speechkit.utils.checkpoint import place
        from speechkit.utils.files import loading
        from speechkit.vocoders.errors import VocoderError

        if mel_vocoder not in ("auto", "griffinlim"):
            raise VocoderError(f"mel_vocoder must be 'auto' or 'griffinlim'. Found {mel_vocoder!r}")
        with loading(name_or_path, "vocoder", VocoderError):
            voc = _load(name_or_path, config_path, mel_vocoder)
        return place(voc, device, dtype)


def load_unit_vocoder(path: str | os.PathLike, config_path: str | os.PathLike | None = None, *,
                      mel_vocoder: str = "auto"):
    """Deprecated alias (kept for one release) of
    ``UnitVocoder.from_pretrained(path, config_path=config_path, mel_vocoder=mel_vocoder)``."""
    warnings.warn("load_unit_vocoder is deprecated; use UnitVocoder.from_pretrained(path, config_path=..., "
                  "mel_vocoder=...) (from speechkit.vocoders import UnitVocoder)", DeprecationWarning, stacklevel=2)
    return UnitVocoder.from_pretrained(path, config_path=config_path, mel_vocoder=mel_vocoder)


def _load(path: str | os.PathLike, config_path: str | os.PathLike | None, mel_vocoder: str = "auto"):
    from speechkit import hub
    from speechkit.vocoders.hifigan.vocoder import CodeHiFiGANVocoder

    if hub.is_card_name(path):
        return CodeHiFiGANVocoder.from_pretrained(path)
    p = Path(path)
    cfg = p / "config.json"
    if p.is_dir() and (p / "model.safetensors").is_file() and cfg.is_file():
        try:
            kind = json.loads(cfg.read_text(encoding="utf-8")).get("kind")
        except (ValueError, AttributeError):
            kind = None  # CodeHiFiGANVocoder.from_pretrained names the file and the problem
        if kind == "unit_mel":
            from speechkit.vocoders.unitmel.vocoder import UnitMelVocoder

            return UnitMelVocoder.from_pretrained(p, mel_vocoder=mel_vocoder)
    return CodeHiFiGANVocoder.from_pretrained(p, config_path=config_path)
