"""``speechkit sequences``: units jsonl -> unit-LM training sequences (deduplicated, train / valid split)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  speechkit sequences data/units.jsonl -o data/ulm                   # data/ulm/train.jsonl + valid.jsonl
  speechkit sequences units.0.jsonl units.1.jsonl -o data/ulm --valid-fraction 0.02 --min-units 10
  speechkit sequences units.jsonl -o data/ulm --include data/mini_expresso/splits/train.txt   # one split only

Consecutive repeated units are merged (their durations added); utterances shorter than --min-units are dropped;
an utterance goes to valid.jsonl when the hash of its id falls under --valid-fraction (stable as data grows)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser("sequences", help="build unit-LM training sequences from units jsonl",
                       formatter_class=HelpFormatter, epilog=EXAMPLES,
                       description="Build train.jsonl / valid.jsonl for `speechkit train ulm` from units jsonl files.")
    p.add_argument("inputs", nargs="+", type=Path, help="units jsonl files (`speechkit encode` output, any shards)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for train.jsonl and valid.jsonl")
    p.add_argument("--valid-fraction", type=float, default=0.05, help="share of utterances for validation")
    p.add_argument("--min-units", type=int, default=2, help="drop utterances with fewer units (after dedup)")
    p.add_argument("--no-dedup", action="store_true", help="keep consecutive repeated units")
    p.add_argument("--include", type=Path, default=None,
                   help="keep only utterances whose audio file stem is listed (first column; e.g. an Expresso "
                        "splits/train.txt)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from speechkit.data.manifest import iter_units_jsonl
    from speechkit.ulm.data import split_records

    records = (r for path in args.inputs for r in iter_units_jsonl(path))
    if args.include is not None:
        from speechkit.errors import SpeechkitError

        if not args.include.is_file():
            raise SpeechkitError(f"{args.include}: no such file (--include)")
        keep = {line.split("\t")[0].split()[0] for line in args.include.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
        records = (r for r in records if Path(r.audio or r.id).stem in keep)
    counts = split_records(records, args.output, valid_fraction=args.valid_fraction,
                           deduplicate=not args.no_dedup, min_units=args.min_units)
    print(f"wrote {args.output / 'train.jsonl'} ({counts['train']} utterances) and {args.output / 'valid.jsonl'} "
          f"({counts['valid']}); dropped {counts['dropped']} shorter than {args.min_units} units")
    return 0
