"""Audio: file I/O (:mod:`speechkit.audio.io`) and signal processing helpers (:mod:`speechkit.audio.functional`)."""

from speechkit.audio.io import AudioError, AudioInfo, info, load, resample, save

__all__ = ["AudioError", "AudioInfo", "info", "load", "resample", "save"]
