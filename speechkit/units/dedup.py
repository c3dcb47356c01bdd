"""Unit sequences: run-length deduplication, and moving deduplicated units onto another frame grid."""

from __future__ import annotations

import torch

__all__ = ["deduplicate", "regrid"]


def deduplicate(units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run-length encoding: ``[5, 5, 2, 2, 2, 5]`` -> ``([5, 2, 5], [2, 3, 1])`` (textlesslib's dedup).

    Args:
        units: ``(frames,)`` int unit ids.

    Returns:
        ``(units, durations)``: consecutive repeats merged, and how many frames each lasted.
    """
    units = torch.as_tensor(units)
    if units.dim() != 1:
        raise ValueError(f"units must be 1-D (frames,). Found shape {tuple(units.shape)}")
    return torch.unique_consecutive(units, return_counts=True)


def regrid(units: torch.Tensor, durations: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deduplicated units of a time-scaled copy of an utterance (sped up or slowed down) moved back onto the
    original's grid of ``frames`` frames: every unit's end is scaled by ``frames / sum(durations)`` and rounded to the
    nearest frame (so no boundary moves by more than half a frame); units left without a frame are dropped and equal
    neighbours merged.

    Returns:
        ``(units, durations)`` with ``durations.sum() == frames``.

    Raises:
        ValueError: no units, durations of another length, or ``frames < 1``.
    """
    units, durations = torch.as_tensor(units), torch.as_tensor(durations)
    if frames < 1 or units.numel() == 0 or units.shape != durations.shape:
        raise ValueError(f"regrid: needs units with one duration each and frames >= 1. Found {tuple(units.shape)} "
                         f"units, {tuple(durations.shape)} durations, {frames} frames")
    ends = torch.cumsum(durations.double(), 0)
    ends = torch.round(ends * (frames / float(ends[-1]))).long()
    ends[-1] = frames
    d = torch.diff(torch.cat([torch.zeros(1, dtype=torch.long), ends]))
    keep = d > 0
    return deduplicate(torch.repeat_interleave(units[keep], d[keep]))
