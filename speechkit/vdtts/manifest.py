"""The talking-face corpus manifest (``speechkit prepare talking-face``): read by VDTTS training and by the
lip-sync benchmark."""

from __future__ import annotations

import json
from pathlib import Path

from speechkit.errors import SpeechkitError

__all__ = ["read_manifest", "alignment_targets"]


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


def alignment_targets(timings: list, text_phonemes: list[str], num_frames: int, hop_length: int,
                      sample_rate: int):
    """The class of every mel frame from a manifest's phoneme timings: ``(num_frames,)`` int64 numpy, 0 = silence,
    ``n`` = the ``n``-th phoneme (1-based) of ``text_phonemes``.

    The timed phonemes (``[symbol, start_s, end_s]``, ``_`` = pause) were made from the text with commas at the
    pauses, which can change a phoneme or two against :func:`~speechkit.vdtts.text.phonemize` of the plain text:
    the two sequences are matched (difflib), replaced runs map in proportion, a timed phoneme the text lacks
    joins its text neighbour, and a text phoneme the timings lack gets no frames. Frame ``f`` is centred at
    ``(f + 0.5) * hop_length / sample_rate`` seconds.
    """
    import difflib

    import numpy as np

    spoken = [(str(sym), float(a), float(b)) for sym, a, b in timings if sym != "_"]
    target = [None] * len(spoken)
    ops = difflib.SequenceMatcher(a=[s for s, _, _ in spoken], b=list(text_phonemes), autojunk=False)
    for op, i1, i2, j1, j2 in ops.get_opcodes():
        for i in range(i1, i2):
            if op in ("equal", "replace"):
                target[i] = j1 + (i - i1) * (j2 - j1) // (i2 - i1)
            elif op == "delete":
                target[i] = min(max(j1 - 1, 0), len(text_phonemes) - 1)
    out = np.zeros(num_frames, dtype=np.int64)
    rate = sample_rate / hop_length
    for (_, a, b), j in zip(spoken, target, strict=True):
        if j is None or not text_phonemes:
            continue
        lo, hi = max(0, int(np.ceil(a * rate - 0.5))), min(num_frames, int(np.ceil(b * rate - 0.5)))
        out[lo:hi] = j + 1
    return out
