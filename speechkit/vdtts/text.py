"""The VDTTS text front end: English text to MBROLA (SAMPA) phonemes with espeak-ng
(:mod:`speechkit.data.phonemize`), then to ids."""

from __future__ import annotations

import functools

from speechkit.errors import SpeechkitError

__all__ = ["phonemize", "encode_phonemes", "TextError"]

PHONEMIZER_VOICE = "mb-us1"  # one phoneme inventory for every speaker: the American MBROLA set


class TextError(SpeechkitError, ValueError):
    """The text cannot be spoken (empty, or no phonemes)."""


@functools.lru_cache(maxsize=4096)
def _phonemize(text: str) -> tuple[str, ...]:
    from speechkit.data.phonemize import espeak_pho, pho_phones

    return tuple(s for s in pho_phones(espeak_pho(text, PHONEMIZER_VOICE)) if s != "_")


def phonemize(text: str) -> list[str]:
    """Phonemes of ``text`` (espeak-ng's MBROLA output for the us1 voice, pauses dropped: the
    video, not the text, says where the speaker pauses).

    Args:
        text: English text.

    Returns:
        Phoneme symbols, e.g. ``["h", "@", "l", "@U", "w", "r=", "l", "d"]``.

    Raises:
        TextError: ``text`` is empty or yields no phonemes.
        EspeakError: espeak-ng is missing or failed (:mod:`speechkit.data.phonemize`).
    """
    if not text or not text.strip():
        raise TextError("text must not be empty")
    out = list(_phonemize(" ".join(text.split())))
    if not out:
        raise TextError(f"text yields no phonemes: {text!r}")
    return out


def encode_phonemes(phonemes: list[str], vocabulary: list[str]) -> list[int]:
    """Ids of ``phonemes`` in ``vocabulary`` (0 = padding, 1 = unknown symbol, the vocabulary from 2)."""
    index = {p: i + 2 for i, p in enumerate(vocabulary)}
    return [index.get(p, 1) for p in phonemes]
