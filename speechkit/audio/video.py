"""Video input and output with PyAV (self-contained FFmpeg): frames, their audio track, mouth crops, dubbing.

Like :mod:`speechkit.audio.io` for audio files, this is the one module that reads and writes video files. Bad
files raise :class:`VideoError`, whose message names the file and the rule: missing file, unreadable container,
no video stream, zero frames.

- :func:`info` and :func:`read_video` decode an mp4 (any FFmpeg container) to ``uint8 (frames, H, W, 3)`` RGB
  plus the audio track as mono float32.
- :func:`mouth_crops` cuts a fixed box (fractions of the frame) out of every frame and resizes it: the mouth
  region the VDTTS video encoder sees.
- :func:`write_video` encodes frames (H.264) with an optional AAC audio track.
- :func:`replace_audio` copies the video stream packet by packet (no re-encoding: every frame, its timestamps
  and the frame rate are kept exactly) and adds a new audio track — dubbing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from speechkit.errors import SpeechkitError
from speechkit.utils.files import atomic_path

__all__ = ["VideoError", "VideoInfo", "Video", "info", "read_video", "mouth_crops", "write_video", "replace_audio",
           "DEFAULT_MOUTH_BOX"]

# (x0, y0, x1, y1) as fractions of the frame: the lower middle of a frontal, centred face.
DEFAULT_MOUTH_BOX = (0.25, 0.5, 0.75, 0.9)


class VideoError(SpeechkitError, ValueError):
    """A video file cannot be used; ``path`` names it and ``problem`` says why."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds (frames are counted by decoding, so the number is exact).

    Attributes:
        fps: frames per second of the video stream (its average rate).
        num_frames: decoded frames.
        width, height: frame size in pixels.
        has_audio: whether the file has an audio stream.
    """

    fps: float
    num_frames: int
    width: int
    height: int
    has_audio: bool

    @property
    def duration(self) -> float:
        """``num_frames / fps`` in seconds."""
        return self.num_frames / self.fps


@dataclass
class Video:
    """A decoded video: ``frames`` ``uint8 (frames, H, W, 3)`` RGB at ``fps``; ``audio`` ``float32 (samples,)``
    mono at ``sample_rate`` or ``None`` when the file has no audio stream."""

    frames: np.ndarray
    fps: float
    audio: np.ndarray | None = None
    sample_rate: int | None = None


def _open(path: str | os.PathLike):
    import av

    p = Path(path)
    if not p.exists():
        raise VideoError(p, "no such file")
    if p.is_dir():
        raise VideoError(p, "is a directory, expected a video file")
    try:
        container = av.open(str(p))
    except av.FFmpegError as e:
        raise VideoError(p, f"not a readable video file or corrupt ({e})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(p, "has no video stream (a video file with frames is required)")
    return container


def _fps(stream) -> float:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    return float(rate) if rate else 25.0


def _decode(path: Path, want_frames: bool, want_audio: bool):
    import av

    container = _open(path)
    frames, count, chunks, sample_rate = [], 0, [], None
    try:
        vstream = container.streams.video[0]
        fps, width, height = _fps(vstream), vstream.codec_context.width, vstream.codec_context.height
        has_audio = bool(container.streams.audio)
        streams = [vstream] + ([container.streams.audio[0]] if want_audio and has_audio else [])
        for frame in container.decode(*streams):
            if isinstance(frame, av.VideoFrame):
                count += 1
                if want_frames:
                    frames.append(frame.to_ndarray(format="rgb24"))
            else:
                sample_rate = frame.sample_rate
                a = frame.to_ndarray().astype(np.float32)
                if frame.format.is_planar:
                    chunks.append(a.mean(axis=0))
                else:  # packed: (1, samples * channels)
                    chunks.append(a.reshape(-1, len(frame.layout.channels)).mean(axis=1))
    except av.FFmpegError as e:
        raise VideoError(path, f"corrupt video data ({e})") from None
    finally:
        container.close()
    if count == 0:
        raise VideoError(path, "has zero video frames")
    audio = np.concatenate(chunks).astype(np.float32) if chunks else None
    return VideoInfo(fps, count, width, height, has_audio), frames, audio, sample_rate


def info(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, exact frame count, size and whether there is audio (decodes the video stream).

    Raises:
        VideoError: missing or unreadable file, no video stream, zero frames.

    Example:
        >>> info("face.mp4").num_frames
        75
    """
    return _decode(Path(path), want_frames=False, want_audio=False)[0]


