#!/usr/bin/env python
"""Quality vs KV-cache size (TOVA's perplexity experiment in miniature) on held-out unit sequences.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python eval/long_generation/cache_perplexity.py \\
        --model exp/twist/ulm_warm/model --units exp/twist/units/valid.jsonl --length 512 \\
        --out eval/long_generation/perplexity_512

Held-out utterances (``--units``, jsonl with ``"units"``) are turned into token ids exactly as the unit LM was
trained (``lm.token_ids``: BOS, units, EOS), concatenated into one stream and cut into non-overlapping sequences
of ``--length`` tokens ("long concatenations of the corpus"). Each sequence is read one token at a time through
each cache policy (:func:`speechkit.ulm.cache.log_likelihood_with_cache`, teacher forcing) at K = length / 16,
/8, /4, /2, and the perplexity over every token after the first is reported, with the full cache as reference.
Writes ``<out>.json``, ``<out>.md`` (table) and ``<out>.svg`` (plot).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

FRACTIONS = [16, 8, 4, 2]
POLICIES = ["tova", "h2o", "sinks", "window"]
COLOURS = {"full": "#000000", "tova": "#d62728", "h2o": "#1f77b4", "sinks": "#2ca02c", "window": "#ff7f0e"}


def held_out_sequences(lm, path: Path, length: int) -> torch.Tensor:
    stream = []
    for line in path.read_text().splitlines():
        if line.strip():
            stream += lm.token_ids(json.loads(line)["units"])
    n = len(stream) // length
    if n == 0:
        raise SystemExit(f"{path}: {len(stream)} tokens, fewer than one sequence of {length}")
    return torch.tensor(stream[:n * length]).view(n, length)


def svg_plot(rows: dict, full: float, length: int, path: Path) -> None:
    """Perplexity vs cache fraction (log2 x axis), one line per policy, the full cache as a dashed line."""
    w, h, m = 520, 340, 55
    xs = [1 / f for f in FRACTIONS]
    ys = [v for r in rows.values() for v in r.values()] + [full]
    lo, hi = min(ys), max(ys)
    lo, hi = lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9)

    def px(x):
        return m + (math.log2(x) - math.log2(xs[0])) / (math.log2(xs[-1]) - math.log2(xs[0])) * (w - 2 * m)

    def py(y):
        return h - m - (y - lo) / (hi - lo) * (h - 2 * m)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
           'font-size="12">', f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>',
           f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>',
           f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">cache size / sequence length ({length} tokens)'
           '</text>', f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" text-anchor="middle">'
           'perplexity</text>']
    for x, f in zip(xs, FRACTIONS, strict=True):
        out.append(f'<text x="{px(x):.1f}" y="{h - m + 16}" text-anchor="middle">1/{f}</text>')
    for i in range(5):
        y = lo + (hi - lo) * i / 4
        out.append(f'<text x="{m - 5}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    out.append(f'<line x1="{m}" y1="{py(full):.1f}" x2="{w - m}" y2="{py(full):.1f}" stroke="black" '
               'stroke-dasharray="4 3"/>')
    for k, (name, r) in enumerate(rows.items()):
        pts = " ".join(f"{px(1 / f):.1f},{py(r[f]):.1f}" for f in FRACTIONS)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS[name]}" stroke-width="2"/>')
        out.append(f'<text x="{w - m - 60}" y="{m + 15 * k}" fill="{COLOURS[name]}">{name}</text>')
    out.append(f'<text x="{w - m - 60}" y="{m + 15 * len(rows)}">full (dashed)</text></svg>')
    path.write_text("\n".join(out) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="speechkit unit-LM folder")
    ap.add_argument("--units", type=Path, required=True, help="held-out units jsonl")
    ap.add_argument("--length", type=int, default=512, help="tokens per held-out sequence")
    ap.add_argument("--max-seqs", type=int, default=None, help="use at most this many sequences")
    ap.add_argument("--out", type=Path, required=True, help="output prefix (.json, .md, .svg)")
    args = ap.parse_args()

    from speechkit.ulm import UnitLM
    from speechkit.ulm.cache import log_likelihood_with_cache, make_cache

    torch.set_num_threads(1)
    lm = UnitLM.from_pretrained(args.model)
    seqs = held_out_sequences(lm, args.units, args.length)[:args.max_seqs]

    def ppl(policy, size):
        logp = log_likelihood_with_cache(lm.model, seqs, make_cache(policy, size))
        return math.exp(-logp.mean().item())

    full = ppl(None, None)
    print(f"{len(seqs)} sequences x {args.length} tokens; full cache perplexity {full:.3f}", flush=True)
    rows = {}
    for policy in POLICIES:
        rows[policy] = {f: ppl(policy, args.length // f) for f in FRACTIONS}
        print(policy, {f"1/{f}": round(v, 3) for f, v in rows[policy].items()}, flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(dict(
        model=args.model, units=str(args.units), length=args.length, sequences=len(seqs), full=full,
        perplexity={p: {f"1/{f}": v for f, v in r.items()} for p, r in rows.items()}), indent=1))
    head = " | ".join(f"K = {args.length // f} (1/{f})" for f in FRACTIONS)
    lines = [f"| policy | {head} |", "|---" * (len(FRACTIONS) + 1) + "|",
             f"| full | {' | '.join(f'{full:.3f}' for _ in FRACTIONS)} |"]
    lines += [f"| {p} | {' | '.join(f'{r[f]:.3f}' for f in FRACTIONS)} |" for p, r in rows.items()]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    svg_plot(rows, full, args.length, args.out.with_suffix(".svg"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
