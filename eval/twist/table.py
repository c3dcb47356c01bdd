#!/usr/bin/env python
"""The README's TWIST table from the recipe's runs: validation loss and sSC / tSC per seed, and their means with
95% intervals over seeds (Student t), for warm (TWIST) and cold starts.

    .venv/bin/python eval/twist/table.py --exp exp/twist_hubert -o eval/twist/results.md

Seed 0 is the recipe's own run (``EXP/ulm_{warm,cold}``, ``EXP/eval_{warm,cold}``); seed s > 0 lives in
``EXP/seed{s}/``. A pair's accuracy interval (binomial, 95%) is given for each single run.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np


def _run(exp: Path, seed: int, init: str) -> dict | None:
    base = exp if seed == 0 else exp / f"seed{seed}"
    log, res = base / f"ulm_{init}" / "log.jsonl", base / f"eval_{init}" / "results.json"
    if not log.is_file() or not res.is_file():
        return None
    valid = {h["step"]: h["valid_loss"] for h in map(json.loads, log.read_text().splitlines()) if "valid_loss" in h}
    results = json.loads(res.read_text())["results"]
    acc = {name: r["accuracy"] for name, r in results.items()}
    pairs = {name: r.get("pairs", r.get("num_pairs")) for name, r in results.items()}
    return {"seed": seed, "init": init, "valid": valid, "sSC": acc["sSC"], "tSC": acc["tSC"], "pairs": pairs}


def _t95(n: int) -> float:
    return {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}.get(n, 1.96)


def _mean_ci(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return f"{v.mean():.3f}"
    half = _t95(len(v)) * v.std(ddof=1) / math.sqrt(len(v))
    return f"{v.mean():.3f} ± {half:.3f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, nargs="+", default=[200, 400, 800])
    p.add_argument("-o", "--output", type=Path, default=None)
    args = p.parse_args()

    runs = [r for s in args.seeds for init in ("warm", "cold") if (r := _run(args.exp, s, init)) is not None]
    steps = " / ".join(map(str, args.steps))
    lines = [f"| init | seed | valid loss (nats/unit) after {steps} steps | sSC | tSC |", "|---|---:|---|---:|---:|"]
    for r in runs:
        n = r["pairs"]["sSC"] or 200
        half = 1.96 * math.sqrt(0.25 / n)
        lines.append(f"| {r['init']} | {r['seed']} | " + " / ".join(f"{r['valid'].get(s, math.nan):.3f}"
                                                             for s in args.steps)
                     + f" | {r['sSC']:.3f} | {r['tSC']:.3f} |")
    lines += ["", f"Single-run accuracy interval at chance (95%, {n} pairs): ± {half:.3f}.", "",
              "| init | seeds | " + " | ".join(f"valid loss, {s} steps" for s in args.steps)
              + " | sSC | tSC |", "|---|---:|" + "---:|" * (len(args.steps) + 2),
              ]
    for init in ("warm", "cold"):
        rs = [r for r in runs if r["init"] == init]
        if rs:
            lines.append(f"| {init} | {len(rs)} | "
                         + " | ".join(_mean_ci([r["valid"].get(s, math.nan) for r in rs]) for s in args.steps)
                         + f" | {_mean_ci([r['sSC'] for r in rs])} | {_mean_ci([r['tSC'] for r in rs])} |")
    paired = [(w, c) for w in runs if w["init"] == "warm"
              for c in runs if c["init"] == "cold" and c["seed"] == w["seed"]]
    if paired:
        lines.append(f"| warm − cold (paired by seed) | {len(paired)} | "
                     + " | ".join(_mean_ci([w["valid"].get(s, math.nan) - c["valid"].get(s, math.nan)
                                            for w, c in paired]) for s in args.steps)
                     + f" | {_mean_ci([w['sSC'] - c['sSC'] for w, c in paired])} | "
                     f"{_mean_ci([w['tSC'] - c['tSC'] for w, c in paired])} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
