"""Checks and conversions of unit-vocoder inputs, shared by every unit vocoder (CodeHiFiGAN, unit-to-mel)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from speechkit.vocoders.errors import VocoderError

__all__ = ["UnitInputs"]


class UnitInputs:
    """Mixin of a unit vocoder (an ``nn.Module`` with a ``device``): ids of speakers / styles and 1-D inputs."""

    def _index(self, what: str, value: Any, names: list[str] | None, size: int) -> torch.Tensor | None:
        if size == 0:
            if value is not None:
                raise VocoderError(f"{what}={value!r}: this vocoder has no {what} input")
            return None
        if value is None:  # a list with a "default" entry (Expresso's neutral style) names it; else id 0, as officially
            value = names.index("default") if names and "default" in names else 0
        if isinstance(value, torch.Tensor | np.ndarray):  # e.g. torch.LongTensor([[3]]), as textlesslib builds it
            arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
            if arr.size != 1 or arr.dtype.kind not in "iu":
                raise VocoderError(f"{what} must be a name or an integer id. Found an array of shape {arr.shape}, "
                                   f"dtype {arr.dtype}")
            value = int(arr.reshape(-1)[0])
        if isinstance(value, str):
            if not names:
                raise VocoderError(f"{what}={value!r}: this vocoder has no {what}s.txt list, give an id in "
                                   f"0..{size - 1}")
            if value not in names:
                shown = names if len(names) <= 12 else names[:12] + ["..."]
                raise VocoderError(f"{what}={value!r}: unknown {what}; known: {shown}")
            value = names.index(value)
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise VocoderError(f"{what} must be a name or an integer id. Found {type(value).__name__} {value!r}")
        if not 0 <= int(value) < size:
            raise VocoderError(f"{what} id must be in 0..{size - 1}. Found {int(value)}")
        return torch.tensor([int(value)], device=self.device)

    @staticmethod
    def _as_1d(x: Any, what: str, integer: bool) -> torch.Tensor:
        if isinstance(x, str):  # "12 12 7 99", as textlesslib's preprocess_code reads it
            try:
                x = [float(v) if not integer else int(v) for v in x.split()]
            except ValueError:
                raise VocoderError(f"{what}: a string must hold numbers separated by spaces. "
                                   f"Found {x[:40]!r}") from None
        t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
        while t.dim() > 1 and t.shape[0] == 1:  # (1, frames) and (1, 1, frames) as the official code takes them
            t = t[0]
        if t.dim() != 1:
            raise VocoderError(f"{what} must be 1-D (frames,) or (1, frames). Found shape {tuple(t.shape)}")
        if integer and (t.is_floating_point() or t.dtype == torch.bool):
            if t.numel() and not torch.equal(t, t.round()):
                raise VocoderError(f"{what} must be integers. Found dtype {t.dtype}")
        return t.long() if integer else t.float()

    def _check_units(self, units: Any, num_units: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``units`` as a 1-D int64 tensor on the device, and the mask of its non-negative ids (negative ids are
        padding, dropped as the official code drops them)."""
        u = self._as_1d(units, "units", integer=True).to(self.device)
        if u.numel() == 0:
            raise VocoderError("units: empty unit sequence")
        keep = u >= 0
        if not bool(keep.any()):
            raise VocoderError(f"units: all {u.numel()} ids are negative (negative ids are dropped as padding)")
        if int(u.max()) >= num_units:
            raise VocoderError(f"units must be < {num_units} (the vocoder's vocabulary). Found {int(u.max())}")
        return u, keep

    def _frame_units(self, u: torch.Tensor, keep: torch.Tensor, durations: Any, dur_prediction: bool,
                     model) -> torch.Tensor:
        """One unit per output frame: the kept units repeated by ``durations``, by ``model``'s duration predictor
        (``dur_prediction``), or as they are."""
        if durations is not None:
            if dur_prediction:
                raise VocoderError("give either durations or dur_prediction=True, not both")
            d = self._as_1d(durations, "durations", integer=True).to(self.device)
            if d.numel() != u.numel() or bool((d < 1).any()):
                raise VocoderError(f"durations must be {u.numel()} positive integers (one per unit). Found "
                                   f"{d.numel()} values, min {int(d.min()) if d.numel() else None}")
            d = d[keep]
        u = u[keep]
        if dur_prediction:
            if model.duration_predictor is None:
                raise VocoderError("dur_prediction=True: this vocoder has no duration predictor")
            d = model.predict_durations(u[None])[0]
        if dur_prediction or durations is not None:
            u = torch.repeat_interleave(u, d)
        return u
