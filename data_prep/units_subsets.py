#!/usr/bin/env python
"""Nested random subsets of a unit-LM training set: the speech-data sizes of a data-scaling study.

    .venv/bin/python data_prep/units_subsets.py --train units/train.jsonl --valid units/valid.jsonl \\
        --fractions 10 30 100 -o exp/twist_data/data         # -> data/p10/, data/p30/, data/p100/

One seeded permutation of the training utterances; fraction f keeps its first round(n f / 100), so the smaller sets
are inside the larger ones (the sizes differ by data alone). Every subset gets the same ``valid.jsonl``. Prints the
utterances and units of each (units counted as they are stored: deduplicate before, with ``speechkit sequences``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, required=True, help="units jsonl (speechkit sequences output)")
    p.add_argument("--valid", type=Path, required=True)
    p.add_argument("--fractions", type=float, nargs="+", required=True, help="percentages, e.g. 10 30 100")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    lines = [line for line in args.train.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"{args.train}: no utterances")
    if not args.valid.is_file():
        raise SystemExit(f"{args.valid}: no such file")
    bad = [f for f in args.fractions if not 0 < f <= 100]
    if bad:
        raise SystemExit(f"--fractions: each must be in (0, 100]. Found {bad[0]}")
    order = list(range(len(lines)))
    random.Random(args.seed).shuffle(order)
    for f in args.fractions:
        keep = sorted(order[: max(1, round(len(lines) * f / 100))])
        d = args.output / f"p{f:g}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "train.jsonl").write_text("".join(lines[i] + "\n" for i in keep), encoding="utf-8")
        shutil.copyfile(args.valid, d / "valid.jsonl")
        units = sum(len(json.loads(lines[i])["units"]) for i in keep)
        print(f"{d}: {len(keep)} utterances, {units} units")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
