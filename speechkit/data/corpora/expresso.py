"""The Expresso dataset layout: file names, transcripts and splits (real dataset and synthetic mini-Expresso).

Facts of the released layout this module reads:

- read speech: ``audio_48khz/read/{spk}/{style}/{base|longform}/{stem}.wav`` with stems ``{spk}_{style}_{id}``,
  ``{spk}_{style}_{substyle}_{id}`` (e.g. ``ex01_default_emphasis_00183``) or ``{spk}_{style}_longform_{id}``;
- dialogues: ``audio_48khz/conversational/{spkA}-{spkB}/{style}/{stem}.wav`` with stems
  ``{spkA}-{spkB}_{style}_{id}``, where ``style`` may be ``{styleA}-{styleB}`` (one per channel);
- ``read_transcriptions.txt``: ``{stem}<TAB>{text}``;
- ``splits/{train,dev,test}.txt``: ``{stem}`` or ``{stem}<TAB>({start}s,{end}s)`` with either bound optional,
  lines starting with ``#`` are comments.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from speechkit.errors import SpeechkitError

__all__ = ["ExpressoError", "SplitEntry", "StemInfo", "parse_stem", "audio_path", "read_splits",
           "read_transcriptions"]

SPLITS = ("train", "dev", "test")
_SEGMENT = re.compile(r"^\(\s*([0-9.]*)s?\s*,\s*([0-9.]*)s?\s*\)$")


class ExpressoError(SpeechkitError, ValueError):
    """An Expresso-layout file is missing or malformed."""


@dataclass(frozen=True)
class StemInfo:
    """What a file stem says: ``kind`` is ``"read"`` or ``"conversational"``; for dialogues ``speaker`` is
    ``"spkA-spkB"`` and ``style`` may be ``"styleA-styleB"``; ``substyle`` is e.g. ``"emphasis"`` or
    ``"longform"`` (read speech only)."""

    stem: str
    kind: str
    speaker: str
    style: str
    substyle: str | None
    id: str


@dataclass(frozen=True)
class SplitEntry:
    """One line of a split file: a stem and an optional segment in seconds (``None`` = file start / end)."""

    stem: str
    start: float | None = None
    end: float | None = None


def parse_stem(stem: str) -> StemInfo:
    """Splits an Expresso file stem into speaker, style, substyle and id.

    Example:
        >>> parse_stem("ex01_default_emphasis_00183").substyle
        'emphasis'
        >>> parse_stem("ex04-ex01_animal-animaldir_005").speaker
        'ex04-ex01'
    """
    parts = stem.split("_")
    if len(parts) < 3 or not parts[-1].isdigit():
        raise ExpressoError(f"{stem!r} is not an Expresso file stem ({{speaker}}_{{style}}[_{{substyle}}]_{{id}})")
    kind = "conversational" if "-" in parts[0] else "read"
    substyle = "_".join(parts[2:-1]) or None
    if kind == "conversational" and substyle is not None:
        raise ExpressoError(f"{stem!r}: dialogue stems are {{spkA}}-{{spkB}}_{{style}}_{{id}}")
    return StemInfo(stem, kind, parts[0], parts[1], substyle, parts[-1])


def audio_path(root: str | os.PathLike, stem: str) -> Path:
    """The wav file of ``stem`` under an Expresso root (``{root}/audio_48khz/...``)."""
    s = parse_stem(stem)
    base = Path(root) / "audio_48khz"
    if s.kind == "conversational":
        return base / "conversational" / s.speaker / s.style / f"{stem}.wav"
    folder = "longform" if s.substyle == "longform" else "base"
    return base / "read" / s.speaker / s.style / folder / f"{stem}.wav"


def read_transcriptions(root: str | os.PathLike) -> dict[str, str]:
    """Reads ``read_transcriptions.txt``: stem -> text."""
    path = Path(root) / "read_transcriptions.txt"
    if not path.is_file():
        raise ExpressoError(f"{path}: missing (an Expresso root holds read_transcriptions.txt)")
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        stem, sep, text = line.partition("\t")
        if not sep:
            raise ExpressoError(f"{path}:{n}: expected 'stem<TAB>text', found {line!r}")
        out[stem] = text.strip()
    return out


def read_splits(root: str | os.PathLike) -> dict[str, list[SplitEntry]]:
    """Reads ``splits/{train,dev,test}.txt``; returns split name -> entries in file order."""
    out = {}
    for split in SPLITS:
        path = Path(root) / "splits" / f"{split}.txt"
        if not path.is_file():
            raise ExpressoError(f"{path}: missing (an Expresso root holds splits/{split}.txt)")
        entries = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            stem, _, seg = line.partition("\t")
            start = end = None
            if seg.strip():
                m = _SEGMENT.match(seg.strip())
                if m is None:
                    raise ExpressoError(f"{path}:{n}: segment must look like '(12.5s,60.0s)', found {seg!r}")
                start = float(m.group(1)) if m.group(1) else None
                end = float(m.group(2)) if m.group(2) else None
            entries.append(SplitEntry(stem.strip(), start, end))
        out[split] = entries
    return out
