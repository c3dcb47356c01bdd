"""Fault injection for the reliability suite: file corruptions, the outcome rule, iteration counts.

The rule every loader must keep, for any corrupted input: it either loads (the corruption hit bytes that do not
matter, e.g. a weight's low mantissa bits) or raises a :class:`~speechkit.errors.SpeechkitError` whose message names
the file (or its folder). Anything else, a traceback from inside torch, numpy, soundfile or PyAV, a hang (past
``HANG_SECONDS``), is a failure.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from speechkit.errors import SpeechkitError

HANG_SECONDS = 60


def iterations(default: int) -> int:
    """Fuzz iterations per case: ``default`` under ``make test``; ``make fuzz`` sets ``SPEECHKIT_FUZZ_SCALE``."""
    return max(1, int(default * float(os.environ.get("SPEECHKIT_FUZZ_SCALE", "1"))))


# -------------------------------------------------------------------------------------------------- corruptions
def zero_length(data: bytes, rng: random.Random) -> bytes:
    return b""


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, max(1, len(data)))]


def truncate_header(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, min(len(data), 256) or 1)]


def bit_flips(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def header_bit_flips(data: bytes, rng: random.Random) -> bytes:
    """Flips bits among the first 512 bytes, where formats keep their sizes, offsets and magic numbers."""
    if not data:
        return data
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(min(len(b), 512))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def random_bytes(data: bytes, rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([1, 7, 64, 4096, max(1, len(data) // 2)]))


WRONG_FORMATS = [
    b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a WAV header cut short
    b'{"kind": "speechkit", "config": {}}',  # JSON where a binary is expected
    b"PK\x03\x04" + b"\x00" * 26,  # a zip (torch.save's container) with nothing in it
    b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00]\x94.",  # a pickle of an empty list
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), }",  # npy, no data
    "ünïcödé text\n".encode("latin-1"),  # not UTF-8
]


def wrong_format(data: bytes, rng: random.Random) -> bytes:
    return rng.choice(WRONG_FORMATS)


CORRUPTIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "zero-length": zero_length,
    "truncated": truncate,
    "truncated in the header": truncate_header,
    "bit flips": bit_flips,
    "header bit flips": header_bit_flips,
    "random bytes": random_bytes,
    "wrong format": wrong_format,
}


# ---------------------------------------------------------------------------------------------------- outcome
@dataclass
class Tally:
    """What a run of injected faults did: loaded, refused with a good error, or failed the rule (with why)."""

    cases: int = 0
    loaded: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.cases += other.cases
        self.loaded += other.loaded
        self.refused += other.refused
        self.failures += other.failures


class Hang(BaseException):
    """Raised by :func:`deadline`; a BaseException so that no loader's error boundary can turn it into a refusal."""


@contextlib.contextmanager
def deadline(seconds: int = HANG_SECONDS) -> Iterator[None]:
    """Raises :class:`Hang` in the main thread after ``seconds`` (SIGALRM)."""

    def on_alarm(signum, frame):
        raise Hang(f"no answer after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check(load: Callable[[], object], names: list[str], what: str, tally: Tally) -> None:
    """Runs ``load`` and records whether it kept the rule: loaded, or a SpeechkitError naming one of ``names``."""
    tally.cases += 1
    try:
        with deadline():
            load()
    except SpeechkitError as e:
        if any(n in str(e) for n in names):
            tally.refused += 1
        else:
            tally.failures.append(f"{what}: the error does not name the file: {e}")
    except Hang as e:
        tally.failures.append(f"{what}: hang: {e}")
    except Exception as e:  # noqa: BLE001 - this is what the suite looks for
        tally.failures.append(f"{what}: {type(e).__name__} escaped: {str(e).splitlines()[0][:200] if str(e) else ''}")
    else:
        tally.loaded += 1


def corrupt_file(path: Path, corruption: str, seed: int) -> bytes:
    """Replaces ``path`` by its corrupted version; returns the original bytes (to restore)."""
    original = path.read_bytes()
    path.write_bytes(CORRUPTIONS[corruption](original, random.Random(seed)))
    return original


def safetensors_with_header_size(size: int) -> bytes:
    """A safetensors file whose 8-byte header length claims ``size`` bytes."""
    return struct.pack("<Q", size) + b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' + b"\x00" * 4


# ------------------------------------------------------------------------------------------------ the report
REPORT: dict[str, dict[str, Tally]] = {}
"""area -> case -> tally; printed at the end of the run by ``tests/reliability/conftest.py``."""


def record(area: str, case: str, tally: Tally) -> None:
    REPORT.setdefault(area, {}).setdefault(case, Tally()).add(tally)


def record_outcome(area: str, case: str, *, injected: int = 1, survived: int = 1) -> None:
    """For fault kinds that are not loads (kills, full disks): ``injected`` faults, ``survived`` of them."""
    t = Tally(cases=injected, refused=survived)
    record(area, case, t)
