"""Unit language models: causal LMs over speech units (TWIST warm start, scoring, sampling, released formats).

Importing this package is cheap; torch and transformers load on first use of a name below.

- :class:`UnitLM` (``speechkit.ulm.model``): ``warm_start``, ``cold_start``, ``token_ids``, ``log_likelihood``,
  ``generate``, ``save_pretrained`` / ``from_pretrained`` (speechkit, TWIST and slamkit folders).
- :class:`UnitVocab`, :class:`UnitLMError` (``speechkit.ulm.config``): token layouts and the error type.
- ``speechkit.ulm.pairwise``: sSC / tSC / sWUGGY / sBLIMP pairwise benchmarks.
"""

from __future__ import annotations

import importlib

__all__ = ["UnitLM", "UnitVocab", "UnitLMError"]

_WHERE = {"UnitLM": "speechkit.ulm.model", "UnitVocab": "speechkit.ulm.config", "UnitLMError": "speechkit.ulm.config"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'speechkit.ulm' has no attribute {name!r}")
