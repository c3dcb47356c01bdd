"""The config of ``speechkit train kmeans``: the one source of its defaults (``speechkit/conf/kmeans/config.yaml``
only names this schema and the presets; ``speechkit train kmeans --print-config`` shows the composed values)."""

from __future__ import annotations

from dataclasses import dataclass

from speechkit.utils.config import MISSING

__all__ = ["KMeansTrainConfig"]


@dataclass(kw_only=True)
class KMeansTrainConfig:
    """k-means on speech features: MFCC for HuBERT's first iteration, HuBERT layer features afterwards."""

    data: str = MISSING
    """Folder or tsv manifest of audio (required)."""
    out: str = MISSING
    """Output folder: ``kmeans.safetensors``, ``kmeans_stats.json``, ``encoder/`` (required)."""
    features: str = "mfcc"
    """``mfcc`` | ``hubert``."""
    hubert: str | None = None
    """HuBERT checkpoint (``features=hubert``): fairseq ``.pt``, HF folder or speechkit folder."""
    layer: int = 6
    """HuBERT layer (``features=hubert``)."""
    k: int = 100
    """Clusters."""
    max_frames: int = 250000
    """Frames sampled for training (uniform over the corpus, seeded)."""
    backend: str = "faiss"
    """``faiss`` | ``sklearn`` (MiniBatchKMeans, as fairseq's ``learn_kmeans.py``)."""
    max_iter: int = 100
    """k-means iterations."""
    seed: int = 0
    """Seed of the frame sampling and of k-means."""
