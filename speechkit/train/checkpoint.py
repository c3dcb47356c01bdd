"""Checkpoints that describe themselves and load without executing foreign code.

Two kinds:

- **training state** (``checkpoint_last.pt``): model, optimizer and scheduler state, step, config and RNG states
  in one ``torch.save`` file of tensors and plain Python values, loaded with ``torch.load(weights_only=True)``;
  written atomically so a job killed at any moment resumes from the last complete checkpoint;
- **released model** (a folder): ``model.safetensors`` + ``config.json`` (+ any small text files such as speaker
  lists), loaded with safetensors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from speechkit.utils.checkpoint import CheckpointError, load_pretrained, save_pretrained, unwrap
from speechkit.utils.files import atomic_path

__all__ = ["CheckpointError", "save_training_state", "load_training_state", "save_pretrained", "load_pretrained",
           "unwrap", "resume_log", "restore_rng", "LAST"]

LAST = "checkpoint_last.pt"


def save_training_state(
    folder: str | os.PathLike,
    *,
    step: int,
    model: torch.nn.Module,
    config: dict,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    schedulers: dict[str, Any] | None = None,
    extra: dict | None = None,
) -> Path:
    """Writes ``folder/checkpoint_last.pt`` atomically.

    Args:
        folder: run folder.
        step: optimisation steps done.
        model: the model (DDP/compile wrappers are removed).
        config: the run's resolved config as plain values.
        optimizers: name -> optimizer.
        schedulers: name -> LR scheduler.
        extra: other plain values to keep (data position, best loss, ...).

    Returns:
        The checkpoint path.
    """
    state = {
        "version": 1,
        "step": int(step),
        "config": json.loads(json.dumps(config)),
        "model": unwrap(model).state_dict(),
        "optimizers": {k: v.state_dict() for k, v in (optimizers or {}).items()},
        "schedulers": {k: v.state_dict() for k, v in (schedulers or {}).items()},
        "extra": extra or {},
        "rng": {"torch": torch.get_rng_state()},
    }
    path = Path(folder) / LAST
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_training_state(path: str | os.PathLike) -> dict:
    """Loads a training state written by :func:`save_training_state` (``weights_only=True``).

    Args:
        path: the ``.pt`` file or its run folder.

    Raises:
        CheckpointError: missing, unreadable, or not a speechkit training state.
    """
    p = Path(path)
    if p.is_dir():
        p = p / LAST
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad checkpoint for the user
        raise CheckpointError(f"{p}: not a loadable checkpoint ({type(e).__name__}: {str(e)[:300]})") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(f"{p}: not a speechkit training checkpoint (keys 'model' and 'step' expected)")
    return state


def resume_log(path: str | os.PathLike, step: int) -> None:
    """Makes a run's ``log.jsonl`` agree with the checkpoint being resumed at ``step``.

    A job killed after its last checkpoint has logged steps that the resumed run will do again, and may have left
    a torn last line. Both are removed (atomically), so the log holds each step once: lines whose ``"step"`` is
    above ``step`` are dropped, as is any line that is not whole JSON.
    """
    p = Path(path)
    if not p.is_file():
        return
    keep = []
    for line in p.read_bytes().decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and int(row.get("step", 0)) <= step:
            keep.append(line + "\n")
    with atomic_path(p) as tmp:
        tmp.write_text("".join(keep), encoding="utf-8")


def restore_rng(state: dict) -> None:
    """Puts back the torch RNG state saved with a training state: a resumed run then draws the same random
    numbers (dropout, crops) as the uninterrupted run would have, and ends with the same weights."""
    rng = state.get("rng") or {}
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
