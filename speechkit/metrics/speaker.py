"""Speaker similarity: cosine of resemblyzer d-vectors (its GE2E speaker encoder ships in the package).

The embedding follows resemblyzer's own recipe: audio at 16 kHz, volume normalised, long silences trimmed (webrtc
VAD), 1.6 s partial windows averaged into one 256-dim unit vector. Similarity of two utterances is the cosine of
their embeddings: about 0.95+ for the same voice, lower for different voices.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SpeakerEncoder", "speaker_similarity"]


class SpeakerEncoder:
    """resemblyzer's ``VoiceEncoder`` behind speechkit's audio conventions.

    Args:
        device: ``"cpu"`` or ``"cuda"``.

    Example:
        >>> enc = SpeakerEncoder()
        >>> enc.similarity(wav_a, 16000, wav_b, 48000)
        0.83
    """

    sample_rate = 16000

    def __init__(self, device: str = "cpu"):
        from resemblyzer import VoiceEncoder

        self._encoder = VoiceEncoder(device=device, verbose=False)

    def embed(self, wav: torch.Tensor | np.ndarray, sample_rate: int) -> np.ndarray:
        """``(256,)`` unit-norm embedding of ``(samples,)`` audio at any rate.

        Raises:
            ValueError: the audio is empty or has no speech left after silence trimming.
        """
        from resemblyzer import preprocess_wav

        from speechkit.audio.io import resample

        x = torch.as_tensor(wav, dtype=torch.float32).reshape(-1)
        if x.numel() == 0:
            raise ValueError("cannot embed empty audio")
        x = resample(x, sample_rate, self.sample_rate).numpy()
        processed = preprocess_wav(x)
        if len(processed) < self.sample_rate // 10:  # the VAD kept (almost) nothing: embed the raw audio
            processed = x
        return np.asarray(self._encoder.embed_utterance(processed), dtype=np.float64)

    def similarity(self, a, sample_rate_a: int, b, sample_rate_b: int) -> float:
        """Cosine similarity of the embeddings of ``a`` and ``b`` (in [-1, 1])."""
        return cosine(self.embed(a, sample_rate_a), self.embed(b, sample_rate_b))


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    """Cosine of two vectors (0 when either is zero)."""
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    return float(np.dot(u, v) / (nu * nv)) if nu > 0 and nv > 0 else 0.0


def speaker_similarity(a, sample_rate_a: int, b, sample_rate_b: int, encoder: SpeakerEncoder | None = None) -> float:
    """Cosine similarity of the speaker embeddings of two utterances (see :class:`SpeakerEncoder`)."""
    return (encoder or SpeakerEncoder()).similarity(a, sample_rate_a, b, sample_rate_b)
