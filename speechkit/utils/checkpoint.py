"""Released model folders (``model.safetensors`` + ``config.json`` + small text files) and the error every loader
raises for a bad checkpoint: what inference code needs, apart from the training loop's state files
(:mod:`speechkit.train.checkpoint`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from speechkit.errors import SpeechkitError
from speechkit.utils.files import atomic_open, atomic_path

__all__ = ["CheckpointError", "unwrap", "save_pretrained", "load_pretrained"]


class CheckpointError(SpeechkitError, ValueError):
    """A checkpoint is missing, unreadable, or not the kind expected; the message names the file."""


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def save_pretrained(
    folder: str | os.PathLike, state_dict: dict[str, torch.Tensor], config: dict, files: dict[str, str] | None = None
) -> Path:
    """Writes a released model folder: ``model.safetensors``, ``config.json`` and small text ``files``.

    Args:
        folder: output folder (created).
        state_dict: weights (contiguous copies are made as needed).
        config: plain JSON-able config that the model's factory reads back.
        files: file name -> text content (e.g. ``{"speakers.txt": "us1\\nus2\\n"}``).
    """
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    with atomic_open(out / "config.json") as f:
        json.dump(config, f, indent=2)
    for name, text in (files or {}).items():
        with atomic_open(out / name) as f:
            f.write(text)
    return out


def load_pretrained(folder: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Reads a folder written by :func:`save_pretrained`: ``(state_dict, config)``.

    Raises:
        CheckpointError: a file is missing or unreadable.
    """
    from speechkit.utils.files import read_json, read_safetensors

    d = Path(folder)
    for name in ("model.safetensors", "config.json"):
        if not (d / name).is_file():
            raise CheckpointError(f"{d}: missing {name} (a speechkit model folder holds model.safetensors and "
                                  "config.json)")
    config = read_json(d / "config.json", CheckpointError)
    return read_safetensors(d / "model.safetensors", CheckpointError), config
