"""Audio input and output — the only module of speechkit that reads or writes audio files.

Everything goes through `soundfile` (libsndfile): WAV, FLAC, OGG/Vorbis, MP3 (libsndfile ≥ 1.1) and more, with
no FFmpeg. Resampling and channel handling happen here, at the boundary, so the rest of the toolkit sees
float32 tensors at the sample rate it asked for.

Bad files raise :class:`AudioError`, whose message names the file and the problem: missing file, not audio or
corrupt, zero samples, NaN or infinite samples, a channel that the file does not have.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from speechkit.errors import SpeechkitError
from speechkit.utils.files import atomic_path

__all__ = ["AudioError", "AudioInfo", "info", "load", "save", "resample"]


class AudioError(SpeechkitError, ValueError):
    """An audio file cannot be used; ``path`` names it and ``problem`` says why."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says.

    Attributes:
        sample_rate: samples per second per channel.
        num_frames: samples per channel.
        num_channels: 1 for mono, 2 for stereo, ...
        subtype: the sample encoding, e.g. ``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``.
        format: the container, e.g. ``"WAV"``, ``"FLAC"``.
    """

    sample_rate: int
    num_frames: int
    num_channels: int
    subtype: str
    format: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_frames / self.sample_rate


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "no such file")
    if p.is_dir():
        raise AudioError(p, "is a directory, expected an audio file")
    return p


def info(path: str | os.PathLike) -> AudioInfo:
    """Reads the header of an audio file without decoding its samples.

    Args:
        path: the audio file.

    Returns:
        An :class:`AudioInfo`.

    Raises:
        AudioError: the file is missing or is not a readable audio file.

    Example:
        >>> info("a.wav").duration
        2.5
    """
    p = _check_path(path)
    try:
        i = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(p, f"not a readable audio file or corrupt ({e})") from None
    return AudioInfo(int(i.samplerate), int(i.frames), int(i.channels), str(i.subtype), str(i.format))


def max_seconds() -> float:
    """The longest audio :func:`load` reads into memory at once: ``$SPEECHKIT_MAX_AUDIO_SECONDS``, default 4 hours
    (about 0.9 GB of float32 at 16 kHz). Longer input is streamed (``speechkit resynth --stream``)."""
    return float(os.environ.get("SPEECHKIT_MAX_AUDIO_SECONDS", 4 * 3600))


def _check_length(p: Path, start: int, stop: int | None) -> None:
    """Refuses, from the header alone, a read longer than :func:`max_seconds` (a header can claim 2^36 frames)."""
    try:
        i = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(p, f"not a readable audio file or corrupt ({e})") from None
    if i.samplerate <= 0:
        raise AudioError(p, f"not a readable audio file or corrupt (sample rate {i.samplerate})")
    frames = (min(stop, i.frames) if stop is not None else i.frames) - start
    limit = max_seconds()
    if frames / i.samplerate > limit:
        raise AudioError(p, f"is {frames / i.samplerate:.0f} s long (by its header); speechkit reads at most "
                            f"{limit:.0f} s into memory (SPEECHKIT_MAX_AUDIO_SECONDS); stream longer audio "
                            "(speechkit resynth --stream, speechkit.audio.streaming.read_chunks)")


def resample(wav: torch.Tensor, orig_sample_rate: int, new_sample_rate: int) -> torch.Tensor:
    """Band-limited sinc resampling (torchaudio's windowed-sinc filter) along the last dimension.

    Args:
        wav: ``(..., samples)`` float tensor.
        orig_sample_rate: the rate of ``wav``.
        new_sample_rate: the rate wanted.

    Returns:
        ``(..., ceil(samples * new / orig))`` float tensor; ``wav`` itself when the rates are equal.
    """
    for name, value in (("orig_sample_rate", orig_sample_rate), ("new_sample_rate", new_sample_rate)):
        if int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer. Found {value!r}")
    if orig_sample_rate == new_sample_rate:
        return wav
    import torchaudio.functional as AF  # heavy import, only when resampling is needed

    return AF.resample(wav, int(orig_sample_rate), int(new_sample_rate))


def load(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = True,
    *,
    channel: int | None = None,
    frame_offset: int = 0,
    num_frames: int = -1,
) -> tuple[torch.Tensor, int]:
    """Reads an audio file into a float32 tensor in [-1, 1].

    Args:
        path: the audio file (any format libsndfile reads).
        sample_rate: resample to this rate; ``None`` keeps the file's rate.
        mono: ``True`` averages all channels into one; ``False`` keeps them, returning ``(channels, samples)``.
        channel: select this channel (0-based) instead of averaging; the result is ``(samples,)``.
        frame_offset: first sample to read, at the file's own rate.
        num_frames: how many samples to read at the file's own rate; ``-1`` reads to the end.

    Returns:
        ``(wav, sample_rate)``: ``wav`` is ``(samples,)`` (mono or one channel) or ``(channels, samples)``.

    Raises:
        AudioError: the file is missing, unreadable or corrupt, has zero samples (in the requested range),
            contains NaN or infinite samples, or has no channel ``channel``.

    Example:
        >>> wav, sr = load("speech_48k.wav", sample_rate=16000)
        >>> wav.shape, sr
        (torch.Size([40000]), 16000)
        >>> left, _ = load("dialogue.wav", channel=0)
    """
    p = _check_path(path)
    if frame_offset < 0:
        raise ValueError(f"frame_offset must be >= 0. Found {frame_offset}")
    stop = None if num_frames is None or num_frames < 0 else frame_offset + num_frames
    _check_length(p, frame_offset, stop)
    try:
        data, file_rate = sf.read(str(p), start=frame_offset, stop=stop, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(p, f"not a readable audio file or corrupt ({e})") from None
    except (ValueError, TypeError) as e:  # soundfile's own argument checks (e.g. offset past the end)
        raise AudioError(p, f"cannot read samples {frame_offset}..{stop}: {e}") from None
    num_channels = data.shape[1]
    if data.shape[0] == 0:
        what = "has zero samples" if frame_offset == 0 else f"has no samples from frame {frame_offset} on"
        raise AudioError(p, what)
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(p, f"contains {bad} NaN or infinite samples; audio must be finite")
    if channel is not None:
        if not 0 <= channel < num_channels:
            raise AudioError(p, f"has {num_channels} channel(s) (0..{num_channels - 1}); channel {channel} requested")
        wav = torch.from_numpy(np.ascontiguousarray(data[:, channel]))
    elif mono:
        wav = torch.from_numpy(data.mean(axis=1) if num_channels > 1 else np.ascontiguousarray(data[:, 0]))
    else:
        wav = torch.from_numpy(np.ascontiguousarray(data.T))
    if sample_rate is not None and sample_rate != file_rate:
        wav = resample(wav, file_rate, sample_rate)
        file_rate = sample_rate
    return wav, int(file_rate)


def save(
    path: str | os.PathLike,
    wav: torch.Tensor | np.ndarray,
    sample_rate: int,
    *,
    subtype: str | None = None,
) -> Path:
    """Writes audio atomically (a temporary file renamed into place).

    Args:
        path: output file; the format follows the extension (``.wav``, ``.flac``, ``.ogg``, ...).
        wav: ``(samples,)`` or ``(channels, samples)`` float audio in [-1, 1] (values outside are clipped by
            integer subtypes).
        sample_rate: samples per second.
        subtype: sample encoding, e.g. ``"PCM_16"`` (the WAV default), ``"PCM_24"``, ``"FLOAT"``.

    Returns:
        The path written.

    Raises:
        AudioError: ``wav`` is empty, not 1-D/2-D, or has NaN or infinite values (nothing is written).

    Example:
        >>> save("out.wav", torch.zeros(16000), 16000)
    """
    p = Path(path)
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer. Found {sample_rate!r}")
    array = wav.detach().cpu().float().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float32)
    if array.ndim == 2:
        array = array.T  # (channels, samples) -> soundfile's (samples, channels)
    elif array.ndim != 1:
        shape = tuple(array.shape)
        raise AudioError(p, f"cannot write audio of shape {shape}; expected (samples,) or (channels, samples)")
    if array.shape[0] == 0:
        raise AudioError(p, "refusing to write zero samples")
    if not np.isfinite(array).all():
        raise AudioError(p, "refusing to write NaN or infinite samples")
    with atomic_path(p) as tmp:
        sf.write(str(tmp), array, int(sample_rate), subtype=subtype, format=_format_for(p))
    return p


def _format_for(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    formats = sf.available_formats()
    if ext.upper() not in formats:
        raise AudioError(path, f"unknown audio extension '.{ext}'; use one of {sorted(f.lower() for f in formats)}")
    return ext.upper()


# ---------------------------------------------------------------------------------------------- streaming a corpus
def _finish(item: dict, data: np.ndarray | torch.Tensor, file_rate: int, sample_rate: int | None) -> dict:
    """Shared tail of both loaders: checks, mixdown, resampling; problems become ``item["error"]``."""
    x = torch.as_tensor(data, dtype=torch.float32)
    if file_rate <= 0:
        return {**item, "error": "not a readable audio file or corrupt (no sample rate)"}
    if x.numel() == 0:
        return {**item, "error": "has zero samples"}
    if x.dim() == 2:  # (samples, channels) -> mono
        x = x.mean(dim=1) if x.shape[1] > 1 else x[:, 0]
    if not torch.isfinite(x).all():
        return {**item, "error": f"contains {int((~torch.isfinite(x)).sum())} NaN or infinite samples"}
    if sample_rate is not None and sample_rate != file_rate:
        x = resample(x, file_rate, sample_rate)
    return {**item, "wav": x.contiguous(), "sample_rate": sample_rate or file_rate}


def _load_item(item: dict, sample_rate: int | None) -> dict:
    try:
        wav, sr = load(item["path"])
    except AudioError as e:
        return {**item, "error": e.problem}
    return _finish(item, wav, sr, sample_rate)


class _TorchAudioDataset(torch.utils.data.Dataset):
    def __init__(self, items: list[dict], sample_rate: int | None):
        self.items, self.sample_rate = items, sample_rate

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return _load_item(self.items[i], self.sample_rate)


def iter_audio(items: list[dict], sample_rate: int | None = None, *, loader: str = "fairseq2", workers: int = 2,
               prefetch: int = 8):
    """Decodes many files in the background, in order, for corpus jobs.

    Each item is a dict with at least ``"path"``; it comes back with ``"wav"`` (``(samples,)`` float32, mono,
    resampled to ``sample_rate``) and ``"sample_rate"``, or with ``"error"`` (the reason, e.g. ``"has zero
    samples"``) so a bad file never stops the job.

    Args:
        items: what to read, in the order wanted.
        sample_rate: target rate (``None`` keeps each file's rate).
        loader: ``"fairseq2"`` (fairseq2's native pipeline: ``read_sequence`` -> parallel ``FileMapper`` +
            ``AudioDecoder`` -> ``prefetch``) or ``"torch"`` (a ``DataLoader`` with worker processes calling
            :func:`load`). ``benchmarks/tokenize.py`` measures both.
        workers: parallel decoders (threads for fairseq2, processes for torch).
        prefetch: decoded items kept ready ahead of the consumer.

    Yields:
        The items, in input order.
    """
    if loader == "torch":
        ds = _TorchAudioDataset(items, sample_rate)
        dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers,
                                         prefetch_factor=max(1, prefetch // max(workers, 1)) if workers else None,
                                         multiprocessing_context="spawn" if workers else None,
                                         persistent_workers=False)
        yield from dl
        return
    if loader != "fairseq2":
        raise ValueError(f"loader must be 'fairseq2' or 'torch'. Found {loader!r}")
    from fairseq2.data.audio import AudioDecoder
    from fairseq2.data.data_pipeline import FileMapper, read_sequence

    mapper, decoder = FileMapper(), AudioDecoder(dtype=torch.float32)

    def decode(item: dict) -> dict:
        path = Path(item["path"])
        if not path.is_file():
            return {**item, "error": "no such file" if not path.exists() else "is a directory, expected an audio file"}
        try:
            out = decoder(mapper(str(path))["data"])
        except Exception as e:  # noqa: BLE001 - fairseq2n raises ValueError/ByteStreamError for bad files
            return {**item, "error": f"not a readable audio file or corrupt ({str(e).splitlines()[0][:200]})"}
        return _finish(item, out["waveform"], int(out["sample_rate"]), sample_rate)

    pipeline = read_sequence(items).map(decode, num_parallel_calls=max(1, workers)).prefetch(prefetch).and_return()
    yield from pipeline
