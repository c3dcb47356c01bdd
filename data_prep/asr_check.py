#!/usr/bin/env python
"""Sanity figure for a synthetic corpus: pocketsphinx word error rate of a split, per speaker and per style.

    .venv/bin/python data_prep/asr_check.py data/mini_expresso --split test [--json out.json]

Only read speech (which has transcripts) is scored.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def asr_check(root: Path, split: str) -> dict:
    from tqdm import tqdm

    from speechkit.data.corpora import expresso
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.wer import wer

    texts = expresso.read_transcriptions(root)
    stems = [e.stem for e in expresso.read_splits(root)[split] if e.stem in texts]
    asr = PocketSphinxASR()
    by = defaultdict(lambda: ([], []))
    for stem in tqdm(stems, desc=f"pocketsphinx {split}", disable=None):
        info = expresso.parse_stem(stem)
        hyp = asr.transcribe_file(expresso.audio_path(root, stem))
        for key in (f"speaker/{info.speaker}", f"style/{info.style}", "all"):
            by[key][0].append(texts[stem])
            by[key][1].append(hyp)
    return {key: {"files": len(refs), "wer": round(wer(refs, hyps), 4)} for key, (refs, hyps) in sorted(by.items())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="Expresso-layout corpus root")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    p.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    args = p.parse_args()
    table = asr_check(args.root, args.split)
    print("| group | files | WER |\n|---|---:|---:|")
    for key, row in table.items():
        print(f"| {key} | {row['files']} | {row['wer']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
