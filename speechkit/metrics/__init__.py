"""Speech metrics. So far: ASR transcription (:mod:`~speechkit.metrics.asr`) and word/character error rates
(:mod:`~speechkit.metrics.wer`)."""
