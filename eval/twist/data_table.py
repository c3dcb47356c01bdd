#!/usr/bin/env python
"""TWIST warm vs cold start at several speech-data sizes (``recipes/twist_data``): per size, the validation loss at
the final step and at its best, and sSC / tSC of the best-validation model, for each seed; then the paired
differences warm - cold with 95% intervals over seeds (Student t).

    .venv/bin/python eval/twist/data_table.py --exp exp/twist_data --fractions 10 30 100 --seeds 0 1 2 \\
        -o exp/twist_data/table.md                      # also writes table.json beside it

Runs live in ``EXP/p<f>/seed<s>/ulm_<init>/`` (its ``log.jsonl``) and ``EXP/p<f>/seed<s>/eval_<init>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # Student t, two-sided 95%, by degrees of freedom


def run_values(base: Path, init: str) -> dict | None:
    """Final and best validation loss, train tokens per epoch unknown; sSC / tSC; ``None`` when the run is missing."""
    log, res = base / f"ulm_{init}" / "log.jsonl", base / f"eval_{init}" / "results.json"
    if not log.is_file() or not res.is_file():
        return None
    valid = [(h["step"], h["valid_loss"]) for h in map(json.loads, log.read_text().splitlines()) if "valid_loss" in h]
    if not valid:
        return None
    acc = {name: r["accuracy"] for name, r in json.loads(res.read_text())["results"].items()}
    return {"final_valid": valid[-1][1], "best_valid": min(v for _, v in valid), "sSC": acc.get("sSC", math.nan),
            "tSC": acc.get("tSC", math.nan), "steps": valid[-1][0]}


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval (nan with fewer than 2 values)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()) if len(v) else math.nan, math.nan
    return float(v.mean()), float(T95.get(len(v) - 1, 1.96) * v.std(ddof=1) / math.sqrt(len(v)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", type=Path, required=True)
    p.add_argument("--fractions", type=float, nargs="+", required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("-o", "--output", type=Path, required=True, help="markdown table (and .json beside it)")
    args = p.parse_args()
    keys = ("final_valid", "best_valid", "sSC", "tSC")
    lines = ["| speech data | init | seeds | valid loss, final step | valid loss, best | sSC | tSC |",
             "|---|---|---:|---:|---:|---:|---:|"]
    out = {}
    for f in args.fractions:
        name = f"p{f:g}"
        runs = {init: {s: run_values(args.exp / name / f"seed{s}", init) for s in args.seeds}
                for init in ("warm", "cold")}
        paired = [s for s in args.seeds if runs["warm"][s] and runs["cold"][s]]
        rows = {}
        for init in ("warm", "cold"):
            done = [runs[init][s] for s in args.seeds if runs[init][s]]
            rows[init] = {k: mean_ci([r[k] for r in done]) for k in keys}
            rows[init]["seeds"] = len(done)
        rows["warm - cold"] = {k: mean_ci([runs["warm"][s][k] - runs["cold"][s][k] for s in paired]) for k in keys}
        rows["warm - cold"]["seeds"] = len(paired)
        units = None
        train = args.exp / "data" / name / "train.jsonl"
        if train.is_file():
            units = sum(len(json.loads(x)["units"]) for x in train.read_text().splitlines() if x.strip())
        out[name] = {"fraction": f, "train_units": units, "rows": rows,
                     "runs": {init: {str(s): r for s, r in v.items()} for init, v in runs.items()}}
        label = f"{f:g}%" + (f" ({units:,} units)" if units else "")
        for init, r in rows.items():
            cells = [f"{r[k][0]:.3f}" + ("" if math.isnan(r[k][1]) else f" ± {r[k][1]:.3f}") for k in keys]
            lines.append(f"| {label} | {init} | {r['seeds']} | " + " | ".join(cells) + " |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    args.output.with_suffix(".json").write_text(json.dumps(out, indent=1))
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
