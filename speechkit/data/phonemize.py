"""Text to phonemes with Debian's espeak-ng: no audio is made here.

espeak-ng with an MBROLA voice name (``mb-us1``, ...) prints MBROLA phoneme data (``.pho`` text: one phone a line,
its duration in milliseconds, then pitch targets as ``position% Hz`` pairs; ``_`` is a pause) in the voice's SAMPA
inventory. VDTTS's text front end (:mod:`speechkit.vdtts.text`) reads the phones at inference time; the corpus
generators (:mod:`speechkit.synth`) also render the same data into speech with MBROLA.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

from speechkit.errors import SpeechkitError

__all__ = ["EspeakError", "espeak_binary", "espeak_pho", "pho_phones", "run_program"]


class EspeakError(SpeechkitError):
    """espeak-ng is missing or failed."""


@functools.cache
def espeak_binary() -> str:
    """Path of the ``espeak-ng`` program.

    Raises:
        EspeakError: it is not installed.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakError("espeak-ng is not installed (Debian package espeak-ng; `make install` installs it)")
    return exe


def run_program(cmd: list[str], what: str, *, error: type[SpeechkitError] = EspeakError) -> str:
    """Standard output of ``cmd`` (espeak-ng, mbrola, ...); ``error`` names ``what`` failed, with its stderr."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:  # the binary vanished (or is not executable) since it was found
        raise error(f"{what}: cannot run {cmd[0]} ({e.strerror or e}); reinstall it (`make install`)") from None
    if proc.returncode != 0:
        raise error(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    return proc.stdout


def espeak_pho(text: str, espeak_voice: str) -> str:
    """MBROLA phoneme data (``.pho`` text: phone, milliseconds, pitch targets) that espeak-ng makes for ``text``
    with ``espeak_voice`` (an ``mb-*`` voice).

    Raises:
        EspeakError: espeak-ng is missing or failed.
    """
    return run_program([espeak_binary(), "-v", espeak_voice, "-q", "--pho", text], "espeak-ng --pho")


def pho_phones(pho: str) -> list[str]:
    """The phone symbols of ``.pho`` text, in order (pauses ``_`` included; comment lines skipped).

    Example:
        >>> pho_phones("_ 100\\nh 60 0 120\\n@U 150 50 110\\n_ 200\\n")
        ['_', 'h', '@U', '_']
    """
    return [line.split()[0] for line in pho.splitlines() if line.strip() and not line.startswith(";")]
