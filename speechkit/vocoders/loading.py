"""One entry point for every unit vocoder folder: CodeHiFiGAN (speechkit or official format) or unit-to-mel."""

from __future__ import annotations

import json
import os
from pathlib import Path

from speechkit.vocoders.mel_loading import MEL_KINDS, load_mel_vocoder

__all__ = ["load_unit_vocoder", "load_mel_vocoder", "MEL_KINDS"]


def load_unit_vocoder(path: str | os.PathLike, config_path: str | os.PathLike | None = None, *,
                      mel_vocoder: str = "auto"):
    """Loads the unit vocoder at ``path``: a speechkit folder whose ``config.json`` says ``"kind": "unit_mel"``
    (:class:`~speechkit.vocoders.unitmel.vocoder.UnitMelVocoder`), otherwise a CodeHiFiGAN checkpoint, folder or
    model-card name (:meth:`~speechkit.vocoders.CodeHiFiGANVocoder.from_checkpoint` / ``from_pretrained``).

    Args:
        path: the folder, checkpoint or card name.
        config_path: an official checkpoint's config.json (default: beside it).
        mel_vocoder: a unit-to-mel vocoder's waveform stage: ``"auto"`` (its ``mel_vocoder/`` where it has one, else
            Griffin-Lim) or ``"griffinlim"``; CodeHiFiGANs make the waveform themselves and ignore it.

    Raises:
        VocoderError: missing, corrupt or unsupported files (the message names them).
    """
    from speechkit.utils.files import loading
    from speechkit.vocoders.errors import VocoderError

    if mel_vocoder not in ("auto", "griffinlim"):
        raise VocoderError(f"mel_vocoder must be 'auto' or 'griffinlim'. Found {mel_vocoder!r}")
    with loading(path, "vocoder", VocoderError):
        return _load(path, config_path, mel_vocoder)


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
            kind = None  # from_checkpoint names the file and the problem
        if kind == "unit_mel":
            from speechkit.vocoders.unitmel.vocoder import UnitMelVocoder

            return UnitMelVocoder.from_pretrained(p, mel_vocoder=mel_vocoder)
    return CodeHiFiGANVocoder.from_checkpoint(p, config_path)
