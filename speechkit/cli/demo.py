"""``speechkit demo``: the default bundle end to end (resynthesis, conversion, continuation, evaluation)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  speechkit demo                                   # checkpoints/default -> demo_out/
  speechkit demo --model runs/bundle -o /tmp/demo --jobs 2

Resynthesises the bundle's samples (same voice, then the first into every speaker and style), continues the first
with the unit LM, scores the resynthesis against the originals (pocketsphinx WER, F0, speaker similarity) and
writes the HTML report. `make demo` runs it after the set-up."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter
    from speechkit.hub import DEFAULT_MODEL

    p = sub.add_parser("demo", help="run the default bundle end to end on its samples", formatter_class=HelpFormatter,
                       epilog=EXAMPLES, description="The default bundle end to end on the samples it ships.")
    p.add_argument("--model", type=Path, default=Path(DEFAULT_MODEL),
                   help="bundle folder: encoder/, vocoder/, ulm/, samples/")
    p.add_argument("-o", "--output", type=Path, default=Path("demo_out"), help="output folder")
    p.add_argument("--seconds", type=float, default=3.0, help="speech added by the continuation")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the continuation")
    p.add_argument("--jobs", type=int, default=1, help="scoring processes")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from speechkit.demo import format_summary, run_demo

    summary = run_demo(args.model, args.output, continuation_seconds=args.seconds, seed=args.seed, jobs=args.jobs)
    print(format_summary(summary))
    return 0
