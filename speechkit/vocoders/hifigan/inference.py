"""Inference helpers shared by the HiFi-GAN vocoders: chunked synthesis with overlap, precision, name lists."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from speechkit.precision import DTYPES as PRECISIONS
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan.model import HiFiGANGenerator

__all__ = ["synthesize_chunked", "read_names", "PRECISIONS"]


def synthesize_chunked(generator: HiFiGANGenerator, features: torch.Tensor, chunk_frames: int | None = None,
                       context_frames: int | None = None, dtype: torch.dtype = torch.float32,
                       channels_last: bool = True) -> torch.Tensor:
    """Runs ``generator`` over ``(1, channels, frames)`` features in chunks of ``chunk_frames`` frames, each with
    ``context_frames`` of real context on both sides (cut from the output), and concatenates the pieces.

    With ``context_frames`` ≥ :meth:`HiFiGANGenerator.receptive_field` (the default) every output sample sees the
    same inputs as in one whole-sequence pass, so the result equals it up to float rounding; peak memory is that
    of one chunk.

    Args:
        generator: the generator body (in eval mode).
        features: ``(1, channels, frames)``.
        chunk_frames: frames per chunk; ``None`` = one pass.
        context_frames: overlap each side; ``None`` = the generator's receptive field.
        dtype: compute dtype of the generator (its parameters must already have it).
        channels_last: run the convolutions as channels-last 2-D ones (faster on CPUs, equal up to float
            summation order); ``False`` = the released 1-D convolutions, bit for bit.

    Returns:
        ``(frames * hop,)`` float32 waveform.
    """
    frames = features.shape[-1]
    ctx = generator.receptive_field() if context_frames is None else int(context_frames)
    hop = generator.hop_length
    if chunk_frames is None or frames <= chunk_frames + 2 * ctx:
        return generator(features.to(dtype), channels_last)[0, 0].float()
    pieces = []
    for start in range(0, frames, chunk_frames):
        end = min(frames, start + chunk_frames)
        a, b = max(0, start - ctx), min(frames, end + ctx)
        y = generator(features[..., a:b].to(dtype), channels_last)[0, 0]
        pieces.append(y[(start - a) * hop:(end - a) * hop].float())
    return torch.cat(pieces)


def read_names(path: str | os.PathLike | None, what: str) -> list[str] | None:
    """The lines of a ``speakers.txt`` / ``styles.txt`` (one name per line; the line index is the id)."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise VocoderError(f"{p}: no such {what} list")
    from speechkit.utils.files import read_text

    names = [line.strip() for line in read_text(p, VocoderError).splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names or any(not n for n in names):
        raise VocoderError(f"{p}: a {what} list holds one non-empty name per line")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise VocoderError(f"{p}: duplicate {what} names {dup}")
    return names
