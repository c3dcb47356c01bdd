"""One entry point for every unit vocoder folder: CodeHiFiGAN (speechkit or official format) or unit-to-mel."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["load_unit_vocoder"]


def load_unit_vocoder(path: str | os.PathLike, config_path: str | os.PathLike | None = None):
    """Loads the unit vocoder at ``path``: a speechkit folder whose ``config.json`` says ``"kind": "unit_mel"``
    (:class:`~speechkit.vocoders.unitmel.vocoder.UnitMelVocoder`), otherwise a CodeHiFiGAN checkpoint, folder or
    model-card name (:meth:`~speechkit.vocoders.CodeHiFiGANVocoder.from_checkpoint` / ``from_pretrained``).

    Raises:
        VocoderError: missing, corrupt or unsupported files (the message names them).
    """
    from speechkit.utils.files import loading
    from speechkit.vocoders.errors import VocoderError

    with loading(path, "vocoder", VocoderError):
        return _load(path, config_path)


def _load(path: str | os.PathLike, config_path: str | os.PathLike | None):
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

            return UnitMelVocoder.from_pretrained(p)
    return CodeHiFiGANVocoder.from_checkpoint(p, config_path)
