"""Unit-to-mel vocoders: a decoder from units (+ speaker, style) to HiFi-GAN log-mel, then Griffin-Lim or a mel
vocoder to the waveform (:class:`~speechkit.vocoders.unitmel.vocoder.UnitMelVocoder`)."""
