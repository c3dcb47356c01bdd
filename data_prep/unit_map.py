#!/usr/bin/env python
"""Which old unit each new unit corresponds to: the map that lets a unit-to-mel decoder trained on an old
tokenizer's units start a decoder of a new tokenizer (``speechkit train unit_mel train.init=OLD_DECODER
train.init_unit_map=MAP``).

    .venv/bin/python data_prep/unit_map.py --old checkpoints/default/encoder --new exp/mix/k200/encoder \
        --manifest exp/mix/hubert/train.tsv --files 200 -o exp/mix/k200/unit_map.json

Both encoders tokenise the same files frame by frame (no deduplication); each new unit maps to the old unit it
co-occurs with most often (a new unit never seen takes the old unit most frequent overall). Prints the share of
frames on which the mapped old unit equals the old encoder's unit (1.0: the tokenizers agree up to renaming).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def co_occurrence(pairs: list[tuple[np.ndarray, np.ndarray]], k_new: int, k_old: int) -> np.ndarray:
    """``(k_new, k_old)`` counts of (new unit, old unit) on the same frames (sequences cut to the shorter)."""
    counts = np.zeros((k_new, k_old), dtype=np.int64)
    for new, old in pairs:
        n = min(len(new), len(old))
        np.add.at(counts, (new[:n], old[:n]), 1)
    return counts


def unit_map(counts: np.ndarray) -> tuple[list[int], float]:
    """For each new unit the old unit it meets most (unseen new units: the most frequent old unit), and the
    share of frames the map explains."""
    fallback = int(counts.sum(0).argmax())
    mapping = [int(row.argmax()) if row.sum() else fallback for row in counts]
    agree = sum(int(counts[i, j]) for i, j in enumerate(mapping)) / max(int(counts.sum()), 1)
    return mapping, agree


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", type=Path, required=True, help="speech-encoder folder the old decoder was trained on")
    p.add_argument("--new", type=Path, required=True, help="speech-encoder folder of the new units")
    p.add_argument("--manifest", type=Path, required=True, help="fairseq tsv of audio both encoders read")
    p.add_argument("--files", type=int, default=200, help="the first N files of the manifest")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)

    import torch

    from speechkit.audio import io
    from speechkit.data.manifest import read_tsv
    from speechkit.units import SpeechEncoder

    old = SpeechEncoder.from_pretrained(args.old, deduplicate=False)
    new = SpeechEncoder.from_pretrained(args.new, deduplicate=False)
    root, entries = read_tsv(args.manifest)
    pairs = []
    with torch.inference_mode():
        for e in entries[: args.files]:
            wav, sr = io.load(root / e.path, sample_rate=16000)
            pairs.append((new(wav, sample_rate=sr)["units"].numpy(), old(wav, sample_rate=sr)["units"].numpy()))
    mapping, agree = unit_map(co_occurrence(pairs, new.vocab_size, old.vocab_size))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(mapping))
    print(f"{args.output}: {len(mapping)} new units -> {len(set(mapping))} distinct old units; the map explains "
          f"{agree:.3f} of {sum(min(len(a), len(b)) for a, b in pairs)} frames", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
