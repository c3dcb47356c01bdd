#!/usr/bin/env python
"""How much of the spectrum each tokenizer's units carry: the best a vocoder without context could do.

For each units jsonl (frame labels or deduplicated units with durations), every unit's mean log-mel frame is
estimated on training utterances; on held-out utterances the L1 distance between that mean and the true log-mel
frame is reported, with the L1 of one global mean frame for scale (lower = the units say more about the sound).
A phone probe (``phone_probe.py``) measures phonetic content; this measures acoustic content, which is what a unit
vocoder has to turn back into audio.

    .venv/bin/python data_prep/unit_mel_probe.py exp/default/hubert/it1/train.labels.jsonl \
        exp/default/k200/units.jsonl -o exp/default/unit_mel_probe.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def unit_mean_l1(train: list[tuple[np.ndarray, np.ndarray]], test: list[tuple[np.ndarray, np.ndarray]],
                 num_units: int) -> tuple[float, float]:
    """``(L1 of per-unit mean frames, L1 of the global mean frame)`` on ``test``; pairs are ``(units (T,),
    features (T, D))``. Units never seen in training predict the global mean."""
    dim = train[0][1].shape[1]
    sums, counts = np.zeros((num_units, dim)), np.zeros(num_units)
    for u, m in train:
        np.add.at(sums, u, m)
        np.add.at(counts, u, 1)
    glob = sums.sum(0) / max(counts.sum(), 1)
    means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], glob)
    err = [np.abs(means[u] - m).mean() for u, m in test]
    err0 = [np.abs(glob[None] - m).mean() for _, m in test]
    return float(np.mean(err)), float(np.mean(err0))


def log_mel(path: str, hop: int, sample_rate: int = 16000) -> np.ndarray:
    import librosa

    from speechkit.audio import io

    y = io.load(path, sample_rate=sample_rate)[0].numpy()
    y = y / max(1e-6, float(np.abs(y).max())) * 0.95  # the vocoder trainer's peak normalisation
    m = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=1024, hop_length=hop, win_length=1024,
                                       n_mels=80, center=True)
    return np.log(np.clip(m, 1e-5, None)).T


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("units", nargs="+", type=Path, help="units jsonl files (same audio, different tokenizers)")
    p.add_argument("--utterances", type=int, default=400, help="utterances drawn (seeded); last quarter held out")
    p.add_argument("--hop", type=int, default=320, help="samples per unit frame at 16 kHz")
    p.add_argument("-o", "--output", type=Path, default=None, help="markdown table (a .json beside it)")
    args = p.parse_args()
    cache: dict[str, np.ndarray] = {}
    rows = []
    from speechkit.data.manifest import read_units_jsonl
    from speechkit.vocoders.hifigan.data import frame_units

    for path in args.units:
        records = read_units_jsonl(path)
        if len(records) < 4:
            print(f"{path}: needs at least 4 utterances", file=sys.stderr)
            return 2
        pick = np.random.default_rng(0).permutation(len(records))[: args.utterances]
        pairs = []
        for i in pick:
            r = records[int(i)]
            if r.audio not in cache:
                cache[r.audio] = log_mel(r.audio, args.hop)
            u, m = frame_units(r).numpy(), cache[r.audio]
            n = min(len(u), len(m))
            pairs.append((u[:n], m[:n]))
        split = len(pairs) * 3 // 4
        num_units = 1 + max(int(u.max()) for u, _ in pairs if len(u))
        l1, l1_global = unit_mean_l1(pairs[:split], pairs[split:], num_units)
        rows.append({"units": str(path), "k": num_units, "unit_mean_l1": l1, "global_mean_l1": l1_global})
        print(f"{path}: K={num_units} per-unit mean log-mel L1 {l1:.3f} (one global mean {l1_global:.3f})", flush=True)
    if args.output:
        lines = ["| units | K | per-unit mean log-mel L1 | global mean L1 |", "|---|---:|---:|---:|"]
        lines += [f"| {r['units']} | {r['k']} | {r['unit_mean_l1']:.3f} | {r['global_mean_l1']:.3f} |" for r in rows]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(lines) + "\n")
        args.output.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
