"""``speechkit analyze``: analyses of trained models. ``papa``: probing with constant attention."""

from __future__ import annotations

import argparse
from pathlib import Path

from speechkit.errors import SpeechkitError
from speechkit.utils.files import write_json

EXAMPLES = """examples:
  speechkit analyze papa --hubert exp/adaptive/hubert/pre6/model --data data/mini_expresso -o eval/papa/pre6.json
  speechkit analyze papa --hubert exp/encoder/hubert --data data/mini_expresso --fractions 0,0.25,0.5,1 \\
      --tasks style --max-frames 128 --random-init

Average attention matrices (per layer and head) are recorded over --calibration train utterances on a fixed
--max-frames grid (shorter inputs add their top-left block; longer ones are cropped for averaging, and the grid is
interpolated to their length when used); heads are replaced by their average, those closest to constant first
(mean total-variation distance). A logistic-regression probe on the frozen encoder's pooled output (mean + std over
frames) is fit on the train split and scored on dev + test; the table gives each accuracy and its relative drop
against no replacement. --random-init runs the same on a randomly initialised encoder of the same shape."""

LM_EXAMPLES = """examples:
  speechkit analyze papa-lm --ulm exp/twist/ulm_warm/model --train-units exp/twist/units/train.jsonl \\
      --eval-units exp/twist/units/valid.jsonl -o eval/papa/ulm_warm.json

Sequences (the unit LM's token ids, specials included) are cropped to --max-tokens; averages of the causal
attention are taken over the first --calibration training sequences; a next-token logistic-regression probe on the
last hidden state is fit on --train-limit training sequences and scored on the eval sequences (cross-entropy in
nats and accuracy, with their relative change against no replacement)."""



def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser("analyze", help="analyse trained models (PAPA constant-attention probe)",
                       formatter_class=HelpFormatter, description="Analyses of trained models.")
    asub = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    q = asub.add_parser("papa", help="probe a HuBERT encoder with constant attention heads",
                        formatter_class=HelpFormatter, epilog=EXAMPLES,
                        description="PAPA: how much does a probe lose when attention heads become constant?")
    q.add_argument("--hubert", type=Path, required=True, help="HuBERT checkpoint (ours, HF folder or fairseq .pt)")
    q.add_argument("--data", type=Path, required=True, help="Expresso-layout corpus root (splits/, audio_48khz/)")
    q.add_argument("--tasks", default="style,speaker", help="probe tasks, comma-separated: style, speaker")
    q.add_argument("--fractions", default="0,0.5,1", help="fractions of heads made constant; the first must be 0")
    q.add_argument("--max-frames", type=int, default=256, help="side of the average-attention grid (frames)")
    q.add_argument("--calibration", type=int, default=64, help="train utterances for the averages")
    q.add_argument("--layer", type=int, default=None, help="probe this layer's output (default: the full encoder)")
    q.add_argument("--random-init", action="store_true", help="use random weights of the same architecture")
    q.add_argument("--seed", type=int, default=0, help="seed of --random-init")
    q.add_argument("-o", "--output", type=Path, help="write the results as JSON here")
    q.set_defaults(func=_run_papa)
    r = asub.add_parser("papa-lm", help="probe a unit LM with constant attention heads",
                        formatter_class=HelpFormatter, epilog=LM_EXAMPLES,
                        description="PAPA for a unit LM: next-unit probe on frozen hidden states.")
    r.add_argument("--ulm", type=Path, required=True, help="unit-LM folder (UnitLM.save_pretrained)")
    r.add_argument("--train-units", type=Path, required=True, help="units jsonl: averages and the probe's fit")
    r.add_argument("--eval-units", type=Path, required=True, help="units jsonl: the probe's held-out sequences")
    r.add_argument("--fractions", default="0,0.5,1", help="fractions of heads made constant; the first must be 0")
    r.add_argument("--max-tokens", type=int, default=128, help="tokens kept per sequence = side of the grid")
    r.add_argument("--train-limit", type=int, default=200, help="training sequences used")
    r.add_argument("--calibration", type=int, default=64, help="training sequences averaged")
    r.add_argument("-o", "--output", type=Path, help="write the results as JSON here")
    r.set_defaults(func=_run_papa_lm)


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise SpeechkitError(f"{name} must be comma-separated numbers. Found {text!r}") from None


