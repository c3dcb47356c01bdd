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

__all__ = ["CheckpointError", "unwrap", "save_pretrained", "load_pretrained", "place"]


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


def place(model, device=None, dtype: torch.dtype | None = None):
    """What every ``from_pretrained(..., device=, dtype=)`` does after loading: moves ``model`` to ``device``, then
    turns on its reduced-precision fast path for ``dtype`` (``set_precision`` of vocoders, the autocast of HuBERT
    readers), each of which checks that ``device`` computes in it and otherwise stays fp32 with one warning line;
    ``torch.float32`` is exact fp32. Returns ``model``."""
    if device is not None:
        model.to(device)
    if dtype is None:
        return model
    from speechkit.precision import DTYPE_NAMES

    if dtype not in DTYPE_NAMES:
        raise CheckpointError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16. Found {dtype}")
    if hasattr(model, "set_precision"):
        model.set_precision(DTYPE_NAMES[dtype])
    else:
        reader = model if hasattr(model, "autocast") else getattr(model, "reader", None)
        if reader is not None and hasattr(reader, "autocast"):
            reader.autocast = None if dtype == torch.float32 else dtype
    return model
