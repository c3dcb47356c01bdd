#!/usr/bin/env python
"""Adds speaker embeddings to a vocoder folder trained before they were exported: the mean resemblyzer embedding of
each vocoder speaker's training speech in an Expresso-layout corpus, written as ``speaker_embeddings.json``.

    .venv/bin/python data_prep/speaker_embeddings.py checkpoints/default/vocoder data/mini_expresso_120

With it, ``Resynthesizer`` keeps an input's voice by speaker embedding instead of analysis by synthesis.
(``speechkit train vocoder`` writes the file itself; see ``train.speaker_embeddings``.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    from speechkit.data.corpora import expresso
    from speechkit.errors import SpeechkitError
    from speechkit.vocoders import UnitVocoder
    from speechkit.vocoders.hifigan.voices import compute_speaker_table

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("vocoder", type=Path, help="vocoder folder (speechkit or official, with speakers.txt)")
    p.add_argument("corpus", type=Path, help="Expresso-layout corpus the vocoder was trained on")
    p.add_argument("--split", default="train", help="split of the corpus (splits/SPLIT.txt)")
    p.add_argument("--utterances", type=int, default=20, help="read utterances averaged per speaker")
    args = p.parse_args()
    try:
        voc = UnitVocoder.from_pretrained(args.vocoder)
        if not voc.speakers:
            raise SpeechkitError(f"{args.vocoder}: the vocoder has no speakers.txt")
        files: dict[str, list[Path]] = {s: [] for s in voc.speakers}
        for entry in expresso.read_splits(args.corpus)[args.split]:
            info = expresso.parse_stem(entry.stem)
            if info.kind == "read" and info.speaker in files:
                files[info.speaker].append(expresso.audio_path(args.corpus, entry.stem))
        missing = [s for s, f in files.items() if not f]
        if missing:
            raise SpeechkitError(f"{args.corpus}: no read {args.split} speech of vocoder speakers {missing}")
        table = compute_speaker_table(files, max_utterances=args.utterances)
    except (SpeechkitError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    path = table.save(args.vocoder)
    print(f"wrote {path}: {', '.join(f'{n} ({table.utterances[n]} utterances)' for n in table.names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
