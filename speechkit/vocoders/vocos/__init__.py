"""Vocos-style mel vocoders: ConvNeXt blocks at the frame rate and an inverse-STFT head
(:class:`~speechkit.vocoders.vocos.vocoder.VocosVocoder`)."""

from speechkit.vocoders.vocos.model import VocosGenerator
from speechkit.vocoders.vocos.vocoder import VocosConfig, VocosVocoder, build_vocos

__all__ = ["VocosConfig", "VocosGenerator", "VocosVocoder", "build_vocos"]
