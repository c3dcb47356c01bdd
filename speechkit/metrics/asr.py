"""Offline speech recognition for evaluation.

:class:`PocketSphinxASR` uses the en-us acoustic model, language model and dictionary that the ``pocketsphinx``
wheel ships, so it works without any download. It is weak on real conversational speech but a stable yardstick
for comparing synthetic speech before and after a model (the same decoder on both sides).
"""

from __future__ import annotations

import os

import numpy as np
import torch

__all__ = ["PocketSphinxASR"]


class PocketSphinxASR:
    """CMU PocketSphinx with its bundled en-us model.

    Args:
        **decoder_options: passed to ``pocketsphinx.Decoder`` (e.g. ``lm=``, ``dict=``, ``hmm=`` for other models).

    Example:
        >>> asr = PocketSphinxASR()
        >>> asr.transcribe_file("utt.wav")
        'please remember to close the window tomorrow'
    """

    sample_rate = 16000

    def __init__(self, **decoder_options):
        from pocketsphinx import Decoder

        options = {"samprate": self.sample_rate, "loglevel": "FATAL", **decoder_options}
        self._decoder = Decoder(**options)

    def transcribe(self, wav: torch.Tensor | np.ndarray) -> str:
        """Transcribes ``(samples,)`` float audio at 16 kHz; returns lower-case words (may be empty)."""
        x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
        if x.ndim != 1:
            raise ValueError(f"wav must be 1-D (samples,) at 16 kHz. Found shape {x.shape}")
        pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""

    def transcribe_file(self, path: str | os.PathLike) -> str:
        """Loads ``path`` (any rate, stereo mixed down) and transcribes it."""
        from speechkit.audio import io as audio_io

        wav, _ = audio_io.load(path, sample_rate=self.sample_rate)
        return self.transcribe(wav)
