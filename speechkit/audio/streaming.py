"""Resampling of an audio stream in pieces, equal to resampling the whole signal at once.

torchaudio's windowed-sinc resampler computes each group of ``new / gcd`` output samples from a fixed span of input
around it. :class:`StreamingResampler` feeds it blocks on a fixed grid of the input (multiples of ``orig / gcd``),
each with enough input on both sides, and keeps the middle: the output does not depend on how the input was cut, and
equals :func:`speechkit.audio.io.resample` of the whole signal up to float rounding.
"""

from __future__ import annotations

import math

import torch

__all__ = ["StreamingResampler", "StreamWriter", "read_chunks", "read_pcm16"]


class StreamingResampler:
    """Resamples a signal given in pieces of any length.

    Args:
        orig_sample_rate: rate of the input.
        new_sample_rate: rate of the output.
        block_ms: input consumed per resampling call (rounded to the resampler's period).

    Example:
        >>> rs = StreamingResampler(48000, 16000)
        >>> out = torch.cat([rs.push(c) for c in chunks] + [rs.flush()])   # == io.resample(torch.cat(chunks), ...)
    """

    LOWPASS_FILTER_WIDTH = 6  # torchaudio's defaults, which io.resample uses
    ROLLOFF = 0.99

    def __init__(self, orig_sample_rate: int, new_sample_rate: int, block_ms: float = 20.0):
        for name, value in (("orig_sample_rate", orig_sample_rate), ("new_sample_rate", new_sample_rate)):
            if int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive integer. Found {value!r}")
        g = math.gcd(int(orig_sample_rate), int(new_sample_rate))
        self.orig, self.new = int(orig_sample_rate), int(new_sample_rate)
        self.o, self.n = self.orig // g, self.new // g
        width = math.ceil(self.LOWPASS_FILTER_WIDTH * self.o / (min(self.o, self.n) * self.ROLLOFF))
        self.margin = (math.ceil(width / self.o) + 2) * self.o           # input samples each side of a block
        self.block = max(1, round(block_ms * self.orig / 1000 / self.o)) * self.o
        self._buf = torch.zeros(self.margin)  # global input from self._start - margin, zeros before the start
        self._start = 0                       # first input sample of the next block
        self._consumed = 0                    # input samples pushed
        self._emitted = 0                     # output samples returned

    def _resample(self, segment: torch.Tensor) -> torch.Tensor:
        import torchaudio.functional as AF

        return AF.resample(segment, self.orig, self.new, lowpass_filter_width=self.LOWPASS_FILTER_WIDTH,
                           rolloff=self.ROLLOFF)

    def _blocks(self, final: bool) -> torch.Tensor:
        out = []
        while True:
            have = self._buf.numel() - self.margin  # input samples at or after self._start
            if have >= self.block + self.margin or (final and have > 0):
                seg = self._buf[: 2 * self.margin + self.block]
                if seg.numel() < 2 * self.margin + self.block:  # the end: zeros after it, as the offline call pads
                    seg = torch.nn.functional.pad(seg, (0, 2 * self.margin + self.block - seg.numel()))
                y = self._resample(seg)
                skip = self.margin // self.o * self.n
                out.append(y[skip: skip + self.block // self.o * self.n])
                self._buf = self._buf[self.block:]
                self._start += self.block
            else:
                break
        y = torch.cat(out) if out else torch.zeros(0)
        if final:  # the offline call returns ceil(samples * new / orig) samples
            total = math.ceil(self._consumed * self.n / self.o)
            y = y[: max(0, total - self._emitted)]
        self._emitted += y.numel()
        return y

    def push(self, chunk: torch.Tensor) -> torch.Tensor:
        """Takes ``(samples,)`` input; returns the output samples that are now final (possibly none)."""
        if self.orig == self.new:
            self._consumed += chunk.numel()
            self._emitted += chunk.numel()
            return chunk.float()
        self._buf = torch.cat([self._buf, chunk.float()])
        self._consumed += chunk.numel()
        return self._blocks(final=False)

    def flush(self) -> torch.Tensor:
        """The rest of the output, after the last input."""
        if self.orig == self.new:
            return torch.zeros(0)
        return self._blocks(final=True)


def read_chunks(path, chunk_ms: float = 100.0):
    """``(sample_rate, iterator of (samples,) float32 mono chunks)`` of an audio file, read ``chunk_ms`` at a time
    (memory does not grow with the file). Channels are averaged.

    Raises:
        AudioError: the file is missing or unreadable (at once), or holds NaN / infinite samples (when reached).
    """
    import numpy as np
    import soundfile as sf

    from speechkit.audio.io import AudioError, _check_path

    p = _check_path(path)
    try:
        f = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(p, f"not a readable audio file or corrupt ({e})") from None
    if f.frames == 0:
        f.close()
        raise AudioError(p, "has no samples")
    chunk_samples = max(1, int(f.samplerate * chunk_ms / 1000))

    def chunks():
        with f:
            start = 0
            while True:
                try:
                    block = f.read(chunk_samples, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as e:
                    raise AudioError(p, f"cannot read samples from {start}: {e}") from None
                if block.shape[0] == 0:
                    return
                if not np.isfinite(block).all():
                    raise AudioError(p, f"contains NaN or infinite samples near sample {start}; audio must be "
                                        "finite")
                start += block.shape[0]
                yield torch.from_numpy(block.mean(1) if block.shape[1] > 1 else block[:, 0].copy())

    return int(f.samplerate), chunks()


def read_pcm16(stream, chunk_samples: int):
    """``(samples,)`` float32 chunks of raw mono 16-bit little-endian PCM read from a binary stream (stdin) until
    it ends; an odd trailing byte is dropped."""
    import numpy as np

    left = b""
    while True:
        data = stream.read(chunk_samples * 2)
        if not data:
            return
        data = left + data
        n = len(data) // 2 * 2
        data, left = data[:n], data[n:]
        if n:
            yield torch.from_numpy(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)


class StreamWriter:
    """Writes an audio file a chunk at a time, atomically: the file appears, complete, when the context exits
    without error (a temporary file beside it is renamed); on error nothing is left.

    Example:
        >>> with StreamWriter("out.wav", 16000) as w:
        ...     for y in chunks: w.write(y)
    """

    def __init__(self, path, sample_rate: int, subtype: str | None = None):
        from pathlib import Path

        from speechkit.audio.io import _format_for

        self.path = Path(path)
        self.format = _format_for(self.path)
        self.sample_rate, self.subtype = int(sample_rate), subtype
        self.frames = 0

    def __enter__(self) -> StreamWriter:
        import os
        import tempfile

        import soundfile as sf

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = tmp
        self._file = sf.SoundFile(tmp, "w", self.sample_rate, 1, subtype=self.subtype, format=self.format)
        return self

    def write(self, chunk: torch.Tensor) -> None:
        self._file.write(chunk.detach().cpu().float().numpy())
        self.frames += chunk.numel()

    def __exit__(self, kind, value, tb) -> None:
        import os

        self._file.close()
        if kind is None and self.frames > 0:
            os.replace(self._tmp, self.path)
        else:
            os.unlink(self._tmp)
            if kind is None:
                from speechkit.audio.io import AudioError

                raise AudioError(self.path, "refusing to write zero samples")
