"""Atomic file writes: a reader never sees a half-written output, a crash never leaves one behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; on success it is renamed onto ``path`` in one step.

    The temporary name keeps the suffix of ``path`` (libraries that pick a format by extension still work).
    On an exception the temporary file is removed and ``path`` is left untouched.

    Example:
        >>> with atomic_path("out.wav") as tmp:
        ...     write_somehow(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files: give the output the permissions a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Deletes the temporary files :func:`atomic_path` left under ``folder`` when its process was killed (they
    never carry a final name, so no reader mistakes them for output); call it while holding :func:`exclusive`.
    Returns how many were removed."""
    removed = 0
    for p in Path(folder).rglob(".*.tmp*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Opens a temporary file for writing that replaces ``path`` when the block ends without error.

    Example:
        >>> with atomic_open("manifest.tsv") as f:
        ...     f.write("/data\\n")
    """
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


# ------------------------------------------------------------------------------------------------ reading safely
def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__


def _renamed(e: Exception, prefix: str) -> Exception:
    """``e`` (same type) with ``prefix`` put before its message."""
    import copy

    new = copy.copy(e)
    new.args = (f"{prefix}: {e}",)
    return new


@contextlib.contextmanager
def loading(path: str | os.PathLike, what: str, error: type[Exception] | None = None) -> Iterator[None]:
    """The boundary of a loader: whatever goes wrong inside becomes an error that names ``path``.

    - a :class:`~speechkit.errors.SpeechkitError` that already names ``path`` passes unchanged; one that does not
      gets ``path`` put in front of its message (same type);
    - any other exception (a corrupt file making torch, numpy, safetensors or json fail deep inside) becomes
      ``error`` (default :class:`~speechkit.errors.FileFormatError`): ``"<path>: not a readable <what> (...)"``.

    Example:
        >>> with loading(folder, "vocoder folder", VocoderError):
        ...     config = read_json(folder / "config.json", VocoderError)
    """
    from speechkit.errors import FileFormatError, SpeechkitError

    error = error or FileFormatError
    try:
        yield
    except SpeechkitError as e:
        if str(path) in str(e):
            raise
        raise _renamed(e, str(path)) from None
    except Exception as e:  # noqa: BLE001 - the point: nothing from inside a library reaches the user
        raise error(f"{path}: not a readable {what} ({_first_line(e)})") from None


def read_text(path: str | os.PathLike, error: type[Exception] | None = None) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or non-UTF-8 file raises ``error`` naming it."""
    from speechkit.errors import FileFormatError

    error = error or FileFormatError
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{p}: no such file") from None
    except OSError as e:
        raise error(f"{p}: cannot be read ({_first_line(e)})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{p}: not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


def read_json(path: str | os.PathLike, error: type[Exception] | None = None, *, expect: type = dict):
    """``path`` parsed as JSON, which must be an ``expect`` (a JSON object by default); errors name the file."""
    import json

    from speechkit.errors import FileFormatError

    error = error or FileFormatError
    text = read_text(path, error)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(value, expect):
        raise error(f"{path}: expected a JSON {'object' if expect is dict else expect.__name__}, found "
                    f"{type(value).__name__}")
    return value


def read_lines(path: str | os.PathLike, error: type[Exception] | None = None) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped (speaker lists, style lists, phone inventories)."""
    return [s.strip() for s in read_text(path, error).splitlines() if s.strip()]


def read_safetensors(path: str | os.PathLike, error: type[Exception] | None = None) -> dict:
    """All tensors of a ``.safetensors`` file. The header is checked before anything is allocated: its claimed
    length must fit inside the file and under 100 MB (safetensors' own limit); errors name the file."""
    import struct

    from speechkit.errors import FileFormatError

    error = error or FileFormatError
    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: no such file")
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise error(f"{p}: not a safetensors file ({size} bytes; the 8-byte header length is missing)")
    (claimed,) = struct.unpack("<Q", head)
    if claimed > min(size - 8, 100_000_000):
        raise error(f"{p}: not a safetensors file (its header claims {claimed} bytes; the file has {size}, and "
                    "headers are limited to 100 MB)")
    from safetensors.torch import load_file

    try:
        return load_file(str(p))
    except Exception as e:  # noqa: BLE001 - SafetensorError and friends for a corrupt file
        raise error(f"{p}: not a readable safetensors file ({_first_line(e)})") from None


def loader(what: str, error: type[Exception] | None = None):
    """Decorator form of :func:`loading` for a public loader: the path is its first ``str``/``PathLike`` argument.

    Example:
        >>> @classmethod
        ... @loader("vocoder folder", VocoderError)
        ... def from_pretrained(cls, folder): ...
    """
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            path = next((a for a in (*args, *kwargs.values()) if isinstance(a, str | os.PathLike)), "?")
            with loading(path, what, error):
                return fn(*args, **kwargs)

        return wrapper

    return wrap


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, what: str = "output") -> Iterator[None]:
    """Holds an exclusive lock on ``path`` (a file or a folder that exists) while the block runs.

    A second process that tries to take it is refused at once with an error naming ``path``; the lock goes with
    the process that holds it, even on ``kill -9``, so a dead job never leaves a stale lock behind.

    Raises:
        SpeechkitError: another process holds the lock.
    """
    import fcntl

    from speechkit.errors import SpeechkitError

    p = Path(path)
    fd = os.open(p, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpeechkitError(f"{p}: another process is writing this {what}; wait for it to finish or stop it "
                                 "(two writers would interleave their work)") from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def write_json(path: str | os.PathLike, value, indent: int | None = 2) -> Path:
    """Writes ``value`` as JSON atomically: a reader (or a resumed job) never sees half a file."""
    import json

    with atomic_open(path) as f:
        f.write(json.dumps(value, indent=indent))
    return Path(path)


def complete_lines(path: str | os.PathLike) -> list[str]:
    """The complete lines of an append-only text file that a killed job may have left mid-line (resuming it): a
    torn last line (no newline) is cut off the file, with a warning. A missing file has none."""
    import logging

    p = Path(path)
    if not p.exists():
        return []
    data = p.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut != len(data):
        logging.getLogger(__name__).warning("%s: dropping a torn last line (%d bytes) left by an interrupted run",
                                            p, len(data) - cut)
        with open(p, "r+b") as f:
            f.truncate(cut)
    return data[:cut].decode("utf-8").splitlines()


def jsonl_ids(path: str | os.PathLike, what: str = "record", error: type[Exception] | None = None) -> set[str]:
    """The ``"id"`` of every JSON line already in an append-only jsonl (after :func:`complete_lines`).

    Raises:
        error (default :class:`~speechkit.errors.SpeechkitError`): a line that is not a JSON object with an id,
            naming the file, the line and ``what`` the file should hold.
    """
    import json

    from speechkit.errors import SpeechkitError

    done = set()
    for n, line in enumerate(complete_lines(path), start=1):
        if line.strip():
            try:
                done.add(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise (error or SpeechkitError)(f"{path}:{n}: not a {what}; cannot resume into this file") from None
    return done
