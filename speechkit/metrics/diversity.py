"""Diversity of generated sequences: auto-BLEU (GSLM; reported beside GenPPL by slamkit).

A generation that loops ("the the the", a unit pattern repeated) can score a good perplexity; auto-BLEU catches
it. The auto-BLEU of one sequence is the share of its n-grams that occur again elsewhere in the same sequence (0:
no n-gram repeats; 1: every n-gram is a repeat); a set of sequences gets the mean over those with at least one
n-gram. Lower is more diverse.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["auto_bleu", "mean_auto_bleu"]


def auto_bleu(tokens: Sequence, n: int = 2) -> float | None:
    """Share of the ``n``-grams of ``tokens`` that also occur at another position of ``tokens``.

    Returns:
        A value in [0, 1], or ``None`` when ``tokens`` is shorter than ``n`` (no n-gram to score).

    Raises:
        ValueError: ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1. Found {n}")
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return None
    counts = Counter(grams)
    return sum(1 for g in grams if counts[g] > 1) / len(grams)


def mean_auto_bleu(sequences: Sequence[Sequence], n: int = 2) -> float | None:
    """Mean :func:`auto_bleu` over the sequences that have an ``n``-gram (``None`` if none has)."""
    values = [v for v in (auto_bleu(s, n) for s in sequences) if v is not None]
    return sum(values) / len(values) if values else None
