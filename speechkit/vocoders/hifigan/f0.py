"""F0 conditioning as speech-resynthesis does it: F0 in Hz, normalised per speaker on voiced frames.

``normalize_f0``: voiced values (F0 > 0) become ``(f0 - mean) / std`` with the speaker's statistics, unvoiced
ones stay 0 (speech-resynthesis' ``f0_normalize``). ``F0Stats`` holds the per-speaker mean and standard deviation
of voiced F0 over a training set, plus the pooled statistics used for speakers it has not seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from speechkit.vocoders.errors import VocoderError

__all__ = ["F0Stats", "normalize_f0"]


def normalize_f0(f0: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """``(frames,)`` F0 in Hz (0 = unvoiced) → speaker-normalised F0 (0 stays 0).

    Example:
        >>> normalize_f0(torch.tensor([0.0, 110.0, 130.0]), mean=120.0, std=10.0)
        tensor([ 0., -1.,  1.])
    """
    f0 = torch.as_tensor(f0, dtype=torch.float32)
    if std <= 0:
        raise VocoderError(f"F0 standard deviation must be > 0. Found {std}")
    voiced = f0 > 0
    return torch.where(voiced, (f0 - mean) / std, torch.zeros_like(f0))


@dataclass
class F0Stats:
    """Per-speaker ``(mean, std)`` of voiced F0 in Hz, and the pooled ``(mean, std)`` of all speakers."""

    speakers: dict[str, tuple[float, float]] = field(default_factory=dict)
    pooled: tuple[float, float] = (0.0, 1.0)

    @classmethod
    def compute(cls, tracks: Iterable[tuple[str | None, torch.Tensor]]) -> F0Stats:
        """Statistics of ``(speaker, f0 track in Hz)`` pairs (unvoiced frames, F0 = 0, left out)."""
        per: dict[str, list[torch.Tensor]] = {}
        pooled: list[torch.Tensor] = []
        for speaker, f0 in tracks:
            v = torch.as_tensor(f0, dtype=torch.float32)
            v = v[v > 0]
            pooled.append(v)
            if speaker is not None:
                per.setdefault(speaker, []).append(v)
        allv = torch.cat(pooled) if pooled else torch.zeros(0)
        if allv.numel() < 2:
            raise VocoderError("no voiced F0 values to compute F0 statistics from (is 'f0' in the units jsonl?)")

        def ms(v: torch.Tensor) -> tuple[float, float]:
            return float(v.mean()), float(v.std().clamp(min=1.0)) if v.numel() > 1 else 1.0

        speakers = {s: ms(torch.cat(vs)) for s, vs in sorted(per.items()) if sum(len(x) for x in vs) > 1}
        return cls(speakers, ms(allv))

    def get(self, speaker: str | None) -> tuple[float, float]:
        """The speaker's ``(mean, std)``, the pooled one for unknown speakers."""
        return self.speakers.get(speaker, self.pooled) if speaker is not None else self.pooled

    def to_dict(self) -> dict:
        return {"speakers": {k: list(v) for k, v in self.speakers.items()}, "pooled": list(self.pooled)}

    @classmethod
    def from_dict(cls, d: dict) -> F0Stats:
        return cls({k: (float(v[0]), float(v[1])) for k, v in d.get("speakers", {}).items()},
                   (float(d["pooled"][0]), float(d["pooled"][1])))