def read_video(path: str | os.PathLike, *, audio: bool = True) -> Video:
    """Decodes every frame (RGB) and, with ``audio``, the first audio stream mixed to mono.

    Args:
        path: video file (mp4, mkv, avi, ... anything FFmpeg reads).
        audio: also decode the audio track.

    Returns:
        A :class:`Video`; ``frames`` is ``uint8 (num_frames, H, W, 3)``.

    Raises:
        VideoError: missing or unreadable file, no video stream, zero frames.
    """
    vinfo, frames, wav, sr = _decode(Path(path), want_frames=True, want_audio=audio)
    return Video(np.stack(frames), vinfo.fps, wav, sr)


def mouth_crops(frames: np.ndarray, box: tuple[float, float, float, float] = DEFAULT_MOUTH_BOX,
                size: int = 32) -> np.ndarray:
    """Grey-level crops of a fixed box of every frame, resized to ``size x size``.

    Args:
        frames: ``uint8 (T, H, W, 3)`` RGB or ``(T, H, W)`` grey.
        box: ``(x0, y0, x1, y1)`` as fractions of the width and height, ``0 <= x0 < x1 <= 1``.
        size: side of the output crops.

    Returns:
        ``uint8 (T, size, size)``.
    """
    from PIL import Image

    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValueError(f"box must be (x0, y0, x1, y1) with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1. Found {box}")
    if frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(f"frames must be (T, H, W[, 3]) with T > 0. Found shape {frames.shape}")
    h, w = frames.shape[1:3]
    left, top = int(round(x0 * w)), int(round(y0 * h))
    right, bottom = max(left + 1, int(round(x1 * w))), max(top + 1, int(round(y1 * h)))
    out = np.empty((len(frames), size, size), dtype=np.uint8)
    for i, f in enumerate(frames):
        img = Image.fromarray(f[top:bottom, left:right])
        out[i] = np.asarray(img.convert("L").resize((size, size), Image.BILINEAR))
    return out


def _add_audio_stream(container, sample_rate: int):
    stream = container.add_stream("aac", rate=sample_rate, layout="mono")
    return stream


def _encode_audio(container, stream, wav: np.ndarray, sample_rate: int) -> None:
    import av

    wav = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    chunk = 1024
    for start in range(0, len(wav), chunk):
        piece = np.ascontiguousarray(wav[None, start : start + chunk])
        frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
                sample_rate: int | None = None) -> Path:
    """Encodes RGB frames as H.264 (yuv420p) in an mp4, with an optional mono AAC track; written atomically.

    Args:
        path: output file (``.mp4``).
        frames: ``uint8 (T, H, W, 3)`` with even ``H`` and ``W``.
        fps: frame rate (stored as an exact fraction, e.g. 25 or 30000/1001).
        audio: ``float32 (samples,)`` mono in ``[-1, 1]``, or ``None``.
        sample_rate: rate of ``audio``.

    Returns:
        ``path``.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be uint8 (T, H, W, 3) with T > 0. Found {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"frame height and width must be even for yuv420p. Found {frames.shape[1:3]}")
    if audio is not None and not sample_rate:
        raise ValueError("sample_rate is required with audio")
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            vs = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            vs.options = {"crf": "20", "preset": "veryfast"}
            astream = _add_audio_stream(out, sample_rate) if audio is not None else None
            for f in frames:
                out.mux(vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
            out.mux(vs.encode(None))
            if astream is not None:
                _encode_audio(out, astream, audio, sample_rate)
    return path


def replace_audio(src: str | os.PathLike, dst: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Writes ``dst``: the video stream of ``src`` copied without re-encoding, and ``audio`` as its only audio.

    Every frame of ``src`` is kept bit for bit, with its timestamps and frame rate; any audio of ``src`` is
    dropped. Written atomically.

    Args:
        src: input video.
        dst: output ``.mp4``.
        audio: ``float32 (samples,)`` mono in ``[-1, 1]``.
        sample_rate: rate of ``audio`` (AAC: 8000 to 96000).

    Raises:
        VideoError: ``src`` is missing, unreadable, has no video stream or zero frames.
    """
    import av

    src = Path(src)
    info(src)  # the checks: a readable file with a video stream and at least one frame
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or len(audio) == 0:
        raise ValueError(f"audio must be a non-empty (samples,) array. Found shape {audio.shape}")
    with atomic_path(dst) as tmp, av.open(str(src)) as inp, av.open(str(tmp), mode="w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        astream = _add_audio_stream(out, sample_rate)
        for packet in inp.demux(vin):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = vout
            out.mux(packet)
        _encode_audio(out, astream, audio, sample_rate)
    return Path(dst)
