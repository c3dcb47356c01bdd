"""Offline speech synthesis with Debian's espeak-ng and MBROLA, for the synthetic corpora.

Two engines:

- ``mbrola`` (preferred): espeak-ng turns text into MBROLA phoneme data (``.pho``: phoneme, duration in ms,
  pitch targets; :func:`speechkit.data.phonemize.espeak_pho`); speechkit rescales durations (tempo), mean pitch
  and pitch range; the ``mbrola`` binary renders the result at 16 kHz with a diphone voice (us1, us2, us3, en1).
  The phoneme timings are returned too.
- ``espeak`` (fallback when MBROLA voices are missing): espeak-ng's formant voices with its own speed and pitch
  controls (no pitch-range control).

Whisper is made afterwards by :func:`speechkit.audio.functional.whisperize` (diphone voices cannot whisper).
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechkit.audio import io as audio_io
from speechkit.audio.functional import whisperize
from speechkit.data.phonemize import espeak_binary, espeak_pho, run_program
from speechkit.errors import SpeechkitError

__all__ = ["Voice", "Prosody", "Synthesis", "SynthesisError", "MBROLA_VOICES", "ESPEAK_VOICES", "synthesize",
           "mbrola_available", "apply_prosody", "mbrola_render"]

MBROLA_DIR = Path("/usr/share/mbrola")


class SynthesisError(SpeechkitError):
    """The synthesiser (MBROLA, or espeak-ng rendering speech) is missing or failed."""


@dataclass(frozen=True)
class Voice:
    """A synthetic speaker.

    Attributes:
        name: speaker id used in file names (letters and digits only).
        engine: ``"mbrola"`` or ``"espeak"``.
        espeak_voice: espeak-ng voice name (``mb-us1`` for MBROLA voices, ``en-us+f2`` for formant voices).
        gender: ``"F"`` or ``"M"``.
    """

    name: str
    engine: str
    espeak_voice: str
    gender: str


MBROLA_VOICES = {
    "us1": Voice("us1", "mbrola", "mb-us1", "F"),
    "us2": Voice("us2", "mbrola", "mb-us2", "M"),
    "us3": Voice("us3", "mbrola", "mb-us3", "M"),
    "en1": Voice("en1", "mbrola", "mb-en1", "M"),
}
ESPEAK_VOICES = {
    "esm1": Voice("esm1", "espeak", "en-us", "M"),
    "esf1": Voice("esf1", "espeak", "en-us+f2", "F"),
    "esm2": Voice("esm2", "espeak", "en-gb+m3", "M"),
    "esf2": Voice("esf2", "espeak", "en-gb+f4", "F"),
}


@dataclass(frozen=True)
class Prosody:
    """Synthesis controls.

    Attributes:
        tempo: duration scale (2.0 is twice as slow, 0.5 twice as fast).
        pitch: mean F0 scale (1.3 is 30% higher).
        pitch_range: scale of F0 deviations around the mean, in the log domain (1.0 keeps the contour,
            0 flattens it, 2 doubles the excursions). MBROLA engine only.
        whisper: replace voicing by noise (:func:`~speechkit.audio.functional.whisperize`).
        volume: output gain.
    """

    tempo: float = 1.0
    pitch: float = 1.0
    pitch_range: float = 1.0
    whisper: bool = False
    volume: float = 1.0


@dataclass
class Synthesis:
    """A synthesised utterance: ``wav`` ``(samples,)`` float32 at ``sample_rate``, and for the MBROLA engine
    the phonemes as ``(symbol, start_seconds, end_seconds)``."""

    wav: np.ndarray
    sample_rate: int
    phonemes: list[tuple[str, float, float]] = field(default_factory=list)


@functools.cache
def mbrola_available(voice: str = "us1") -> bool:
    """True when the ``mbrola`` binary and the MBROLA database ``voice`` are installed."""
    return shutil.which("mbrola") is not None and (MBROLA_DIR / voice / voice).exists()


def mbrola_render(pho: str, database: str, out: str | os.PathLike) -> None:
    """Renders ``.pho`` text with the installed MBROLA ``database`` (``us1``, ...) into the WAV file ``out``."""
    if not mbrola_available(database):
        raise SynthesisError(f"MBROLA voice {database} is not installed (Debian package mbrola-{database})")
    with tempfile.TemporaryDirectory(prefix="speechkit-mbrola-") as tmp:
        pho_path = Path(tmp) / "in.pho"
        pho_path.write_text(pho)
        run_program(["mbrola", "-e", str(MBROLA_DIR / database / database), str(pho_path), str(out)], "mbrola",
                    error=SynthesisError)


def apply_prosody(pho: str, prosody: Prosody) -> tuple[str, list[tuple[str, float, float]]]:
    """Rescales the durations and pitch targets of MBROLA phoneme data; returns new .pho text and timings."""
    rows = []
    for line in pho.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(";"):
            continue
        phone, dur = parts[0], float(parts[1])
        targets = [(float(parts[i]), float(parts[i + 1])) for i in range(2, len(parts) - 1, 2)]
        rows.append((phone, dur, targets))
    log_f0 = [math.log(f) for _, _, t in rows for _, f in t if f > 0]
    mean = sum(log_f0) / len(log_f0) if log_f0 else 0.0
    out_lines, timings, t = [], [], 0.0
    for phone, dur, targets in rows:
        dur = max(1, round(dur * prosody.tempo))
        new_targets = []
        for pos, f in targets:
            lf = mean + math.log(prosody.pitch) + prosody.pitch_range * (math.log(f) - mean)
            new_targets.append(f"{pos:g} {min(500.0, max(50.0, math.exp(lf))):.0f}")
        out_lines.append(" ".join([phone, str(dur), *new_targets]))
        timings.append((phone, t / 1000, (t + dur) / 1000))
        t += dur
    return "\n".join(out_lines) + "\n", timings


def synthesize(text: str, voice: Voice, prosody: Prosody = Prosody(), *, seed: int = 0) -> Synthesis:
    """Speaks ``text`` with ``voice`` under ``prosody``.

    Args:
        text: plain English text.
        voice: one of :data:`MBROLA_VOICES` or :data:`ESPEAK_VOICES`.
        prosody: tempo, pitch, pitch range, whisper, volume.
        seed: seed of the whisper noise.

    Returns:
        A :class:`Synthesis` at the engine's native rate (16 kHz for MBROLA, 22.05 kHz for espeak-ng).

    Raises:
        EspeakError: espeak-ng is missing or failed (:mod:`speechkit.data.phonemize`).
        SynthesisError: MBROLA is missing or failed, or espeak-ng failed to speak.
    """
    if not text.strip():
        raise ValueError("text must not be empty")
    espeak = espeak_binary()
    with tempfile.TemporaryDirectory(prefix="speechkit-tts-") as tmp:
        out = Path(tmp) / "out.wav"
        phonemes: list[tuple[str, float, float]] = []
        if voice.engine == "mbrola":
            pho, phonemes = apply_prosody(espeak_pho(text, voice.espeak_voice), prosody)
            mbrola_render(pho, voice.espeak_voice.removeprefix("mb-"), out)  # refuses a voice not installed
        elif voice.engine == "espeak":
            speed = int(round(175 / prosody.tempo))
            pitch = int(min(99, max(0, round(50 + 100 * (prosody.pitch - 1)))))
            run_program([espeak, "-v", voice.espeak_voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text],
                        "espeak-ng", error=SynthesisError)
        else:
            raise ValueError(f"voice.engine must be 'mbrola' or 'espeak'. Found {voice.engine!r}")
        wav, sr = audio_io.load(out)
    wav = wav.numpy()
    if prosody.whisper:
        wav = whisperize(wav, sr, seed=seed)
    wav = wav * prosody.volume
    peak = float(np.max(np.abs(wav)))
    if peak > 0.99:
        wav = wav * (0.99 / peak)
    return Synthesis(wav.astype(np.float32), sr, phonemes)
