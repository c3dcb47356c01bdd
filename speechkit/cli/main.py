"""Entry point of the ``speechkit`` command.

Subcommands register themselves from their own modules (``add_parser(subparsers)``); this module only builds
the parser, sets up logging and turns :class:`~speechkit.errors.SpeechkitError` into a one-line message.
"""

from __future__ import annotations

import argparse
import logging
import sys

from speechkit import __version__
from speechkit.cli.formatting import HelpFormatter
from speechkit.errors import SpeechkitError

EPILOG = """examples:
  speechkit prepare mini-expresso data/mini_expresso --minutes 10 --jobs 2
  speechkit prepare manifest data/mini_expresso/audio_48khz/read -o data/read.tsv
  speechkit encode data/read.tsv -o data/units.jsonl --hubert hubert_base_ls960.pt --layer 6 --kmeans km.bin
  speechkit resynth in.wav -o out.wav --model checkpoints/default --speaker us2 --style whisper
  speechkit sequences data/units.jsonl -o data/ulm
  speechkit train ulm data.train=data/ulm/train.jsonl data.num_units=100 model.text_lm=TEXT_LM out=runs/ulm
  speechkit eval storycloze data/storycloze/sSC data/storycloze/tSC --ulm runs/ulm/model --encoder exp/encoder
  speechkit eval folder --hyp out/ --ref ref/ --transcripts texts.tsv --metrics wer,cer,f0,speaker -o report
  speechkit eval resynthesis --data data/mini_expresso --encoder exp/encoder --vocoder exp/vocoder -o report
  speechkit continue prompt.wav -o out.wav --encoder exp/encoder --ulm runs/ulm/model --vocoder runs/vocoder/model
  speechkit analyze papa --hubert exp/encoder/hubert --data data/mini_expresso -o eval/papa/encoder.json
  speechkit vdtts face.mp4 --text "Bring the red box." -o dubbed.mp4 --speaker us2

Run `speechkit COMMAND --help` for the options and examples of each command."""


def build_parser() -> argparse.ArgumentParser:
    from speechkit.cli import analyze, continue_, demo, encode, models, prepare, resynth, sequences, train, vdtts
    from speechkit.cli import eval as eval_

    parser = argparse.ArgumentParser(
        prog="speechkit",
        description="speechkit: textless speech generation — units, unit LMs, vocoders, evaluation.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"speechkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    prepare.add_parser(sub)
    encode.add_parser(sub)
    resynth.add_parser(sub)
    sequences.add_parser(sub)
    if train.TASKS:  # only commands that exist are listed
        train.add_parser(sub)
    eval_.add_parser(sub)
    analyze.add_parser(sub)
    continue_.add_parser(sub)
    models.add_parsers(sub)
    vdtts.add_parser(sub)
    demo.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs every CPU-feature probe at INFO
    try:
        return int(args.func(args) or 0)
    except SpeechkitError as e:
        print(f"speechkit: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk, a read-only folder, a vanished mount: name the file and the reason
        where = f"{e.filename}: " if e.filename else ""
        print(f"speechkit: error: {where}{e.strerror or e} (nothing was left half written: outputs are replaced "
              "atomically)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("speechkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
