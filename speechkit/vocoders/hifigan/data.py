"""Training data of unit vocoders: random fixed-length segments of (frame-level units, waveform) pairs.

Records come from a units jsonl (``{"id", "audio", "units", "duration"}``, see :mod:`speechkit.data.manifest`);
deduplicated units are expanded back to frames with their durations. Audio is read through
:mod:`speechkit.audio.io` at the vocoder's rate, peak-normalised (×0.95, as released) and cut to
``min(audio frames, unit frames)`` frames; utterances shorter than a segment are tiled, as released.
Speaker and style names come from the audio file names (Expresso stems, parent folders, or the stem prefix).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from speechkit.data.manifest import UnitRecord
from speechkit.errors import DataError

__all__ = ["DataError", "VocoderSegment", "UnitAudioDataset", "name_function", "frame_units", "frame_f0",
           "collate", "NAME_SOURCES"]

#: how a speaker or style name is read from an audio path
NAME_SOURCES = ("none", "expresso", "parent", "grandparent", "prefix")


def name_function(source: str, what: str) -> Callable[[str], str] | None:
    """A function audio path → name for ``source`` in :data:`NAME_SOURCES` (``None`` for ``"none"``).

    ``expresso`` reads the speaker / style of an Expresso stem (``ex01_happy_00001`` → ``ex01`` / ``happy``);
    ``parent`` / ``grandparent`` the folder names; ``prefix`` the stem up to the first ``_`` (speech-resynthesis'
    ``"_"`` rule).
    """
    if source not in NAME_SOURCES:
        raise DataError(f"data.{what} must be one of {NAME_SOURCES}. Found {source!r}")
    if source == "none":
        return None
    if source == "expresso":
        from speechkit.data.corpora.expresso import parse_stem

        return lambda p: getattr(parse_stem(Path(p).stem), "speaker" if what == "speaker" else "style")
    if source == "parent":
        return lambda p: Path(p).parent.name
    if source == "grandparent":
        return lambda p: Path(p).parent.parent.name
    return lambda p: Path(p).stem.split("_")[0]


def frame_units(record: UnitRecord) -> torch.Tensor:
    """The frame-level units of a record: ``units`` repeated by ``duration`` when durations are given."""
    units = torch.tensor(record.units, dtype=torch.long)
    if record.duration is not None:
        units = torch.repeat_interleave(units, torch.tensor(record.duration, dtype=torch.long))
    return units


def frame_f0(record: UnitRecord) -> torch.Tensor:
    """The frame-level F0 (Hz) of a record: its ``f0`` per unit repeated by ``duration``, or per frame."""
    if record.f0 is None:
        raise DataError(f"record {record.id!r}: no 'f0' values (encode with `speechkit encode --f0`)")
    f0 = torch.tensor(record.f0, dtype=torch.float32)
    if record.duration is not None and len(f0) == len(record.units):
        return torch.repeat_interleave(f0, torch.tensor(record.duration, dtype=torch.long))
    if len(f0) == (sum(record.duration) if record.duration is not None else len(record.units)):
        return f0
    raise DataError(f"record {record.id!r}: {len(f0)} F0 values fit neither its {len(record.units)} units nor its "
                    "frames")


@dataclass
class VocoderSegment:
    """One training example: ``units (frames,)``, ``audio (frames * hop,)``, speaker and style ids (-1 = none),
    and the speaker-normalised ``f0 (frames,)`` for F0-conditioned vocoders."""

    units: torch.Tensor
    audio: torch.Tensor
    speaker: int
    style: int
    f0: torch.Tensor | None = None


class UnitAudioDataset(torch.utils.data.Dataset):
    """Random segments of ``segment_frames`` unit frames and their ``segment_frames * hop`` audio samples.

    Args:
        records: units jsonl records (``audio`` paths absolute or relative to ``audio_root``).
        sample_rate: the vocoder's sample rate (audio is resampled to it).
        hop: samples per unit frame.
        segment_frames: frames per segment; ``None`` = whole utterances (validation, batch size 1).
        speakers: per-record speaker id (or ``None``).
        styles: per-record style id (or ``None``).
        audio_root: folder that relative ``audio`` paths are under.
        peak: peak-normalise each utterance to this value (``None`` = keep levels).
        max_frame_mismatch: the largest difference between audio frames and unit frames accepted (beyond it
            units and audio do not belong together: wrong hop, rate or file).
        seed: seed of the segment positions (with :meth:`set_epoch`, deterministic across runs and resumes).
        cache: keep decoded utterances in memory (small corpora).
        f0_norm: per-record ``(mean, std)`` of the speaker's voiced F0: the records' F0 is then returned,
            normalised (``None``: no F0).
    """

    def __init__(self, records: Sequence[UnitRecord], *, sample_rate: int, hop: int, segment_frames: int | None,
                 speakers: Sequence[int] | None = None, styles: Sequence[int] | None = None,
                 audio_root: str | os.PathLike | None = None, peak: float | None = 0.95,
                 max_frame_mismatch: int = 4, seed: int = 0, cache: bool = True,
                 f0_norm: Sequence[tuple[float, float]] | None = None):
        if not records:
            raise DataError("no training records (the units jsonl is empty)")
        self.records = list(records)
        self.sample_rate, self.hop, self.segment_frames = sample_rate, hop, segment_frames
        self.speakers, self.styles = speakers, styles
        self.audio_root = Path(audio_root) if audio_root is not None else None
        self.peak, self.max_frame_mismatch = peak, max_frame_mismatch
        self.seed, self.epoch = seed, 0
        self.f0_norm = f0_norm
        self._cache: dict[int, tuple] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def audio_path(self, record: UnitRecord) -> Path:
        """The audio file of ``record`` (relative paths are under ``audio_root``)."""
        p = Path(record.audio)
        return p if p.is_absolute() or self.audio_root is None else self.audio_root / p

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        from speechkit.audio import io

        record = self.records[index]
        units = frame_units(record)
        audio, _ = io.load(self.audio_path(record), sample_rate=self.sample_rate)
        if self.peak is not None:
            audio = audio / audio.abs().max().clamp(min=1e-8) * self.peak
        audio_frames = len(audio) // self.hop
        if abs(audio_frames - len(units)) > self.max_frame_mismatch:
            raise DataError(f"record {record.id!r}: {len(units)} unit frames but {audio_frames} audio frames of "
                            f"{self.hop} samples at {self.sample_rate} Hz in {self.audio_path(record)} (at most "
                            f"{self.max_frame_mismatch} apart): wrong hop, sample rate or audio file")
        frames = min(audio_frames, len(units))
        if frames == 0:
            raise DataError(f"record {record.id!r}: no complete frame of audio and units")
        f0 = None
        if self.f0_norm is not None:
            from speechkit.vocoders.hifigan.f0 import normalize_f0

            f0 = frame_f0(record)
            if len(f0) != len(units):
                raise DataError(f"record {record.id!r}: {len(f0)} F0 frames for {len(units)} unit frames")
            f0 = normalize_f0(f0, *self.f0_norm[index])[:frames]
        item = (units[:frames], audio[:frames * self.hop], f0)
        if self._cache is not None:
            self._cache[index] = item
        return item

    def __getitem__(self, index: int) -> VocoderSegment:
        units, audio, f0 = self._load(index)
        if self.segment_frames is not None:
            while len(units) < self.segment_frames:  # short utterances are tiled, as released
                units, audio = torch.cat([units, units]), torch.cat([audio, audio])
                f0 = None if f0 is None else torch.cat([f0, f0])
            g = torch.Generator().manual_seed(hash((self.seed, self.epoch, index)) % 2**63)
            start = int(torch.randint(0, len(units) - self.segment_frames + 1, (1,), generator=g))
            units = units[start:start + self.segment_frames]
            audio = audio[start * self.hop:(start + self.segment_frames) * self.hop]
            f0 = None if f0 is None else f0[start:start + self.segment_frames]
        speaker = self.speakers[index] if self.speakers is not None else -1
        style = self.styles[index] if self.styles is not None else -1
        return VocoderSegment(units, audio, speaker, style, f0)


def collate(batch: list[VocoderSegment]) -> dict[str, torch.Tensor]:
    """Stacks equal-length segments: ``units (B, frames)``, ``audio (B, 1, samples)``, ``speaker``/``style (B,)``
    (+ ``f0 (B, frames)``)."""
    out = {"units": torch.stack([b.units for b in batch]), "audio": torch.stack([b.audio for b in batch])[:, None],
           "speaker": torch.tensor([b.speaker for b in batch]), "style": torch.tensor([b.style for b in batch])}
    if batch[0].f0 is not None:
        out["f0"] = torch.stack([b.f0 for b in batch])
    return out
