"""Style-classifier accuracy on an Expresso-layout corpus: train on the train split's read speech, score its test
split, print JSON (overall and per style) and optionally save the classifier for `speechkit eval resynthesis
--style-classifier`.

    .venv/bin/python eval/style_accuracy.py data/mini_expresso --features mfcc
    .venv/bin/python eval/style_accuracy.py data/mini_expresso --features exp/hubert/final/encoder/hubert --layer 1 \
        --save exp/style
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, help="Expresso root (prepared into --prepared, or a temporary folder)")
    p.add_argument("--features", default="mfcc", help="'mfcc' or a HuBERT checkpoint (fairseq .pt, HF or ours)")
    p.add_argument("--layer", type=int, default=6, help="HuBERT layer")
    p.add_argument("--prepared", type=Path, help="where prepare_expresso writes the 16 kHz segments")
    p.add_argument("--save", type=Path, help="save the trained classifier here")
    p.add_argument("--jobs", type=int, default=1)
    args = p.parse_args()

    from speechkit.data.corpora.expresso import prepare_expresso
    from speechkit.data.datasets import ExpressoDataset
    from speechkit.metrics.style import StyleClassifier

    if args.features == "mfcc":
        from speechkit.units.mfcc import MfccFeatureReader

        reader = MfccFeatureReader()
    else:
        from speechkit.units import HubertFeatureReader

        reader = HubertFeatureReader.from_pretrained(args.features, layer=args.layer)
    prepared = args.prepared or Path(tempfile.mkdtemp(prefix="style_"))
    prepare_expresso(args.data, prepared, splits=("train", "test"), jobs=args.jobs)

    def examples(split):
        ds = ExpressoDataset(prepared, split, kinds=("read",))
        return [(it["wav"], it["sample_rate"], it["style"]) for it in (ds[i] for i in range(len(ds)))]

    train, test = examples("train"), examples("test")
    clf = StyleClassifier.train(reader, train)
    per_style = defaultdict(list)
    for wav, sr, style in test:
        per_style[style].append(clf.predict(wav, sr) == style)
    hits = [h for v in per_style.values() for h in v]
    print(json.dumps({"features": args.features, "train_files": len(train), "test_files": len(test),
                      "accuracy": round(sum(hits) / len(hits), 4), "chance": round(1 / len(clf.styles), 4),
                      "per_style": {s: round(sum(v) / len(v), 4) for s, v in sorted(per_style.items())}}, indent=2))
    if args.save:
        clf.save_pretrained(args.save)


if __name__ == "__main__":
    main()
