#!/usr/bin/env python
"""Is it the voice? Resynthesis WER of a held-out set when its audio is resampled before encoding.

    .venv/bin/python eval/resample_probe.py --model checkpoints/default --set real_phrases --limit 30 \\
        --factors 0.8,0.9,1.0,1.1,1.2 -o exp/resample_probe.json

Each file is resampled by a factor ``s`` (played at the original rate it is ``s`` times faster: pitch and formants
move by ``s``, as a shorter or longer vocal tract), encoded, its unit durations scaled back by ``s`` onto the
original frame grid, and vocoded in the voice the bundle picks for the original; pocketsphinx transcribes the
output. If the encoder failed on a voice only because its formants lie outside the training voices', some factor
would lower the WER. The mean distance of the dense features to their nearest k-means centre is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="checkpoints/default")
    p.add_argument("--heldout", type=Path, default=Path("data/heldout"))
    p.add_argument("--set", default="real_phrases", help="a set of data_prep/heldout_sets.py")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--factors", default="0.8,0.9,1.0,1.1,1.2")
    p.add_argument("-o", "--output", type=Path, required=True)
    a = p.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
    from heldout_sets import read_items

    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.wer import wer
    from speechkit.pipeline import Resynthesizer
    from speechkit.units import regrid

    torch.manual_seed(0)
    rs = Resynthesizer.from_pretrained(a.model)
    enc, asr = rs.encoder, PocketSphinxASR()
    items = read_items(a.heldout / a.set)[: a.limit]
    results = {}
    for s in (float(f) for f in a.factors.split(",")):
        hyps, dist = [], []
        for it in items:
            wav, sr = io.load(it["path"])
            x = io.resample(wav.mean(0) if wav.dim() == 2 else wav, sr, 16000)
            xs = io.resample(x, 16000, int(round(16000 / s / 200)) * 200) if s != 1.0 else x
            with torch.inference_mode():
                e = enc(xs, 16000)
            if hasattr(enc, "quantizer"):
                dist.append(float(torch.cdist(e["dense"].float(), enc.quantizer.centroids).min(1).values.mean()))
            u, d = regrid(e["units"], e["durations"], x.numel() // enc.code_hop_size)
            voice = rs.match_speaker(x, 16000, u, d)
            with torch.inference_mode():
                y = rs.vocoder(u, speaker=voice, durations=d)
            hyps.append(asr.transcribe(io.resample(y, rs.output_sample_rate, 16000)))
        results[str(s)] = {"wer": wer([it["text"] for it in items], hyps),
                           "centre_distance": float(np.mean(dist)) if dist else None, "items": len(items)}
        print(f"factor {s}: WER {results[str(s)]['wer']:.3f}", flush=True)
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps({"model": str(a.model), "set": a.set, "factors": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
