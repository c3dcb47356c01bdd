#!/usr/bin/env python
"""Speed-accuracy of early-exit classifiers (SWEET vs shared early exit vs multi-model) on mini-Expresso.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/early_exit.py --data data/mini_expresso \
        --hubert exp/adaptive/hubert/pre6/model --task style -o eval/early_exit/style

For each mode an :class:`~speechkit.adaptive.EarlyExitClassifier` is initialised from the ``--hubert`` encoder,
fine-tuned on the ``train`` split (random ``--crop-seconds`` windows, summed exit losses) and evaluated on
``dev`` + ``test``: every exit's accuracy, then threshold inference (the first exit whose maximum softmax
probability reaches the threshold answers) over a sweep of thresholds: accuracy, mean transformer layers run and
measured wall time per utterance (real :meth:`~speechkit.adaptive.EarlyExitClassifier.infer` calls, one
utterance at a time, front end included). Writes ``results.json``, ``table.md``, ``layers.png`` and ``time.png``
under ``-o``; ``--save-dir`` keeps the trained classifiers (usable as ``--style-classifier`` of
``speechkit eval resynthesis``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent  # benchmarks/tokenize.py would shadow the standard library's
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

THRESHOLDS = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01]


def run_mode(mode, args, hubert, hcfg, train, evaluation, labels):
    from speechkit.adaptive import (
        EarlyExitConfig,
        build_early_exit,
        exit_probabilities,
        save_early_exit,
        threshold_sweep,
        train_early_exit,
    )

    cfg = EarlyExitConfig(mode=mode, exit_layers=args.exits, labels=labels, task=args.task)
    torch.manual_seed(args.seed)
    model = build_early_exit(cfg, hcfg, hubert)
    t0 = time.perf_counter()
    y_train = [labels.index(u[args.task]) for u in train]
    train_early_exit(model, [u["wav"] for u in train], y_train, steps=args.steps, batch_size=args.batch_size,
                     lr=args.lr, crop_samples=int(args.crop_seconds * hcfg.sample_rate), seed=args.seed)
    train_s = time.perf_counter() - t0
    wavs = [u["wav"] for u in evaluation]
    y = [labels.index(u[args.task]) for u in evaluation]
    probs = exit_probabilities(model, wavs)
    exit_acc = [float((probs[:, k].argmax(-1) == torch.tensor(y)).double().mean()) for k in range(model.num_exits)]
    rows = threshold_sweep(probs, y, model.exit_costs(), THRESHOLDS)
    for row in rows:  # measured wall time of real threshold inference
        model.infer(wavs[0], row["threshold"])
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            preds = [model.infer(w, row["threshold"]).prediction for w in wavs]
            best = min(best, time.perf_counter() - t0)
        row["ms_per_utt"] = 1000 * best / len(wavs)
        assert abs(sum(p == t for p, t in zip(preds, y, strict=True)) / len(y) - row["accuracy"]) < 1e-9
    if args.save_dir:
        save_early_exit(Path(args.save_dir) / f"{args.task}_{mode}", model, cfg, hcfg, extra={"threshold": 0.9})
    return {"mode": mode, "train_s": train_s, "exit_costs": model.exit_costs(), "exit_accuracy": exit_acc,
            "sweep": rows}


def table(results, task) -> str:
    lines = [f"### {task}: accuracy of each exit (layer: accuracy)", "",
             "| mode | " + " | ".join(f"exit @{e}" for e in results["exit_layers"]) + " |",
             "|---|" + "---|" * len(results["exit_layers"])]
    for r in results["modes"]:
        lines.append(f"| {r['mode']} | " + " | ".join(f"{a:.3f}" for a in r["exit_accuracy"]) + " |")
    lines += ["", f"### {task}: threshold sweep (accuracy / mean layers run / ms per utterance)", "",
              "| threshold | " + " | ".join(r["mode"] for r in results["modes"]) + " |",
              "|---|" + "---|" * len(results["modes"])]
    for i, t in enumerate(THRESHOLDS):
        cells = [f"{r['sweep'][i]['accuracy']:.3f} / {r['sweep'][i]['avg_layers']:.2f} / "
                 f"{r['sweep'][i]['ms_per_utt']:.1f}" for r in results["modes"]]
        lines.append(f"| {t:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="Expresso-layout root (speechkit prepare mini-expresso)")
    p.add_argument("--hubert", required=True, help="encoder that initialises every backbone")
    p.add_argument("--task", choices=["style", "speaker"], default="style")
    p.add_argument("--modes", default="sweet,early_exit,multi_model")
    p.add_argument("--exits", default="1,2,4,6", help="exit layers")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--crop-seconds", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="wall time: best of this many passes over the eval set")
    p.add_argument("--save-dir", help="keep the trained classifiers here ({task}_{mode}/)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    args = p.parse_args()
    args.exits = [int(e) for e in args.exits.split(",")]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from speechkit.adaptive.data import read_utterances
    from speechkit.adaptive.plot import line_plot
    from speechkit.units.hubert import HubertModel

    hubert = HubertModel.from_pretrained(args.hubert)
    hcfg = hubert.config
    train = read_utterances(args.data, "train", sample_rate=hcfg.sample_rate)
    evaluation = read_utterances(args.data, "dev", sample_rate=hcfg.sample_rate) + read_utterances(
        args.data, "test", sample_rate=hcfg.sample_rate)
    labels = sorted({u[args.task] for u in train})
    results = {"task": args.task, "labels": labels, "exit_layers": args.exits, "train": len(train),
               "eval": len(evaluation), "args": {k: v for k, v in vars(args).items()}, "modes": []}
    for mode in args.modes.split(","):
        r = run_mode(mode, args, hubert, hcfg, train, evaluation, labels)
        print(mode, "exit accuracies", [round(a, 3) for a in r["exit_accuracy"]], f"train {r['train_s']:.0f}s",
              flush=True)
        results["modes"].append(r)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "table.md").write_text(table(results, args.task))
    line_plot({r["mode"]: [(s["avg_layers"], s["accuracy"]) for s in r["sweep"]] for r in results["modes"]},
              out / "layers.png", title=f"{args.task}: accuracy vs mean layers run", xlabel="mean layers run",
              ylabel="accuracy")
    line_plot({r["mode"]: [(s["ms_per_utt"], s["accuracy"]) for s in r["sweep"]] for r in results["modes"]},
              out / "time.png", title=f"{args.task}: accuracy vs wall time", xlabel="ms per utterance (1 thread)",
              ylabel="accuracy")
    print(table(results, args.task))


if __name__ == "__main__":
    main()
