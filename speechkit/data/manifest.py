"""Manifests: fairseq audio tsv files and jsonl unit files.

**Audio tsv** (fairseq's ``wav2vec_manifest.py`` format, read by fairseq, textlesslib and speechkit)::

    /abs/path/to/root
    relative/path/a.wav<TAB>num_samples
    relative/path/b.flac<TAB>num_samples

``num_samples`` is the number of frames at the file's own sample rate.

**Units jsonl**: one utterance per line, ``{"id", "audio", "units": [...], "duration": [...]}`` (slamkit reads the
same keys), optionally ``"f0"``. ``duration[i]`` is how many frames unit ``i`` lasted before deduplication.

All writes are atomic: a reader never sees a half-written manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from speechkit.errors import SpeechkitError
from speechkit.utils.files import atomic_open, read_text

__all__ = [
    "ManifestError",
    "ManifestEntry",
    "AUDIO_EXTENSIONS",
    "read_tsv",
    "write_tsv",
    "scan_audio",
    "UnitRecord",
    "read_units_jsonl",
    "iter_units_jsonl",
    "write_units_jsonl",
]

AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "mp3")


class ManifestError(SpeechkitError, ValueError):
    """A manifest file is malformed; the message names the file, the line and the rule."""


@dataclass(frozen=True)
class ManifestEntry:
    """One line of an audio tsv: ``path`` relative to the manifest root and its length in samples."""

    path: str
    num_samples: int


def read_tsv(path: str | os.PathLike) -> tuple[Path, list[ManifestEntry]]:
    """Reads a fairseq audio tsv.

    Args:
        path: the tsv file.

    Returns:
        ``(root, entries)``; the audio of entry ``e`` is ``root / e.path``.

    Raises:
        ManifestError: missing file, empty file, or a line that is not ``relpath<TAB>num_samples``.

    Example:
        >>> root, entries = read_tsv("train.tsv")
        >>> wav, sr = speechkit.audio.io.load(root / entries[0].path)
    """
    p = Path(path)
    if not p.is_file():
        raise ManifestError(f"{p}: no such manifest file")
    lines = read_text(p, ManifestError).splitlines()
    if not lines or not lines[0].strip():
        raise ManifestError(f"{p}: empty manifest; the first line must be the audio root directory")
    root = Path(lines[0].strip())
    entries = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[1].strip().isdigit():
            raise ManifestError(f"{p}:{n}: expected 'relative_path<TAB>num_samples', found {line!r}")
        entries.append(ManifestEntry(parts[0], int(parts[1])))
    return root, entries


def write_tsv(path: str | os.PathLike, root: str | os.PathLike, entries: Iterable[ManifestEntry]) -> Path:
    """Writes a fairseq audio tsv atomically.

    Args:
        path: the tsv to write.
        root: the audio root directory (written as an absolute path).
        entries: paths relative to ``root`` with their sample counts.

    Returns:
        ``path``.
    """
    p = Path(path)
    with atomic_open(p) as f:
        f.write(f"{Path(root).resolve()}\n")
        for e in entries:
            if "\t" in e.path or "\n" in e.path:
                raise ManifestError(f"{p}: file name {e.path!r} contains a tab or newline")
            f.write(f"{e.path}\t{e.num_samples}\n")
    return p


def scan_audio(
    root: str | os.PathLike, extensions: Iterable[str] = AUDIO_EXTENSIONS
) -> tuple[list[ManifestEntry], list[tuple[str, str]]]:
    """Finds audio files under ``root`` (recursively, sorted) and reads their lengths from the headers.

    Args:
        root: directory to scan.
        extensions: file extensions to include, without the dot (case-insensitive).

    Returns:
        ``(entries, errors)``: readable files, and ``(relative_path, reason)`` for files that are not.

    Raises:
        ManifestError: ``root`` is not a directory.
    """
    from speechkit.audio import io as audio_io

    base = Path(root)
    if not base.is_dir():
        raise ManifestError(f"{base}: not a directory")
    exts = {e.lower().lstrip(".") for e in extensions}
    entries, errors = [], []
    for f in sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in exts):
        rel = f.relative_to(base).as_posix()
        try:
            meta = audio_io.info(f)
        except audio_io.AudioError as e:
            errors.append((rel, e.problem))
            continue
        if meta.num_frames == 0:
            errors.append((rel, "has zero samples"))
            continue
        entries.append(ManifestEntry(rel, meta.num_frames))
    return entries, errors


@dataclass
class UnitRecord:
    """One utterance of a units jsonl.

    Attributes:
        id: utterance id (unique within a file).
        audio: the audio file it came from.
        units: unit ids (deduplicated or not).
        duration: frames per unit (same length as ``units``), or ``None``.
        f0: optional per-unit or per-frame F0 values.
    """

    id: str
    audio: str
    units: list[int]
    duration: list[int] | None = None
    f0: list[float] | None = None

    def to_json(self) -> str:
        d = {"id": self.id, "audio": self.audio, "units": self.units, "duration": self.duration}
        if self.f0 is not None:
            d["f0"] = self.f0
        return json.dumps(d, separators=(",", ":"))


def _parse_unit_line(path: Path, n: int, line: str) -> UnitRecord:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    if not isinstance(d, dict) or "units" not in d:
        raise ManifestError(f"{path}:{n}: expected an object with key 'units'")
    units = d["units"]
    if not isinstance(units, list) or not all(isinstance(u, int) and not isinstance(u, bool) for u in units):
        raise ManifestError(f"{path}:{n}: 'units' must be a list of integers")
    duration = d.get("duration")
    if duration is not None:
        if not isinstance(duration, list) or not all(isinstance(x, int) and x > 0 for x in duration):
            raise ManifestError(f"{path}:{n}: 'duration' must be a list of positive integers")
        if len(duration) != len(units):
            raise ManifestError(f"{path}:{n}: 'duration' has {len(duration)} values for {len(units)} units")
    return UnitRecord(str(d.get("id", n - 1)), str(d.get("audio", "")), units, duration, d.get("f0"))


def iter_units_jsonl(path: str | os.PathLike) -> Iterator[UnitRecord]:
    """Yields the records of a units jsonl one by one (blank lines are skipped).

    Raises:
        ManifestError: missing file or a malformed line (the message gives the line number).
    """
    p = Path(path)
    if not p.is_file():
        raise ManifestError(f"{p}: no such units file")
    with open(p, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ManifestError(f"{p}:{n}: not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r})") from None
            if line.strip():
                yield _parse_unit_line(p, n, line)


def read_units_jsonl(path: str | os.PathLike) -> list[UnitRecord]:
    """Reads a whole units jsonl; see :func:`iter_units_jsonl`."""
    return list(iter_units_jsonl(path))


def write_units_jsonl(path: str | os.PathLike, records: Iterable[UnitRecord]) -> Path:
    """Writes a units jsonl atomically.

    Raises:
        ManifestError: two records share an id.
    """
    p = Path(path)
    seen: set[str] = set()
    with atomic_open(p) as f:
        for r in records:
            if r.id in seen:
                raise ManifestError(f"{p}: duplicate utterance id {r.id!r}")
            seen.add(r.id)
            f.write(r.to_json() + "\n")
    return p
