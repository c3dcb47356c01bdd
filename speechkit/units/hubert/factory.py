"""Builds HuBERT models from configs and loads any supported checkpoint: ours, fairseq ``.pt``, HF folders."""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict
from pathlib import Path

from speechkit.units.hubert.config import HubertConfig
from speechkit.units.hubert.model import MODEL_KIND, HubertModel, build_hubert
from speechkit.utils.checkpoint import save_pretrained

__all__ = ["build_hubert", "load_hubert", "save_hubert", "MODEL_KIND"]



def save_hubert(folder: str | os.PathLike, model: HubertModel, config: HubertConfig, extra: dict | None = None) -> Path:
    """Writes our format: ``model.safetensors`` + ``config.json`` (``{"kind", "config", ...extra}``)."""
    meta = {"kind": MODEL_KIND, "config": asdict(config), **(extra or {})}
    return save_pretrained(folder, model.state_dict(), meta)


def load_hubert(path: str | os.PathLike) -> tuple[HubertModel, HubertConfig]:
    """Deprecated alias (kept for one release) of :meth:`HubertModel.from_pretrained
    <speechkit.units.hubert.model.HubertModel.from_pretrained>`, whose model carries its config as ``.config``.

    Returns:
        ``(model, config)``.
    """
    warnings.warn("load_hubert is deprecated; use HubertModel.from_pretrained(path) (the config is model.config)",
                  DeprecationWarning, stacklevel=2)
    model = HubertModel.from_pretrained(path)
    return model, model.config
