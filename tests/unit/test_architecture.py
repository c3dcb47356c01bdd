"""Layering the code relies on: inference never depends on training code."""

from __future__ import annotations

import ast
from pathlib import Path

import speechkit

PKG = Path(speechkit.__file__).parent


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_inference_modules_do_not_import_training_code():
    """Loading a model, resynthesising or scoring must not pull in trainers (the released-model folder format and
    CheckpointError live in speechkit.utils.checkpoint)."""
    offenders = []
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG).as_posix()
        if rel.startswith(("train/", "cli/")):
            continue
        bad = sorted(m for m in _imports(f) if m == "speechkit.train" or m.startswith("speechkit.train."))
        if bad:
            offenders.append(f"{rel}: {', '.join(bad)}")
    assert not offenders, "inference imports training code:\n" + "\n".join(offenders)
