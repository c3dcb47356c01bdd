"""F0 (pitch) tracks aligned with unit frames."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["frame_f0", "unit_f0"]


def frame_f0(wav: torch.Tensor, sample_rate: int, hop_size: int, num_frames: int, *, fmin: float = 50.0,
             fmax: float = 600.0) -> torch.Tensor:
    """F0 in Hz per feature frame (0 where unvoiced), with pYIN (librosa).

    Frame ``t`` is centred on sample ``t * hop_size`` (pYIN with ``center=True``).

    Args:
        wav: ``(samples,)`` float waveform.
        sample_rate: its rate.
        hop_size: samples per feature frame (the encoder's ``code_hop_size``).
        num_frames: frames to return (the feature count): the track is cut or zero-padded to it.
        fmin: lowest F0 searched, Hz.
        fmax: highest F0 searched, Hz.

    Returns:
        ``(num_frames,)`` float32.
    """
    import librosa

    x = wav.detach().cpu().float().numpy()
    frame_length = 2048 if sample_rate > 24000 else 1024
    f0, voiced, _ = librosa.pyin(x, fmin=fmin, fmax=fmax, sr=sample_rate, frame_length=frame_length,
                                 hop_length=hop_size, center=True)
    f0 = np.where(voiced, np.nan_to_num(f0, nan=0.0), 0.0).astype(np.float32)
    out = np.zeros(num_frames, np.float32)
    n = min(num_frames, len(f0))
    out[:n] = f0[:n]
    return torch.from_numpy(out)


def unit_f0(f0: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
    """Mean F0 of the voiced frames of each (deduplicated) unit; 0 for a unit with no voiced frame.

    Args:
        f0: ``(frames,)`` per-frame F0.
        durations: ``(units,)`` frames per unit, summing to ``frames``.
    """
    ends = torch.cumsum(durations, 0)
    starts = ends - durations
    out = torch.zeros(len(durations), dtype=torch.float32)
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        seg = f0[a:b]
        voiced = seg[seg > 0]
        out[i] = voiced.mean() if len(voiced) else 0.0
    return out
