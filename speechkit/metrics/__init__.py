"""Speech metrics, each a library function or class with its own module:

- :mod:`~speechkit.metrics.asr` (PocketSphinx offline, local HF CTC / Whisper) and :mod:`~speechkit.metrics.wer`
  (WER / CER with one documented normalisation);
- :mod:`~speechkit.metrics.f0` (GPE, VDE, FFE, F0 RMSE and correlation; YIN / pYIN / CREPE);
- :mod:`~speechkit.metrics.speaker` (resemblyzer speaker similarity), :mod:`~speechkit.metrics.mos` (DNSMOS),
  :mod:`~speechkit.metrics.style` (style classifier), :mod:`~speechkit.metrics.bitrate` (unit bitrates);
- :mod:`~speechkit.metrics.folder` (``speechkit eval folder``), :mod:`~speechkit.metrics.resynthesis` (the Expresso
  resynthesis benchmark) and :mod:`~speechkit.metrics.report` (report.json / .csv / .html).
"""
