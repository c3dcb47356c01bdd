"""Word and character error rates, with one documented text normalisation.

Normalisation (applied to references and hypotheses alike): Unicode NFKC, lower case, every character that is
not a letter, digit, apostrophe or space becomes a space, then whitespace is collapsed. So ``"Hello, World!"`` and
``"hello world"`` match; ``"don't"`` keeps its apostrophe.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = ["normalize_text", "wer", "cer"]

_NOT_WORD = re.compile(r"[^\w' ]|_")


def normalize_text(text: str) -> str:
    """Lower-cases ``text`` and removes punctuation (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_NOT_WORD.sub(" ", text).split())


def _prepare(references: Sequence[str] | str, hypotheses: Sequence[str] | str) -> tuple[list[str], list[str]]:
    refs = [references] if isinstance(references, str) else list(references)
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references and {len(hyps)} hypotheses; they must pair up")
    refs, hyps = [normalize_text(r) for r in refs], [normalize_text(h) for h in hyps]
    if not any(refs):
        raise ValueError("all references are empty after normalisation; WER is undefined")
    return refs, hyps


def _error_rate(refs: list[str], hyps: list[str], unit: str) -> float:
    import jiwer

    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]  # an empty reference has no words to get wrong
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    if unit == "word":
        out = jiwer.process_words(refs, hyps)
        return float(out.wer)
    out = jiwer.process_characters(refs, hyps)
    return float(out.cer)


def wer(references: Sequence[str] | str, hypotheses: Sequence[str] | str) -> float:
    """Corpus word error rate: (substitutions + deletions + insertions) / reference words, after normalisation.

    Args:
        references: reference transcripts (or one string).
        hypotheses: ASR outputs, paired with ``references``.

    Returns:
        The error rate (0 is perfect; it can exceed 1 with many insertions).

    Example:
        >>> wer(["Hello, world!"], ["hello word"])
        0.5
    """
    return _error_rate(*_prepare(references, hypotheses), unit="word")


def cer(references: Sequence[str] | str, hypotheses: Sequence[str] | str) -> float:
    """Corpus character error rate after the same normalisation as :func:`wer`."""
    return _error_rate(*_prepare(references, hypotheses), unit="char")
