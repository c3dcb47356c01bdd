"""Bitrate of a unit stream.

- **nominal**: ``frame_rate × log2(K)`` bits per second (e.g. 50 Hz × log2 500 ≈ 448 bps), what a fixed-length code
  would need;
- **entropy-based**: ``H × tokens / seconds``, with ``H`` the empirical unigram entropy (bits per token) of all
  units of the corpus: the rate an ideal entropy coder of single units would reach. Given before deduplication
  (every frame) and after it (runs of a unit merged: fewer tokens, different distribution; the durations are not
  counted).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = ["nominal_bitrate", "unigram_entropy", "unit_bitrates"]


def nominal_bitrate(frame_rate: float, vocab_size: int) -> float:
    """``frame_rate × log2(vocab_size)`` in bits per second.

    Example:
        >>> round(nominal_bitrate(50, 500), 1)
        448.3
    """
    if frame_rate <= 0 or vocab_size < 1:
        raise ValueError(f"need frame_rate > 0 and vocab_size >= 1. Found {frame_rate}, {vocab_size}")
    return frame_rate * math.log2(vocab_size)


def unigram_entropy(tokens: Iterable[int]) -> float:
    """Empirical entropy in bits of the token distribution (0 for an empty or constant stream)."""
    counts = Counter(tokens)
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def _dedup(seq: Sequence[int]) -> list[int]:
    return [u for i, u in enumerate(seq) if i == 0 or u != seq[i - 1]]


def unit_bitrates(sequences: Sequence[Sequence[int]], frame_rate: float, vocab_size: int,
                  seconds: float | None = None) -> dict[str, float]:
    """Nominal and entropy-based bitrates of a corpus of frame-level unit sequences (not deduplicated).

    Args:
        sequences: one unit sequence per utterance, one unit per frame.
        frame_rate: frames per second of the units (50 for HuBERT base at 16 kHz).
        vocab_size: K.
        seconds: total audio duration; default ``frames / frame_rate``.

    Returns:
        ``{"bitrate_nominal", "bitrate_entropy", "bitrate_entropy_dedup", "entropy_bits", "entropy_bits_dedup",
        "tokens_per_second", "tokens_per_second_dedup"}``.

    Example:
        >>> unit_bitrates([[1, 1, 2, 2]], frame_rate=4, vocab_size=4)["bitrate_entropy_dedup"]
        2.0
    """
    frames = [int(u) for s in sequences for u in s]
    if not frames:
        raise ValueError("no units: give at least one non-empty sequence")
    deduped = [int(u) for s in sequences for u in _dedup(list(s))]
    seconds = seconds if seconds is not None else len(frames) / frame_rate
    h, h_dedup = unigram_entropy(frames), unigram_entropy(deduped)
    return {"bitrate_nominal": nominal_bitrate(frame_rate, vocab_size),
            "bitrate_entropy": h * len(frames) / seconds, "bitrate_entropy_dedup": h_dedup * len(deduped) / seconds,
            "entropy_bits": h, "entropy_bits_dedup": h_dedup, "tokens_per_second": len(frames) / seconds,
            "tokens_per_second_dedup": len(deduped) / seconds}
