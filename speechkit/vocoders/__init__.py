"""Unit vocoders: discrete units (+ speaker, style, F0) to waveforms, and mel-spectrogram vocoders.

The public names are imported lazily, so ``import speechkit.vocoders`` costs nothing until one is used::

    from speechkit.vocoders import CodeHiFiGANVocoder
    voc = CodeHiFiGANVocoder.from_pretrained("g_00500000", config_path="config.json")
    wav = voc(units, speaker="ex01", style="read-happy", dur_prediction=True)   # (samples,) at voc.output_sample_rate

Families: :mod:`speechkit.vocoders.hifigan` (unit HiFi-GAN = CodeHiFiGAN, and the original mel HiFi-GAN),
:mod:`speechkit.vocoders.unitmel` (units -> log-mel -> Griffin-Lim or a mel vocoder).
``UnitVocoder.from_pretrained(path)`` loads either from a folder (``load_unit_vocoder`` is its deprecated alias).
"""

from __future__ import annotations

import importlib

__all__ = ["CodeHiFiGANVocoder", "HiFiGANVocoder", "UnitMelVocoder", "UnitVocoder", "VocosVocoder", "VocoderError",
           "load_unit_vocoder", "load_mel_vocoder"]

_LAZY = {
    "CodeHiFiGANVocoder": "speechkit.vocoders.hifigan.vocoder",
    "HiFiGANVocoder": "speechkit.vocoders.hifigan.mel_vocoder",
    "UnitMelVocoder": "speechkit.vocoders.unitmel.vocoder",
    "VocoderError": "speechkit.vocoders.errors",
    "VocosVocoder": "speechkit.vocoders.vocos.vocoder",
    "UnitVocoder": "speechkit.vocoders.loading",
    "load_unit_vocoder": "speechkit.vocoders.loading",
    "load_mel_vocoder": "speechkit.vocoders.loading",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
