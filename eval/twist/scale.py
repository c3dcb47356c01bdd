#!/usr/bin/env python
"""Unit LMs under one compute budget (``recipes/ulm_scale``): the measured throughput of each size, the steps a
budget of CPU minutes buys, and the learning curves (validation loss, sSC and tSC against training tokens).

    .venv/bin/python eval/twist/scale.py budget --exp exp/ulm_scale --runs s m l --minutes 40   # budget.json
    .venv/bin/python eval/twist/scale.py steps --exp exp/ulm_scale --run m --points 8     # prints "STEPS KEEP_EVERY"
    .venv/bin/python eval/twist/scale.py table --exp exp/ulm_scale --runs s m l -o exp/ulm_scale/table.md

Layout: ``EXP/budget/RUN/`` (a short run of the same command: its ``log.jsonl`` tokens/s, its ``model/``),
``EXP/runs/RUN/`` (the training run: ``log.jsonl``, ``model_NNNNNN/`` kept along the way, ``model/``) and
``EXP/eval/RUN/{model_NNNNNN,model}/results.json`` (``speechkit eval storycloze``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def _fail(message: str) -> int:
    print(f"eval/twist/scale.py: {message}", file=sys.stderr)
    return 1


def _log(run_dir: Path) -> list[dict]:
    path = run_dir / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (did the run start?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tokens_per_step(run_dir: Path) -> int:
    """Training tokens of one optimiser step: batch size x block size, from the run's resolved config."""
    conf = json.loads((run_dir / "config.resolved.json").read_text())
    return int(conf["optim"]["batch_size"]) * int(conf["train"]["block_size"])


def parameters(model_dir: Path) -> tuple[int, int]:
    """(all parameters, those outside the token embedding) of an exported unit LM."""
    from safetensors import safe_open

    total = embedding = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            for key in f.keys():  # noqa: SIM118  (safe_open has no __iter__)
                n = math.prod(f.get_slice(key).get_shape())
                total += n
                embedding += n if "embed_tokens" in key else 0
    return total, total - embedding


def budget(exp: Path, runs: list[str], minutes: float) -> dict:
    """Each run's throughput in its short measurement and the steps ``minutes`` of it buys (at least 1)."""
    out = {"minutes": minutes, "runs": {}}
    for run in runs:
        d = exp / "budget" / run
        speeds = [h["tokens_per_s"] for h in _log(d) if "tokens_per_s" in h]
        if not speeds:
            raise ValueError(f"{d}/log.jsonl: no tokens_per_s line (set train.log_every <= the budget steps)")
        per_step = tokens_per_step(d)
        total, non_embedding = parameters(d / "model")
        steps = max(1, int(minutes * 60 * speeds[-1] / per_step))
        out["runs"][run] = {"tokens_per_s": speeds[-1], "tokens_per_cpu_hour": speeds[-1] * 3600,
                            "tokens_per_step": per_step, "steps": steps, "tokens": steps * per_step,
                            "parameters": total, "non_embedding_parameters": non_embedding}
    return out


def binomial_ci(p: float, n: int) -> float:
    """Half-width of the 95% normal interval of an accuracy over ``n`` pairs."""
    return 1.96 * math.sqrt(max(p * (1 - p), 0.0) / n) if n else math.nan


def curve(exp: Path, run: str) -> list[dict]:
    """One row per validated step: tokens, validation loss, and sSC / tSC where that step's model was kept."""
    d = exp / "runs" / run
    per_step = tokens_per_step(d)
    rows = []
    valid = [(h["step"], h["valid_loss"]) for h in _log(d) if "valid_loss" in h]
    last = valid[-1][0] if valid else None
    for step, loss in valid:
        row = {"step": step, "tokens": step * per_step, "valid_loss": loss}
        for name in (f"model_{step:06d}",) + (("model",) if step == last else ()):
            res = exp / "eval" / run / name / "results.json"
            if res.is_file():
                for bench, r in json.loads(res.read_text())["results"].items():
                    row[bench] = r["accuracy"]
                    row[f"{bench}_pairs"] = r["pairs"]
                break
        rows.append(row)
    return rows


