"""Mel vocoder folders (Vocos or mel HiFi-GAN) by the kind their ``config.json`` names; below both the unit-to-mel
vocoder (which loads its ``mel_vocoder/``) and :mod:`speechkit.vocoders.loading` (which loads unit vocoders)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MEL_KINDS", "load_mel_vocoder"]


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
