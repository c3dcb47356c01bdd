"""The talking-face corpus manifest (``speechkit prepare talking-face``): read by VDTTS training and by the
lip-sync benchmark."""

from __future__ import annotations

import json
from pathlib import Path

from speechkit.errors import SpeechkitError

__all__ = ["read_manifest"]


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a talking-face jsonl manifest (paths made absolute against its folder)."""
    p = Path(path)
    if not p.is_file():
        raise SpeechkitError(f"{p}: no such manifest (make a corpus with `speechkit prepare talking-face`)")
    rows = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["video"], row["audio"] = str(p.parent / row["video"]), str(p.parent / row["audio"])
            _ = row["text"], row["speaker"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SpeechkitError(f"{p}:{n}: not a talking-face manifest row ({e})") from None
        rows.append(row)
    if not rows:
        raise SpeechkitError(f"{p}: empty manifest")
    return rows