def papa_table(result: dict, tasks: list[str]) -> str:
    """Markdown: one row per fraction with accuracy and relative drop per task."""
    head = "| heads constant | " + " | ".join(f"{t} acc | {t} rel. drop" for t in tasks) + " |"
    lines = [head, "|---|" + "---|---|" * len(tasks)]
    for r in result["rows"]:
        cells = " | ".join(f"{r[t]:.3f} | {100 * r[f'{t}_relative_drop']:+.1f}%" for t in tasks)
        lines.append(f"| {100 * r['fraction']:.0f}% ({r['heads_replaced']}/{result['heads']}) | {cells} |")
    return "\n".join(lines)


def _run_papa(args: argparse.Namespace) -> int:
    import torch

    from speechkit.adaptive.data import TASKS, read_utterances
    from speechkit.analysis import papa_probe
    from speechkit.units.hubert import HubertModel, build_hubert

    tasks = [t.strip() for t in args.tasks.split(",")]
    if not tasks or any(t not in TASKS for t in tasks):
        raise SpeechkitError(f"--tasks must name tasks among {TASKS}. Found {args.tasks!r}")
    fractions = _floats(args.fractions, "--fractions")
    if fractions[0] != 0 or any(not 0 <= f <= 1 for f in fractions):
        raise SpeechkitError(f"--fractions must be in [0, 1] and start with 0. Found {args.fractions!r}")
    if args.max_frames < 1:
        raise SpeechkitError(f"--max-frames must be >= 1. Found {args.max_frames}")
    model = HubertModel.from_pretrained(args.hubert)
    cfg = model.config
    if args.layer is not None and not 1 <= args.layer <= cfg.num_layers:
        raise SpeechkitError(f"--layer must be in [1, {cfg.num_layers}] for {args.hubert}. Found {args.layer}")
    if args.random_init:
        torch.manual_seed(args.seed)
        model = build_hubert(cfg).eval()
    train = read_utterances(args.data, "train", sample_rate=cfg.sample_rate)
    evaluation = (read_utterances(args.data, "dev", sample_rate=cfg.sample_rate)
                  + read_utterances(args.data, "test", sample_rate=cfg.sample_rate))
    result = papa_probe(model, train, evaluation, tasks=tasks, fractions=fractions, max_len=args.max_frames,
                        calibration=args.calibration, output_layer=args.layer)
    result.update(hubert=str(args.hubert), random_init=args.random_init, data=str(args.data), train=len(train),
                  eval=len(evaluation), max_frames=args.max_frames, calibration=args.calibration, layer=args.layer)
    print(papa_table(result, tasks))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.output, result, indent=1)
        print(f"wrote {args.output}")
    return 0


def _run_papa_lm(args: argparse.Namespace) -> int:
    from speechkit.analysis.papa_lm import lm_papa_probe
    from speechkit.data.manifest import iter_units_jsonl
    from speechkit.ulm import UnitLM

    fractions = _floats(args.fractions, "--fractions")
    if fractions[0] != 0 or any(not 0 <= f <= 1 for f in fractions):
        raise SpeechkitError(f"--fractions must be in [0, 1] and start with 0. Found {args.fractions!r}")
    lm = UnitLM.from_pretrained(args.ulm)
    from itertools import islice

    train = [lm.token_ids(r.units) for r in islice(iter_units_jsonl(args.train_units), args.train_limit)]
    evaluation = [lm.token_ids(r.units) for r in iter_units_jsonl(args.eval_units)]
    result = lm_papa_probe(lm.model, train, evaluation, vocab_size=lm.model.config.vocab_size, fractions=fractions,
                           max_len=args.max_tokens, calibration=args.calibration)
    result.update(ulm=str(args.ulm), train=len(train), eval=len(evaluation), max_tokens=args.max_tokens)
    lines = ["| heads constant | probe loss (nats) | rel. increase | probe acc | rel. drop |", "|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {100 * row['fraction']:.0f}% ({row['heads_replaced']}/{result['heads']}) | "
                     f"{row['probe_loss']:.3f} | {100 * row['loss_relative_increase']:+.1f}% | {row['probe_acc']:.3f}"
                     f" | {100 * row['acc_relative_drop']:+.1f}% |")
    print("\n".join(lines))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.output, result, indent=1)
        print(f"wrote {args.output}")
    return 0