def table(exp: Path, runs: list[str]) -> tuple[str, dict]:
    b = json.loads((exp / "budget.json").read_text())
    lines = [f"Budget: {b['minutes']:g} minutes of one CPU core per run.", "",
             "| run | parameters (non-embedding) | tokens/s | tokens per CPU-hour | steps | training tokens |",
             "|---|---:|---:|---:|---:|---:|"]
    for run in runs:
        r = b["runs"][run]
        lines.append(f"| {run} | {r['parameters'] / 1e6:.2f} M ({r['non_embedding_parameters'] / 1e6:.2f} M) | "
                     f"{r['tokens_per_s']:,.0f} | {r['tokens_per_cpu_hour'] / 1e6:.1f} M | {r['steps']:,} | "
                     f"{r['tokens'] / 1e6:.2f} M |")
    lines += ["", "| run | step | training tokens | valid loss (nats/unit) | sSC | tSC |",
              "|---|---:|---:|---:|---:|---:|"]
    curves = {}
    for run in runs:
        curves[run] = curve(exp, run)
        best = min((row["valid_loss"] for row in curves[run]), default=math.nan)
        for row in curves[run]:
            acc = [f"{row[k]:.3f} ± {binomial_ci(row[k], row[f'{k}_pairs']):.3f}" if k in row else ""
                   for k in ("sSC", "tSC")]
            loss = f"**{row['valid_loss']:.3f}**" if row["valid_loss"] == best else f"{row['valid_loss']:.3f}"
            lines.append(f"| {run} | {row['step']:,} | {row['tokens'] / 1e6:.2f} M | {loss} | {acc[0]} | {acc[1]} |")
    return "\n".join(lines) + "\n", {"budget": b, "curves": curves}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pb = sub.add_parser("budget", help="throughput of the short runs -> EXP/budget.json")
    pb.add_argument("--exp", type=Path, required=True)
    pb.add_argument("--runs", nargs="+", required=True)
    pb.add_argument("--minutes", type=float, required=True, help="CPU minutes each run may train")
    ps = sub.add_parser("steps", help="print the steps EXP/budget.json gives RUN and the spacing of --points")
    ps.add_argument("--exp", type=Path, required=True)
    ps.add_argument("--run", required=True)
    ps.add_argument("--points", type=int, default=8, help="evenly spaced steps to validate and keep the model at")
    pt = sub.add_parser("table", help="the budget and the learning curves (markdown + json)")
    pt.add_argument("--exp", type=Path, required=True)
    pt.add_argument("--runs", nargs="+", required=True)
    pt.add_argument("-o", "--output", type=Path, required=True, help="markdown table (and .json beside it)")
    args = p.parse_args(argv)
    try:
        if args.command == "budget":
            if args.minutes <= 0:
                return _fail(f"--minutes must be > 0. Found {args.minutes}")
            out = budget(args.exp, args.runs, args.minutes)
            (args.exp / "budget.json").write_text(json.dumps(out, indent=2) + "\n")
            for run, r in out["runs"].items():
                print(f"{run}: {r['parameters'] / 1e6:.2f} M parameters, {r['tokens_per_s']:,.0f} tokens/s, "
                      f"{r['steps']} steps ({r['tokens'] / 1e6:.2f} M tokens) in {args.minutes:g} min")
        elif args.command == "steps":
            runs = json.loads((args.exp / "budget.json").read_text())["runs"]
            if args.run not in runs:
                return _fail(f"{args.exp}/budget.json: no run {args.run!r} (it has {sorted(runs)}); rerun the budget "
                             "stage with the same --sizes")
            steps = runs[args.run]["steps"]
            print(steps, max(1, steps // max(1, args.points)))
        else:
            text, data = table(args.exp, args.runs)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text)
            args.output.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
            print(text, end="")
    except (FileNotFoundError, ValueError, KeyError) as e:
        return _fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
