#!/usr/bin/env python
"""Pairwise scoring speed (spoken StoryCloze style): a per-pair loop vs batched scoring, in one run.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ulm.py --pairs 32 --threads 1

Setup: a Llama-shaped unit LM with random weights (``--hidden`` x ``--layers``, K = 500 units) and ``--pairs``
random pairs whose lengths are drawn uniformly from ``--min-len .. --max-len`` units (sSC stories are a few
hundred deduplicated units).

- **per-pair loop** (slamkit's ``modelling_metric`` with ``batch_size=1``): for each pair, one forward pass for
  the positive, one for the negative;
- **pair batches** (slamkit with ``batch_size=B``): B positives padded together, then B negatives, in file order;
- **speechkit**: :func:`speechkit.ulm.pairwise.score_pairs`: all 2 x pairs sequences sorted by length and scored
  ``--batch-size`` at a time (least padding).

Short sequences (sWUGGY / sBLIMP: ``--min-len 5 --max-len 20``) are where the loop's per-call overhead dominates;
on one CPU thread long sequences are compute-bound and every path costs about the same per token.

Printed per path: wall time (best of ``--repeats`` after a warm-up), pairs per second, speed ratio vs the
per-pair loop, and the largest difference of scores vs the loop (the paths compute the same numbers).
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds a tokenize.py that would shadow the standard library's: take the script's folder off the
# module path before anything imports `inspect`, and put the repository root on it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402


def build_lm(hidden: int, layers: int, num_units: int):
    from transformers import LlamaConfig

    from speechkit.ulm import UnitLM

    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers,
                      num_attention_heads=max(1, hidden // 64), max_position_embeddings=1024, vocab_size=8)
    return UnitLM.cold_start(cfg, num_units, seed=0)


def per_pair_loop(lm, pos, neg):
    out = [(lm.log_likelihood([p])[0], lm.log_likelihood([n])[0]) for p, n in zip(pos, neg, strict=True)]
    return torch.stack([a for a, _ in out]), torch.stack([b for _, b in out])


def pair_batches(lm, pos, neg, batch_size):
    """slamkit's batching: positives of B consecutive pairs padded together, then their negatives."""
    a, b = [], []
    for i in range(0, len(pos), batch_size):
        # one log_likelihood call per side with batch_size >= B keeps each side's B sequences in one padded batch
        a.append(lm.log_likelihood(pos[i:i + batch_size], batch_size=batch_size))
        b.append(lm.log_likelihood(neg[i:i + batch_size], batch_size=batch_size))
    return torch.cat(a), torch.cat(b)


def timed(fn, repeats, device):
    fn()  # warm-up
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=32)
    p.add_argument("--min-len", type=int, default=150)
    p.add_argument("--max-len", type=int, default=450)
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from speechkit.ulm.pairwise import score_pairs

    lm = build_lm(args.hidden, args.layers, 500).to(args.device)
    g = torch.Generator().manual_seed(0)

    def seq():
        n = int(torch.randint(args.min_len, args.max_len + 1, (1,), generator=g))
        return torch.randint(0, 500, (n,), generator=g).tolist()

    pos = [seq() for _ in range(args.pairs)]
    neg = [seq() for _ in range(args.pairs)]
    n_params = sum(q.numel() for q in lm.model.parameters()) / 1e6
    print(f"unit LM: Llama {args.hidden} x {args.layers} layers ({n_params:.1f}M params), {args.pairs} pairs of "
          f"{args.min_len}-{args.max_len} units, batch {args.batch_size}, {args.device}, "
          f"{torch.get_num_threads()} thread(s)")

    paths = {
        "per-pair loop (slamkit batch_size=1)": lambda: per_pair_loop(lm, pos, neg),
        f"pair batches (slamkit batch_size={args.batch_size})": lambda: pair_batches(lm, pos, neg, args.batch_size),
        f"speechkit score_pairs (sorted, batch {args.batch_size})":
            lambda: score_pairs(lm, pos, neg, batch_size=args.batch_size),
    }
    base_time, base = None, None
    print(f"{'path':52s} {'seconds':>8s} {'pairs/s':>8s} {'speed-up':>8s} {'max |diff|':>10s}")
    for name, fn in paths.items():
        seconds, (a, b) = timed(fn, args.repeats, args.device)
        if base is None:
            base_time, base = seconds, (a, b)
        diff = max(float((a - base[0]).abs().max()), float((b - base[1]).abs().max()))
        print(f"{name:52s} {seconds:8.2f} {args.pairs / seconds:8.2f} {base_time / seconds:7.2f}x {diff:10.2e}")


if __name__ == "__main__":
    main()
