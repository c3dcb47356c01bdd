#!/usr/bin/env python
"""The K trade-off table of the default bundle: bitrate vs resynthesis WER, F0 errors and style accuracy per K.

Reads each run folder's ``sweep/report.json`` (written by ``speechkit eval resynthesis``), scores the originals of the
same utterances with the same pocketsphinx decoder and style classifier, and writes a markdown table.

    .venv/bin/python data_prep/k_tradeoff.py exp/default/k50 exp/default/k100 exp/default/k200 \
        --style-classifier exp/default/style -o exp/default/k_tradeoff.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def originals(rows: list[dict], style_classifier: Path | None) -> dict:
    """Pocketsphinx WER (and style accuracy) of the reference audio of ``rows``."""
    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.wer import wer

    asr = PocketSphinxASR()
    clf = None
    if style_classifier is not None:
        from speechkit.metrics.style import StyleClassifier

        clf = StyleClassifier.from_pretrained(style_classifier)
    texts, hyps, hits = [], [], []
    for r in rows:
        texts.append(r["text"])
        hyps.append(asr.transcribe_file(r["ref"]))
        if clf is not None:
            wav, sr = io.load(r["ref"])
            hits.append(clf.predict(wav, sr) == r["style"])
    out = {"num_files": len(rows), "wer": wer(texts, hyps)}
    if hits:
        out["style_accuracy"] = sum(hits) / len(hits)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="folders holding encoder/ and sweep/report.json, one per K")
    p.add_argument("--style-classifier", type=Path, default=None, help="judge of the originals' style accuracy")
    p.add_argument("-o", "--output", type=Path, required=True, help="markdown table (a .json beside it)")
    args = p.parse_args()

    reports = {}
    for run in args.runs:
        path = run / "sweep" / "report.json"
        if not path.is_file():
            print(f"{path}: no such report (run the sweep stage first)", file=sys.stderr)
            return 1
        reports[run] = json.loads(path.read_text())
    first = next(iter(reports.values()))
    rows = [r for r in first["per_file"] if r.get("condition", "same") == "same"]
    ids = {r["id"] for r in rows}
    for run, rep in reports.items():  # every K must be scored on the same utterances
        other = {r["id"] for r in rep["per_file"] if r.get("condition", "same") == "same"}
        if other != ids:
            print(f"{run}: scored other utterances than {next(iter(reports))}", file=sys.stderr)
            return 1
    orig = originals(rows, args.style_classifier)

    def f(x, nd=3):
        return "n/a" if x is None or x != x else f"{x:.{nd}f}"

    lines = [f"Resynthesis of {orig['num_files']} read test utterances (same voice); pocketsphinx WER; F0 errors "
             "against the original (YIN); style accuracy of the MFCC style classifier.", "",
             "| K | bitrate (bit/s, dedup entropy) | nominal bit/s | WER | WER - originals' | GPE | VDE | FFE | "
             "F0 corr | style acc |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    table = {"originals": orig}
    for run, rep in reports.items():
        s = rep["summary"]
        k = json.loads((run / "encoder" / "encoder.json").read_text()) if (run / "encoder" / "encoder.json").is_file() \
            else {}
        name = run.name
        table[name] = {**s, "encoder": k}
        lines.append(f"| {name.lstrip('k')} | {f(s.get('bitrate_entropy_dedup'), 1)} | "
                     f"{f(s.get('bitrate_nominal'), 1)} | "
                     f"{f(s.get('wer'))} | {f(s.get('wer', float('nan')) - orig['wer'])} | {f(s.get('gpe'))} | "
                     f"{f(s.get('vde'))} | {f(s.get('ffe'))} | {f(s.get('f0_corr'))} | "
                     f"{f(s.get('style_accuracy'))} |")
    lines.append(f"| originals | | | {f(orig['wer'])} | 0 | | | | | {f(orig.get('style_accuracy'))} |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    args.output.with_suffix(".json").write_text(json.dumps(table, indent=2, default=str))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
