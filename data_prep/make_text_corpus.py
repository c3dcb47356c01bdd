#!/usr/bin/env python
"""Build the project's text corpus (train stories + everyday sentences) for the small text LM
(speechkit.data.corpora.text).

    .venv/bin/python data_prep/make_text_corpus.py data/text --stories 20000 --sentences 20000

Writes OUTPUT/train.txt and OUTPUT/valid.txt, one document a line. Re-running with the same settings returns at once.
"""

from __future__ import annotations

import argparse
import sys

from speechkit.data.corpora.text import prepare_text_corpus


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="output folder")
    p.add_argument("--stories", type=int, default=20_000, help="train stories (StoryCloze test stories never)")
    p.add_argument("--sentences", type=int, default=20_000, help="everyday single sentences")
    p.add_argument("--valid-fraction", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    root = prepare_text_corpus(args.output, stories=args.stories, sentences=args.sentences, seed=args.seed,
                               valid_fraction=args.valid_fraction)
    print(f"text corpus ready: {root}/train.txt, {root}/valid.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
