"""Builds, saves and loads early-exit classifiers; the only module here that reads an :class:`EarlyExitConfig`."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from speechkit.adaptive.config import EarlyExitConfig
from speechkit.adaptive.model import EarlyExitClassifier
from speechkit.units.hubert.config import HubertConfig
from speechkit.units.hubert.model import HubertModel, _config_from_dict, build_hubert
from speechkit.utils.checkpoint import CheckpointError, load_pretrained, save_pretrained

__all__ = ["build_early_exit", "save_early_exit", "load_early_exit", "EarlyExitStyleClassifier", "MODEL_KIND"]

MODEL_KIND = "speechkit-early-exit-classifier"


def build_early_exit(config: EarlyExitConfig, hubert_config: HubertConfig,
                     encoder: HubertModel | None = None) -> EarlyExitClassifier:
    """An early-exit classifier; ``encoder`` (e.g. from
    :meth:`~speechkit.units.hubert.model.HubertModel.from_pretrained`) initialises the backbone, else it is random."""
    config.validate(hubert_config.num_layers)
    enc = encoder if encoder is not None else build_hubert(hubert_config)
    return EarlyExitClassifier(enc, config.exit_layers, len(config.labels), mode=config.mode)


def save_early_exit(folder: str | os.PathLike, model: EarlyExitClassifier, config: EarlyExitConfig,
                    hubert_config: HubertConfig, extra: dict | None = None) -> Path:
    """Writes ``model.safetensors`` + ``config.json`` (``{"kind", "config", "hubert", ...extra}``)."""
    meta = {"kind": MODEL_KIND, "config": asdict(config), "hubert": asdict(hubert_config), **(extra or {})}
    return save_pretrained(folder, model.state_dict(), meta)


def load_early_exit(folder: str | os.PathLike) -> tuple[EarlyExitClassifier, EarlyExitConfig, HubertConfig]:
    """Loads a folder written by :func:`save_early_exit`, in eval mode.

    Raises:
        CheckpointError: not an early-exit classifier folder, or weights that do not fit.
    """
    state, meta = load_pretrained(folder)
    if meta.get("kind") != MODEL_KIND:
        raise CheckpointError(f"{folder}/config.json: kind must be {MODEL_KIND!r}. Found {meta.get('kind')!r}")
    config, hcfg = EarlyExitConfig(**meta["config"]), _config_from_dict(meta["hubert"])
    model = build_early_exit(config, hcfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{folder}/model.safetensors: weights do not fit the config ({e})") from None
    return model.eval(), config, hcfg


class EarlyExitStyleClassifier:
    """An early-exit classifier behind the interface of :class:`~speechkit.metrics.style.StyleClassifier`
    (``styles``, ``predict``, ``accuracy``), so ``speechkit eval resynthesis --style-classifier FOLDER`` can use it.

    Args:
        model: the classifier.
        config: its config (``labels`` are the styles).
        sample_rate: the encoder's rate.
        threshold: confidence at which inference stops.

    Example:
        >>> clf = EarlyExitStyleClassifier.from_pretrained("exp/adaptive/style_sweet", threshold=0.9)
        >>> clf.predict(wav, 48000), clf.layers_run
    """

    def __init__(self, model: EarlyExitClassifier, config: EarlyExitConfig, sample_rate: int,
                 threshold: float = 0.9):
        self.model, self.styles, self.sample_rate, self.threshold = model, list(config.labels), sample_rate, threshold
        self.layers_run: list[int] = []

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, threshold: float | None = None) -> EarlyExitStyleClassifier:
        """Loads :func:`save_early_exit`'s folder; ``threshold`` defaults to the one stored with it (else 0.9)."""
        model, config, hcfg = load_early_exit(folder)
        import json

        stored = json.loads((Path(folder) / "config.json").read_text()).get("threshold", 0.9)
        return cls(model, config, hcfg.sample_rate, stored if threshold is None else threshold)

    def predict(self, wav: torch.Tensor, sample_rate: int) -> str:
        """The style of ``(samples,)`` audio at any rate; appends the layers run to :attr:`layers_run`."""
        from speechkit.audio.io import resample

        x = resample(torch.as_tensor(wav, dtype=torch.float32).reshape(-1), sample_rate, self.sample_rate)
        result = self.model.infer(x, self.threshold)
        self.layers_run.append(result.layers_run)
        return self.styles[result.prediction]

    def accuracy(self, examples) -> float:
        """Fraction of ``(wav, sample_rate, style)`` examples classified correctly."""
        hits = [self.predict(wav, sr) == style for wav, sr, style in examples]
        if not hits:
            raise ValueError("no examples to score")
        return float(np.mean(hits))
