"""K-means quantisation of dense features into units.

:class:`KMeansQuantizer` assigns each frame to its nearest centroid by squared Euclidean distance, computed in
torch (float64 accumulation of ``||c||^2 - 2 x.c``; the ``||x||^2`` term does not change the argmin). It loads:

- textlesslib / fairseq ``km.bin`` files (a joblib pickle of a scikit-learn ``KMeans`` / ``MiniBatchKMeans``),
  read with a restricted unpickler (:func:`speechkit.utils.safe_pickle.load_joblib`), never executing code;
- ``.npy`` centroid arrays ``(K, dim)``;
- our own format: one ``.safetensors`` file holding ``centroids`` with metadata ``{"kind": "speechkit-kmeans"}``.

:meth:`KMeansQuantizer.fit` trains one with faiss (default) or scikit-learn's ``MiniBatchKMeans``, seeded.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from speechkit.utils.checkpoint import CheckpointError

__all__ = ["KMeansQuantizer"]

KIND = "speechkit-kmeans"


class KMeansQuantizer(nn.Module):
    """Nearest-centroid quantiser.

    Args:
        centroids: ``(K, dim)`` cluster centres.

    Example:
        >>> km = KMeansQuantizer.from_pretrained("km.bin")
        >>> units = km(feats)               # feats (frames, dim) -> (frames,) int64 in [0, K)
    """

    def __init__(self, centroids: torch.Tensor | np.ndarray):
        super().__init__()
        c = torch.as_tensor(np.asarray(centroids) if not isinstance(centroids, torch.Tensor) else centroids)
        if c.dim() != 2 or c.shape[0] < 1:
            raise ValueError(f"centroids must be (K, dim) with K >= 1. Found shape {tuple(c.shape)}")
        if not torch.isfinite(c).all():
            raise ValueError("centroids contain NaN or infinite values")
        self.register_buffer("centroids", c.float().contiguous())
        self.register_buffer("_centroids64", c.double().contiguous(), persistent=False)
        self.register_buffer("_norms64", (c.double() ** 2).sum(1), persistent=False)

    @property
    def vocab_size(self) -> int:
        """Number of clusters K."""
        return self.centroids.shape[0]

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return self.centroids.shape[1]

    @torch.inference_mode()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(..., dim)`` features -> ``(...)`` int64 unit ids."""
        if features.shape[-1] != self.dim:
            raise ValueError(f"features must have dim {self.dim} (the centroids'). Found {features.shape[-1]}")
        x = features.reshape(-1, self.dim).to(self._centroids64.device, torch.float64)
        dist = self._norms64[None, :] - 2.0 * (x @ self._centroids64.T)  # (N, K)
        return dist.argmin(dim=1).reshape(features.shape[:-1])

    # ---------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None) -> KMeansQuantizer:
        """Loads a ``km.bin`` (textlesslib / fairseq: a joblib scikit-learn k-means, read with a restricted unpickler),
        a ``.npy`` of centroids ``(K, dim)`` or our ``.safetensors`` file, moved to ``device``. The nearest-centroid
        search stays fp32 (``dtype`` is accepted for the loader shape every model kind shares and has no effect).

        Raises:
            CheckpointError: missing or unreadable file, or a pickle that is not a k-means model.
            UnsafePickleError: the pickle needs a global off the allowlist.
        """
        from speechkit.utils.checkpoint import place

        return place(cls._read(path), device, None)

    @classmethod
    def load(cls, path: str | os.PathLike) -> KMeansQuantizer:
        """Deprecated alias (kept for one release) of ``KMeansQuantizer.from_pretrained(path)``."""
        warnings.warn("KMeansQuantizer.load is deprecated; use KMeansQuantizer.from_pretrained(path)",
                      DeprecationWarning, stacklevel=2)
        return cls.from_pretrained(path)

    @classmethod
    def _read(cls, path: str | os.PathLike) -> KMeansQuantizer:
        p = Path(path)
        if not p.is_file():
            raise CheckpointError(f"{p}: no such k-means file")
        if p.suffix == ".npy":
            try:
                arr = np.load(p, allow_pickle=False)
            except Exception as e:  # noqa: BLE001 - ValueError, EOFError, a tokenizer error on a broken header
                raise CheckpointError(f"{p}: not a plain .npy array ({type(e).__name__}: {e})") from None
            return cls._checked(arr, p)
        if p.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(p), framework="pt") as f:
                    meta = f.metadata() or {}
                    if meta.get("kind") != KIND:
                        raise CheckpointError(f"{p}: not a speechkit k-means file (metadata kind={meta.get('kind')!r})")
                    return cls._checked(f.get_tensor("centroids"), p)
            except CheckpointError:
                raise
            except Exception as e:  # noqa: BLE001
                raise CheckpointError(f"{p}: unreadable safetensors file ({e})") from None
        from speechkit.utils.safe_pickle import load_joblib

        model = load_joblib(p)
        centers = getattr(model, "cluster_centers_", None)
        if centers is None:
            raise CheckpointError(f"{p}: the pickle holds {model!r}, not a fitted scikit-learn k-means model")
        return cls._checked(centers, p)

    @classmethod
    def _checked(cls, centroids, path: Path) -> KMeansQuantizer:
        try:
            return cls(centroids)
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from None

    def save(self, path: str | os.PathLike, **metadata: str | int | float) -> Path:
        """Writes our format (``.safetensors`` with ``centroids``); ``metadata`` goes in the header."""
        from safetensors.torch import save_file

        from speechkit.utils.files import atomic_path

        p = Path(path)
        if p.suffix != ".safetensors":
            raise ValueError(f"k-means files are saved as .safetensors. Found {p.name!r}")
        meta = {"kind": KIND, "k": str(self.vocab_size), "dim": str(self.dim),
                **{k: json.dumps(v) if not isinstance(v, str) else v for k, v in metadata.items()}}
        with atomic_path(p) as tmp:
            save_file({"centroids": self.centroids.cpu().contiguous()}, str(tmp), metadata=meta)
        return p

    # ---------------------------------------------------------------- training
    @classmethod
    def fit(cls, features: torch.Tensor | np.ndarray, k: int, *, seed: int = 0, backend: str = "faiss",
            max_iter: int = 100, batch_size: int = 10000) -> KMeansQuantizer:
        """Trains k-means on ``(N, dim)`` frames.

        Args:
            features: training frames (subsample large corpora first; see :meth:`fit_corpus`).
            k: number of clusters.
            seed: random seed (the result is reproducible for a given backend and thread count).
            backend: ``"faiss"`` (Lloyd, k-means++-free random init, fast) or ``"sklearn"`` (``MiniBatchKMeans``
                with k-means++ as fairseq's ``learn_kmeans.py`` does).
            max_iter: iterations.
            batch_size: mini-batch size (sklearn only).
        """
        x = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
        if x.ndim != 2 or x.shape[0] < k:
            raise ValueError(f"need a (N, dim) array with N >= k={k} frames. Found shape {x.shape}")
        if backend == "faiss":
            import faiss

            km = faiss.Kmeans(x.shape[1], k, niter=max_iter, seed=seed, verbose=False, spherical=False)
            km.train(x)
            return cls(km.centroids.copy())
        if backend == "sklearn":
            from sklearn.cluster import MiniBatchKMeans

            km = MiniBatchKMeans(n_clusters=k, init="k-means++", max_iter=max_iter, batch_size=batch_size,
                                 n_init=3, random_state=seed, compute_labels=False, reassignment_ratio=0.0)
            km.fit(x)
            return cls(km.cluster_centers_)
        raise ValueError(f"backend must be 'faiss' or 'sklearn'. Found {backend!r}")
