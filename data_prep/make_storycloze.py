#!/usr/bin/env python
"""Build the synthetic spoken StoryCloze (sSC/ and tSC/ pairs from test stories) and, optionally, story speech
from train stories for unit-LM training (speechkit.data.corpora.storycloze).

    .venv/bin/python data_prep/make_storycloze.py data/storycloze --pairs 200 --voice us2
    .venv/bin/python data_prep/make_storycloze.py data/story_speech --train-stories 1000

Re-running with the same settings returns at once.
"""

from __future__ import annotations

import argparse
import sys

from speechkit.data.corpora.storycloze import prepare_story_speech, prepare_storycloze


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="output folder")
    p.add_argument("--pairs", type=int, default=200, help="test stories: one sSC and one tSC pair each")
    p.add_argument("--train-stories", type=int, default=0,
                   help="write speech of this many train stories instead of the benchmark (for unit-LM training)")
    p.add_argument("--voice", default="us2", help="MBROLA voice of the benchmark (us1, us2, us3, en1)")
    p.add_argument("--voices", nargs="+", default=["us1", "us2", "us3", "en1"],
                   help="voices taking turns in the train-story speech")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.train_stories:
        root = prepare_story_speech(args.output, stories=args.train_stories, seed=args.seed,
                                    voices=tuple(args.voices))
        print(f"train-story speech ready in {root}/audio ({args.train_stories} stories)")
    else:
        root = prepare_storycloze(args.output, pairs=args.pairs, seed=args.seed, voice=args.voice)
        print(f"synthetic spoken StoryCloze ready in {root} (sSC/, tSC/: {args.pairs} pairs each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
