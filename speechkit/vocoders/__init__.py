"""Unit vocoders: discrete units (+ speaker, style, F0) to waveforms, and mel-spectrogram vocoders.

The public names are imported lazily, so ``import speechkit.vocoders`` costs nothing until one is used::

    from speechkit.vocoders import CodeHiFiGANVocoder
    voc = CodeHiFiGANVocoder.from_checkpoint("g_00500000", "config.json")
    wav = voc(units, speaker="ex01", style="read-happy", dur_prediction=True)   # (samples,) at voc.output_sample_rate

Families: :mod:`speechkit.vocoders.hifigan` (unit HiFi-GAN = CodeHiFiGAN, and the original mel HiFi-GAN).
"""

from __future__ import annotations

import importlib

__all__ = ["CodeHiFiGANVocoder", "HiFiGANVocoder", "VocoderError"]

_LAZY = {
    "CodeHiFiGANVocoder": "speechkit.vocoders.hifigan.vocoder",
    "HiFiGANVocoder": "speechkit.vocoders.hifigan.mel_vocoder",
    "VocoderError": "speechkit.vocoders.errors",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
