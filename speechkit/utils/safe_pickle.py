"""Loading foreign pickles (fairseq checkpoints, joblib k-means files) without executing their code.

Two loaders, both allowlist-based:

- :func:`load_torch_checkpoint`: ``torch.load(weights_only=True)`` (torch's hardened unpickler) plus a short list
  of extra names that real fairseq checkpoints contain — ``fairseq.data.dictionary.Dictionary`` (mapped to an
  inert :class:`PickledObject`, so fairseq need not be installed), ``argparse.Namespace`` (old ``args``), numpy
  scalars and dtypes (metrics in ``extra_state``).
- :func:`load_joblib`: joblib's numpy-aware unpickler with ``find_class`` restricted to numpy array
  reconstruction, joblib's array wrapper and the scikit-learn k-means classes (mapped to :class:`PickledObject`).

Anything else (``os.system``, ``builtins.eval``, arbitrary classes) is refused with :class:`UnsafePickleError`
naming the file and the global.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from speechkit.errors import SpeechkitError

__all__ = ["UnsafePickleError", "PickledObject", "load_torch_checkpoint", "load_joblib"]


class UnsafePickleError(SpeechkitError, ValueError):
    """A pickle asks for a global that is not on speechkit's allowlist, or cannot be read."""


class PickledObject:
    """An inert stand-in for a foreign class: keeps the pickled state in ``__dict__`` and nothing else.

    ``_pickled_name`` holds the original ``module.qualname``.
    """

    _pickled_name = "?"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state = {**(state[0] or {}), **(state[1] or {})}  # (dict, slots) form
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<pickled {self._pickled_name}>"


def _stand_in(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (PickledObject,), {"_pickled_name": name})


_FAIRSEQ_DICTIONARY = _stand_in("fairseq.data.dictionary.Dictionary")


def _numpy_globals() -> list[tuple[Any, str]]:
    core = getattr(np, "_core", None) or np.core
    out = [(np.dtype, "numpy.dtype"), (core.multiarray.scalar, "numpy.core.multiarray.scalar"),
           (core.multiarray.scalar, "numpy._core.multiarray.scalar"),
           (core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
           (core.multiarray._reconstruct, "numpy._core.multiarray._reconstruct"), (np.ndarray, "numpy.ndarray")]
    for dt in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
        cls = getattr(np.dtypes, dt, None)
        if cls is not None:
            out.append((cls, f"numpy.dtypes.{dt}"))
    return out


def load_torch_checkpoint(path: str | os.PathLike, extra_globals: list[tuple[Any, str]] | None = None) -> Any:
    """``torch.load(path, weights_only=True)`` with the fairseq allowlist (see the module docstring).

    Raises:
        UnsafePickleError: the file needs a global off the allowlist (the message names it), or is unreadable.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise UnsafePickleError(f"{p}: no such checkpoint file")
    allowed = [(_FAIRSEQ_DICTIONARY, "fairseq.data.dictionary.Dictionary"), (argparse.Namespace, "argparse.Namespace"),
               *_numpy_globals(), *(extra_globals or [])]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found is None:
            raise UnsafePickleError(f"{p}: not a readable torch checkpoint ({str(e).splitlines()[-1][:200]})") from None
        raise UnsafePickleError(f"{p}: refusing to unpickle {found.group(1)} (not on speechkit's allowlist of "
                                "checkpoint contents; speechkit never executes code from a checkpoint)") from None
    except Exception as e:  # noqa: BLE001 - torch raises many kinds on a file that is not a checkpoint
        raise UnsafePickleError(f"{p}: not a readable torch checkpoint ({type(e).__name__}: {str(e)[:200]})") from None


_SKLEARN_KMEANS = {
    f"sklearn.cluster.{m}.{c}": _stand_in(f"sklearn.cluster.{m}.{c}")
    for m in ("_kmeans", "k_means_", "_k_means") for c in ("KMeans", "MiniBatchKMeans")
}


def _joblib_allowed() -> dict[str, Any]:
    import joblib.numpy_pickle as jnp

    allowed = {name: obj for obj, name in _numpy_globals()}
    allowed.update(_SKLEARN_KMEANS)
    allowed["joblib.numpy_pickle.NumpyArrayWrapper"] = jnp.NumpyArrayWrapper
    allowed["sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper"] = jnp.NumpyArrayWrapper
    allowed["builtins.slice"] = slice
    return allowed


def load_joblib(path: str | os.PathLike) -> Any:
    """Reads a joblib pickle (e.g. a textlesslib / fairseq ``km.bin``) with an allowlist instead of arbitrary code.

    Raises:
        UnsafePickleError: the file needs a global off the allowlist, or is not a joblib pickle.
    """
    import joblib.numpy_pickle as jnp

    p = Path(path)
    if not p.is_file():
        raise UnsafePickleError(f"{p}: no such file")
    allowed = _joblib_allowed()

    class RestrictedUnpickler(jnp.NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            key = f"{module}.{name}"
            if key not in allowed:
                raise UnsafePickleError(f"{p}: refusing to unpickle {key} (not on speechkit's allowlist for "
                                        "k-means files; speechkit never executes code from a pickle)")
            return allowed[key]

    try:
        with open(p, "rb") as f, jnp._validate_fileobject_and_memmap(f, str(p), None) as (fobj, _):
            if isinstance(fobj, str):  # joblib < 0.10 wrote arrays to side files
                raise UnsafePickleError(f"{p}: a pre-0.10 joblib file (arrays in side files) is not supported")
            return RestrictedUnpickler(str(p), fobj, ensure_native_byte_order=True, mmap_mode=None).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # noqa: BLE001 - any other failure means "not a joblib pickle we can read"
        raise UnsafePickleError(f"{p}: not a readable joblib pickle ({type(e).__name__}: {str(e)[:200]})") from None
