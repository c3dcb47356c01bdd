"""``speechkit eval BENCHMARK ...``: evaluation commands.

Each benchmark registers one sub-command in :data:`COMMANDS` (name -> function adding its parser), so new ones
(``folder``, ``resynthesis``, ...) are one function each. The pairwise likelihood benchmarks (``storycloze``,
``swuggy``, ``sblimp``) share :func:`_pairwise`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PAIRWISE_EXAMPLES = """examples:
  speechkit eval storycloze data/storycloze/sSC data/storycloze/tSC --ulm runs/ulm/model --encoder exp/encoder
  speechkit eval storycloze sSC --ulm TWIST-350M --encoder ENC --reduction sum -o results/twist
  speechkit encode sSC -o ssc.jsonl --encoder ENC && speechkit eval storycloze sSC --ulm M --units ssc.jsonl
  speechkit eval sblimp sblimp_wavs/ --ulm slam_scaled --encoder ENC        # slamkit layout, '+' separator

Folders: '{id}_correct.wav' / '{id}_incorrect.wav' pairs (released StoryCloze layout), or slamkit's
positional layout (files sorted by their leading integer, taken two by two, positive first).
A pair scores 1 if the positive file is more likely, 0.5 on a tie, 0 otherwise. Writes one CSV per folder."""


def _add_pairwise(sub: argparse._SubParsersAction, name: str, sep: str, what: str) -> None:
    from speechkit.cli.main import HelpFormatter

    p = sub.add_parser(name, help=what, formatter_class=HelpFormatter, epilog=PAIRWISE_EXAMPLES,
                       description=f"{what}: pairwise log-likelihood accuracy of a unit LM.")
    p.add_argument("folders", nargs="+", type=Path, help="benchmark folders (one result each)")
    p.add_argument("--ulm", type=Path, required=True, help="unit LM folder (speechkit, TWIST or slamkit)")
    p.add_argument("--encoder", type=Path, help="speech-encoder folder (encoder.json) that made the LM's units")
    p.add_argument("--units", type=Path, nargs="+", help="units jsonl per folder from `speechkit encode FOLDER` "
                                                          "(instead of --encoder)")
    p.add_argument("--reduction", choices=["mean", "sum"], default="mean",
                   help="log-likelihood per token (mean, slamkit's default) or per sequence (sum)")
    p.add_argument("--layout", choices=["auto", "labelled", "positional"], default="auto", help="pair layout")
    p.add_argument("--sep", default=sep, help="separator after the leading id/index in file names")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="folder for per-pair CSVs and results.json (default: none written)")
    p.set_defaults(func=_pairwise, benchmark=name)


def _units_lookup(folder: Path, args: argparse.Namespace, index: int):
    """``path -> units`` for files of ``folder``: from a units jsonl, or by encoding the audio."""
    from speechkit.errors import SpeechkitError

    if args.units:
        from speechkit.data.manifest import read_units_jsonl

        if len(args.units) != len(args.folders):
            raise SpeechkitError(f"--units: {len(args.units)} file(s) for {len(args.folders)} folder(s); give one "
                                 "units jsonl per folder, in the same order")
        path = args.units[index]
        table = {r.id: r.units for r in read_units_jsonl(path)}

        def lookup(f: Path):
            key = f.relative_to(folder).with_suffix("").as_posix()
            if key not in table:
                raise SpeechkitError(f"{path}: no utterance with id {key!r} (ids are paths relative to {folder}, "
                                     "without extension, as `speechkit encode` writes them)")
            return table[key]

        return lookup
    if args.encoder is None:
        raise SpeechkitError("give --encoder (a speech-encoder folder) or --units (units jsonl per folder)")
    from speechkit.audio import io as audio_io

    encoder = args._encoder

    def encode(f: Path):
        wav, sr = audio_io.load(f)
        return encoder(wav, sample_rate=sr)["units"].tolist()

    return encode


def _pairwise(args: argparse.Namespace) -> int:
    import torch

    from speechkit.ulm import UnitLM
    from speechkit.ulm.pairwise import evaluate_pairs, find_pairs, write_pairs_csv

    lm = UnitLM.from_pretrained(args.ulm, device=args.device)
    args._encoder = None
    if args.encoder is not None and not args.units:
        from speechkit.units import SpeechEncoder

        args._encoder = SpeechEncoder.from_pretrained(args.encoder).eval().to(args.device)
        if args._encoder.vocab_size != lm.num_units:
            from speechkit.errors import SpeechkitError

            raise SpeechkitError(f"--encoder {args.encoder} makes {args._encoder.vocab_size} units but --ulm "
                                 f"{args.ulm} models {lm.num_units}")
    results = {}
    for i, folder in enumerate(args.folders):
        pairs = find_pairs(folder, sep=args.sep, layout=args.layout)
        with torch.inference_mode():
            result = evaluate_pairs(lm, pairs, _units_lookup(folder, args, i), reduction=args.reduction,
                                    batch_size=args.batch_size)
        name = folder.resolve().name
        results[name] = {**result.summary(), "folder": str(folder), "reduction": args.reduction}
        print(f"{args.benchmark} {name}: accuracy {result.accuracy:.4f} over {len(pairs)} pairs "
              f"({results[name]['ties']} ties, {args.reduction} log-likelihood)")
        if args.output is not None:
            write_pairs_csv(args.output / f"{name}.csv", result, root=folder)
    if args.output is not None:
        from speechkit.utils.files import atomic_open

        with atomic_open(args.output / "results.json") as f:
            json.dump({"benchmark": args.benchmark, "ulm": str(args.ulm), "results": results}, f, indent=2)
        print(f"wrote {args.output / 'results.json'} and one CSV per folder")
    return 0


COMMANDS = {
    "storycloze": lambda sub: _add_pairwise(sub, "storycloze", "_", "spoken StoryCloze (sSC / tSC)"),
    "swuggy": lambda sub: _add_pairwise(sub, "swuggy", "_", "sWUGGY (word vs non-word)"),
    "sblimp": lambda sub: _add_pairwise(sub, "sblimp", "+", "sBLIMP (grammatical vs ungrammatical)"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.main import HelpFormatter

    p = sub.add_parser("eval", help="evaluate models on benchmarks", formatter_class=HelpFormatter,
                       description="Evaluate models. Benchmarks: " + ", ".join(COMMANDS),
                       epilog="examples:\n  speechkit eval storycloze data/storycloze/sSC --ulm runs/ulm/model "
                              "--encoder exp/encoder\n\nRun `speechkit eval BENCHMARK --help` for its options.")
    benchmarks = p.add_subparsers(dest="benchmark_command", metavar="BENCHMARK", required=True)
    for add in COMMANDS.values():
        add(benchmarks)
