"""Text corpus files for the small text LM: one document a line (``train.txt``, ``valid.txt``).

The project's own corpus is made by :func:`speechkit.synth.text.prepare_text_corpus`; any file of the same shape
works.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["read_documents"]


def read_documents(path: str | Path) -> list[str]:
    """Non-empty lines of a corpus file.

    Raises:
        SpeechkitError: missing file or no document.
    """
    from speechkit.errors import SpeechkitError

    p = Path(path)
    if not p.is_file():
        raise SpeechkitError(f"{p}: no such text corpus file")
    docs = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not docs:
        raise SpeechkitError(f"{p}: no documents (one document a line expected)")
    return docs
