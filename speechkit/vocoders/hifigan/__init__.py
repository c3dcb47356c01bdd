"""HiFi-GAN vocoders: the unit vocoder (CodeHiFiGAN) and the original mel-spectrogram HiFi-GAN.

Files: ``config.py`` (dataclass configs), ``model.py`` (generator building blocks), ``discriminators.py`` and
``losses.py`` (training), ``factory.py`` (configs → modules), ``interop.py`` (official formats), ``inference.py``
(chunked synthesis), ``vocoder.py`` (:class:`CodeHiFiGANVocoder`), ``mel_vocoder.py`` (:class:`HiFiGANVocoder`),
``f0.py`` (F0 normalisation), ``data.py`` (training segments from units jsonl + audio), ``train_config.py``.
"""
