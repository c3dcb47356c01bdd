"""k-means on corpus features (``speechkit train kmeans``): MFCC or HuBERT layer features -> centroids."""

from __future__ import annotations

import logging
from pathlib import Path

from speechkit.errors import SpeechkitError
from speechkit.units.train_config import KMeansTrainConfig
from speechkit.utils.config import from_values
from speechkit.utils.files import write_json

log = logging.getLogger(__name__)


def run(cfg) -> int:
    """Samples up to ``max_frames`` frames, fits k-means, writes ``kmeans.safetensors`` (+ ``encoder/``);
    ``cfg``: the composed Hydra config (or plain values) of :class:`KMeansTrainConfig`."""
    import torch

    from speechkit.units import KMeansQuantizer, SpeechEncoder
    from speechkit.units.features import build_reader, sample_frames

    cfg = from_values(KMeansTrainConfig, cfg, error=SpeechkitError, what="train kmeans")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    reader = build_reader(cfg.features, cfg.hubert, cfg.layer)
    frames = sample_frames(reader, cfg.data, cfg.max_frames, seed=cfg.seed)
    log.info("fitting k=%d on %d frames of %s features (dim %d)", cfg.k, len(frames), cfg.features, frames.shape[1])
    km = KMeansQuantizer.fit(frames, cfg.k, seed=cfg.seed, backend=cfg.backend, max_iter=cfg.max_iter)
    km.save(out / "kmeans.safetensors", features=cfg.features, layer=cfg.layer)
    counts = km(torch.from_numpy(frames)).bincount(minlength=cfg.k)
    p = counts[counts > 0] / counts.sum()
    stats = {"frames": len(frames), "k": cfg.k, "used_clusters": int((counts > 0).sum()),
             "entropy_bits": float(-(p * p.log2()).sum())}
    write_json(out / "kmeans_stats.json", stats, indent=2)
    SpeechEncoder(reader, km).save_pretrained(out / "encoder")
    log.info("wrote %s (speechkit encode --encoder %s)", out / "encoder", out / "encoder")
    log.info("wrote %s: %s", out / "kmeans.safetensors", stats)
    return 0
