#!/usr/bin/env python
"""Mel vocoders side by side: Griffin-Lim and every trained mel vocoder on the same held-out utterances.

Rows (each a folder of 16 kHz wav files under ``OUT/wavs/``, scored by ``speechkit eval folder``'s metrics):

- ``originals``: the test utterances themselves (16 kHz);
- ``copy: X``: the originals' true log-mel (peak-normalised as the unit-to-mel decoder's targets) through
  vocoder X: what the vocoder alone loses;
- ``bundle: X``: the default call, ``Resynthesizer.from_pretrained(BUNDLE)(wav, sample_rate=sr)`` (voice chosen
  from the input, the bundle's default style), with the decoder's mel spoken by X;
- ``stream: X``: the same through ``Resynthesizer.stream`` at the default latency (0.16 s chunks in).

Metrics: pocketsphinx WER against the corpus transcripts, DNSMOS OVRL / SIG, speaker similarity (resemblyzer
cosine to the original), F0 GPE / VDE / FFE against the original (the fairseq protocol's YIN). Speed is measured by
``benchmarks/mel_vocoder.py``, not here. The test set is the tokenizer benchmark's: ``--test-count`` read
utterances of the test split, taken in turn from each speaker.

    .venv/bin/python eval/vocoder_table.py --data data/mini_expresso_120 --bundle checkpoints/default \\
        --vocoder vocos=checkpoints/default/vocoder/mel_vocoder -o eval/vocoder
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

METRICS = ("wer", "dnsmos", "speaker", "f0")
COLUMNS = (("wer", "WER"), ("dnsmos_ovrl", "DNSMOS OVRL"), ("dnsmos_sig", "DNSMOS SIG"),
           ("speaker_sim", "speaker sim."), ("gpe", "GPE"), ("vde", "VDE"), ("ffe", "FFE"))


def _write(path: Path, wav: torch.Tensor, sr: int = 16000) -> None:
    from speechkit.audio import io

    path.parent.mkdir(parents=True, exist_ok=True)
    io.save(path, wav.reshape(-1).float().clamp(-1, 1), sr)


def _named(specs: list[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise SystemExit(f"--vocoder must be NAME=DIR. Found {spec!r}")
        out[name] = folder
    return out


def make_rows(args, test: list, out: Path) -> list[str]:
    """Writes every row's wav files (skipping rows already written) and returns the row names."""
    from speechkit import Resynthesizer
    from speechkit.audio import io
    from speechkit.train.unit_mel import mel_transform
    from speechkit.vocoders.loading import load_mel_vocoder
    from speechkit.vocoders.unitmel.vocoder import griffin_lim

    rs = Resynthesizer.from_pretrained(args.bundle)
    cfg = rs.vocoder.config
    mel = mel_transform(cfg)
    vocoders = {} if args.no_griffin_lim else {"Griffin-Lim": griffin_lim(cfg)}
    vocoders.update({name: load_mel_vocoder(folder, cfg.mel) for name, folder in _named(args.vocoder).items()})
    rows = ["originals"]
    originals = {stem: io.load(path, sample_rate=16000)[0] for stem, path, _, _ in test}
    for stem, w in originals.items():
        if not (out / "originals" / f"{stem}.wav").is_file():
            _write(out / "originals" / f"{stem}.wav", w)
    for name, voc in vocoders.items():
        for kind in args.kinds.split(","):
            row = f"{kind}: {name}"
            rows.append(row)
            folder = out / row.replace(": ", "_").replace(" ", "-")
            rs.vocoder.mel_vocoder = voc
            t0 = time.time()
            for stem, w in originals.items():
                f = folder / f"{stem}.wav"
                if f.is_file():
                    continue
                with torch.inference_mode():
                    if kind == "copy":
                        x = w / w.abs().max().clamp(min=1e-4) * 0.95
                        y = voc(mel(x[None])[0])
                    elif kind == "bundle":
                        y = rs(w, sample_rate=16000)
                    else:
                        chunk = 2560
                        y = torch.cat(list(rs.stream((w[i: i + chunk] for i in range(0, len(w), chunk)), 16000)))
                _write(f, y)
            print(f"{row}: written in {time.time() - t0:.1f} s", flush=True)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="mini-Expresso root (its test split is used)")
    p.add_argument("--bundle", default="checkpoints/default", help="resynthesis bundle (encoder/ + vocoder/)")
    p.add_argument("--vocoder", action="append", default=[], metavar="NAME=DIR", help="a mel vocoder folder (repeat)")
    p.add_argument("--test-count", type=int, default=40, help="test utterances (round-robin over speakers)")
    p.add_argument("--split", default="test", choices=("test", "dev"),
                   help="the corpus split the utterances come from (dev: to choose between variants)")
    p.add_argument("--kinds", default="copy,bundle,stream", help="which rows of each vocoder (comma-separated)")
    p.add_argument("--no-griffin-lim", action="store_true", help="leave the Griffin-Lim rows out")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from eval.tokenizer_benchmark import round_robin, split_files
    from speechkit.data.corpora.expresso import read_transcriptions
    from speechkit.metrics.folder import FolderEvalConfig, evaluate_folder
    from speechkit.precision import machine_line

    if not set(args.kinds.split(",")) <= {"copy", "bundle", "stream"}:
        p.error(f"--kinds {args.kinds}: each must be copy, bundle or stream")
    test = round_robin(split_files(args.data, args.split), args.test_count)
    wavs = args.out / "wavs"
    rows = make_rows(args, test, wavs)
    texts = read_transcriptions(args.data)
    transcripts = args.out / "transcripts.txt"
    transcripts.write_text("".join(f"{s}\t{texts[s]}\n" for s, *_ in test), encoding="utf-8")
    results = {}
    for row in rows:
        folder = wavs / row.replace(": ", "_").replace(" ", "-")
        metrics = METRICS if row != "originals" else ("wer", "dnsmos")
        rep = evaluate_folder(folder, ref_dir=wavs / "originals", transcripts=transcripts,
                              config=FolderEvalConfig(metrics=metrics, media=False))
        results[row] = rep["summary"]
        print(row, {k: round(v, 3) for k, v in rep["summary"].items() if isinstance(v, float)}, flush=True)
    lines = [f"Mel vocoders on {len(test)} {args.split} utterances of {args.data} ({machine_line()}; "
             f"{time.strftime('%Y-%m-%d')})", "",
             "| row | " + " | ".join(c for _, c in COLUMNS) + " |", "|---" + "|---:" * len(COLUMNS) + "|"]
    for row, s in results.items():
        cells = [f"{s[k]:.3f}" if isinstance(s.get(k), float) else "" for k, _ in COLUMNS]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    (args.out / "table.md").write_text(table, encoding="utf-8")
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
