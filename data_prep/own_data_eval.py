#!/usr/bin/env python
"""recipes/own_data's eval stage: the test split of a prepared corpus resynthesised by a bundle (each file in its
own speaker's voice), then scored with ``speechkit eval folder`` beside the originals.

With transcripts: WER/CER of originals and resynthesis against them. Without: WER of the resynthesis against the
ASR of the original (agreement). Speaker similarity and DNSMOS where asked. Writes OUT/{ref,resynth}/ (audio),
OUT/originals/ and OUT/resynthesis/ (reports) and OUT/summary.{md,json}.

    .venv/bin/python data_prep/own_data_eval.py --prepared exp/mine/data --bundle exp/mine/bundle -o exp/mine/eval
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLUMNS = [("wer", "WER"), ("cer", "CER"), ("speaker_sim", "speaker sim."), ("dnsmos_ovrl", "DNSMOS OVRL")]


def pick(rows: list[dict], limit: int) -> list[dict]:
    """Test rows taken in turn from each speaker (so a few files still cover every speaker), at most ``limit``."""
    by_speaker: dict[str, list[dict]] = {}
    for r in rows:
        if r["split"] == "test":
            by_speaker.setdefault(r["speaker"], []).append(r)
    out, i = [], 0
    while len(out) < limit and any(i < len(v) for v in by_speaker.values()):
        out += [v[i] for _, v in sorted(by_speaker.items()) if i < len(v)][: limit - len(out)]
        i += 1
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prepared", type=Path, required=True, help="speechkit prepare own-data output")
    p.add_argument("--bundle", type=Path, required=True, help="the bundle to evaluate")
    p.add_argument("--limit", type=int, default=40, help="test files (taken in turn from each speaker)")
    p.add_argument("--metrics", default="wer,cer,speaker,dnsmos", help="speechkit eval folder --metrics")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()

    from speechkit import Resynthesizer
    from speechkit.audio import io
    from speechkit.cli.main import main as cli
    from speechkit.data.corpora.own import read_utterances
    from speechkit.utils.files import atomic_open, write_json

    rows = pick(read_utterances(args.prepared), args.limit)
    if not rows:
        print(f"{args.prepared}: the test split is empty (speakers with fewer than 3 files go to train only); "
              "nothing to evaluate", file=sys.stderr)
        return 1
    rs = Resynthesizer.from_pretrained(args.bundle)
    known = set(rs.vocoder.speakers or [])
    ref, hyp = args.output / "ref", args.output / "resynth"
    for r in rows:
        if (hyp / f"{r['id']}.wav").is_file():  # resumed: written atomically by an earlier run
            continue
        wav, sr = io.load(r["wav"])
        io.save(ref / f"{r['id']}.wav", wav, sr)
        y = rs(wav, sr, speaker=r["speaker"] if r["speaker"] in known else None)
        io.save(hyp / f"{r['id']}.wav", y, rs.output_sample_rate)
    transcribed = all(r["text"] for r in rows)
    common = ["--metrics", args.metrics, "--jobs", str(args.jobs), "--no-media"]
    if transcribed:
        with atomic_open(args.output / "transcripts.tsv") as f:
            f.writelines(f"{r['id']}\t{r['text']}\n" for r in rows)
        common += ["--transcripts", str(args.output / "transcripts.tsv")]
        orig_metrics = ",".join(m for m in args.metrics.split(",") if m in ("wer", "cer", "dnsmos"))
        if cli(["eval", "folder", "--hyp", str(ref), "--transcripts", str(args.output / "transcripts.tsv"),
                "--metrics", orig_metrics, "--jobs", str(args.jobs), "--no-media",
                "-o", str(args.output / "originals")]):
            return 1
    if cli(["eval", "folder", "--hyp", str(hyp), "--ref", str(ref), *common, "-o", str(args.output / "resynthesis")]):
        return 1
    table = {}
    for name in ("originals", "resynthesis"):
        report = args.output / name / "report.json"
        if report.is_file():
            table[name] = json.loads(report.read_text())["summary"]
    basis = "against the transcripts" if transcribed else "against the ASR of each original (agreement)"
    lines = [f"# {args.bundle} on {len(rows)} test files of {args.prepared}", "",
             f"WER/CER {basis}; speaker similarity of each resynthesis to its original (resemblyzer); DNSMOS OVRL "
             "(higher is better; WER/CER lower is better).", "",
             "| | " + " | ".join(h for _, h in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, summary in table.items():
        cells = [f"{summary[k]:.3f}" if isinstance(summary.get(k), int | float) else "-" for k, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (args.output / "summary.md").write_text("\n".join(lines) + "\n")
    write_json(args.output / "summary.json", {"files": len(rows), "transcribed": transcribed, **table})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
