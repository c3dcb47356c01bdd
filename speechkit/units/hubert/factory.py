"""Builds HuBERT models from configs and loads any supported checkpoint: ours, fairseq ``.pt``, HF folders."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from speechkit.units.hubert.config import HubertConfig
from speechkit.units.hubert.model import HubertModel
from speechkit.utils.checkpoint import CheckpointError, load_pretrained, save_pretrained
from speechkit.utils.files import read_json

__all__ = ["build_hubert", "load_hubert", "save_hubert", "MODEL_KIND"]

MODEL_KIND = "speechkit-hubert"


def build_hubert(config: HubertConfig, *, dropout: float = 0.0, attention_dropout: float = 0.0) -> HubertModel:
    """A randomly initialised :class:`HubertModel` for ``config``."""
    config.validate()
    return HubertModel(
        conv_layers=[tuple(c) for c in config.conv_layers], extractor_mode=config.extractor_mode,
        conv_bias=config.conv_bias, embed_dim=config.embed_dim, ffn_dim=config.ffn_dim,
        num_layers=config.num_layers, num_heads=config.num_heads, layer_norm_first=config.layer_norm_first,
        conv_pos=config.conv_pos, conv_pos_groups=config.conv_pos_groups,
        conv_pos_batch_norm=config.conv_pos_batch_norm, activation=config.activation, dropout=dropout,
        attention_dropout=attention_dropout, eps=config.layer_norm_eps,
    )


def save_hubert(folder: str | os.PathLike, model: HubertModel, config: HubertConfig, extra: dict | None = None) -> Path:
    """Writes our format: ``model.safetensors`` + ``config.json`` (``{"kind", "config", ...extra}``)."""
    meta = {"kind": MODEL_KIND, "config": asdict(config), **(extra or {})}
    return save_pretrained(folder, model.state_dict(), meta)


def _config_from_dict(d: dict) -> HubertConfig:
    d = dict(d)
    d["conv_layers"] = [tuple(c) for c in d["conv_layers"]]
    return HubertConfig(**d)


def load_hubert(path: str | os.PathLike) -> tuple[HubertModel, HubertConfig]:
    """Loads a HuBERT encoder in eval mode from any supported checkpoint.

    Args:
        path: a speechkit model folder (``config.json`` with ``"kind": "speechkit-hubert"``), a transformers
            HuBERT/wav2vec2 folder, or a fairseq ``.pt`` file.

    Returns:
        ``(model, config)``.

    Raises:
        CheckpointError: the path is missing, of an unknown kind, or its weights do not fit the architecture.
    """
    from speechkit.units.hubert import interop

    p = Path(path)
    if p.is_dir():
        cfg_file = p / "config.json"
        if not cfg_file.is_file():
            raise CheckpointError(f"{p}: a model folder needs config.json")
        meta = read_json(cfg_file, CheckpointError)
        if meta.get("kind") == MODEL_KIND:
            state, meta = load_pretrained(p)
            config = _config_from_dict(meta["config"])
        else:
            config, state = interop.load_hf_hubert(p)
    elif p.is_file():
        config, state = interop.load_fairseq_hubert(p)
    else:
        raise CheckpointError(f"{p}: no such checkpoint file or folder")
    model = build_hubert(config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and k != "mask_emb"]  # mask_emb: pretraining only
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{p}: weights do not fit the architecture in its config "
                              f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{p}: {name} has shape {tuple(tensor.shape)}, the config implies "
                                  f"{tuple(expected[name].shape)}")
    model.load_state_dict(state, strict=False)
    return model.eval(), config
