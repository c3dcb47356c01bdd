"""One entry point for every unit vocoder folder: CodeHiFiGAN (speechkit or official format) or unit-to-mel."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["load_unit_vocoder", "load_mel_vocoder"]


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


MEL_KINDS = ("vocos", "mel_hifigan")


def load_mel_vocoder(path: str | os.PathLike, mel=None):
    """Loads the mel vocoder folder at ``path`` by the ``kind`` its ``config.json`` names: ``"vocos"``
    (:class:`~speechkit.vocoders.VocosVocoder`) or ``"mel_hifigan"`` (:class:`~speechkit.vocoders.HiFiGANVocoder`).

    Args:
        path: the folder.
        mel: the :class:`~speechkit.vocoders.unitmel.config.MelSettings` it must read (``None``: not checked); a
            mel HiFi-GAN, whose folder records only its rate and hop, is checked on those.

    Raises:
        VocoderError: a missing, truncated or unreadable folder, another kind of model, or other mel settings
            (the message names the file and the rule).
    """
    from speechkit.utils.files import read_json
    from speechkit.vocoders.errors import VocoderError

    p = Path(path)
    cfg = p / "config.json"
    if not p.is_dir():
        raise VocoderError(f"{p}: not a folder (a mel vocoder folder: model.safetensors + config.json)")
    if not cfg.is_file() or not (p / "model.safetensors").is_file():
        raise VocoderError(f"{p}: a mel vocoder folder needs model.safetensors and config.json; "
                           f"found {sorted(x.name for x in p.iterdir())}")
    meta = read_json(cfg, VocoderError)
    kind = meta.get("kind")
    if kind not in MEL_KINDS:
        raise VocoderError(f"{cfg}: kind {kind!r} is not a mel vocoder (one of {list(MEL_KINDS)})")
    if kind == "vocos":
        from speechkit.vocoders.vocos.vocoder import VocosVocoder, check_mel_match

        voc = VocosVocoder.from_pretrained(p)
        if mel is not None:
            check_mel_match(voc, mel, str(cfg))
        return voc
    from speechkit.vocoders.hifigan.mel_vocoder import HiFiGANVocoder

    voc = HiFiGANVocoder.from_pretrained(p)
    if mel is not None and (voc.output_sample_rate, voc.hop_length) != (mel.sample_rate, mel.hop_length):
        raise VocoderError(f"{cfg}: its rate and hop ({voc.output_sample_rate} Hz, {voc.hop_length}) differ from the "
                           f"decoder's mel settings ({mel.sample_rate} Hz, {mel.hop_length})")
    return voc
