"""Unit vocoders: discrete units (+ speaker, style, F0) to waveforms, and mel-spectrogram vocoders.

The public names are imported lazily, so ``import speechkit.vocoders`` costs nothing until one is used::

    from speechkit.vocoders import CodeHiFiGANVocoder
    voc = CodeHiFiGANVocoder.from_checkpoint("g_00500000", "config.json")
    wav = voc(units, speaker="ex01", style="read-happy", dur_prediction=True)   # (samples,) at voc.output_sample_rate

Families: :mod:`speechkit.vocoders.hifigan` (unit HiFi-GAN = CodeHiFiGAN, and the original mel HiFi-GAN),
:mod:`speechkit.vocoders.unitmel` (units -> log-mel -> Griffin-Lim or a mel vocoder). ``load_unit_vocoder(path)``
loads either from a folder.
"""

from __future__ import annotations

import importlib

__all__ = ["CodeHiFiGANVocoder", "HiFiGANVocoder", "UnitMelVocoder", "VocosVocoder", "VocoderError",
           "load_unit_vocoder", "load_mel_vocoder"]

_LAZY = {
    "CodeHiFiGANVocoder": "speechkit.vocoders.hifigan.vocoder",
    "HiFiGANVocoder": "speechkit.vocoders.hifigan.mel_vocoder",
    "UnitMelVocoder": "speechkit.vocoders.unitmel.vocoder",
    "VocoderError": "speechkit.vocoders.errors",
    "VocosVocoder": "speechkit.vocoders.vocos.vocoder",
    "load_unit_vocoder": "speechkit.vocoders.loading",
    "load_mel_vocoder": "speechkit.vocoders.loading",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
