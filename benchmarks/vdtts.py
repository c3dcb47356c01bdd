#!/usr/bin/env python
"""VDTTS speed: seconds of speech per second of compute for whole test videos, acoustic model and vocoder apart.

    .venv/bin/python benchmarks/vdtts.py --data data/talking_face_60 --model vdtts=checkpoints/vdtts \\
        --model "attention (before)=OLD_DIR" --count 10

Every model speaks the same ``--count`` test videos of a talking-face corpus (mouth crops decoded once, outside
the timing) with their transcripts, on 1 and on 2 threads: median wall time per second of video of the acoustic
model (``VDTTS.mel``: text front end, video encoder, aligner and Viterbi path, decoder) and of the model's
Griffin-Lim vocoder, and the whole as a multiple of real time. The first model is the baseline of the ratio
column; the first line names the machine (CPU, ISA, threads, torch).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]   # benchmarks/tokenize.py shadows stdlib
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from speechkit.audio.video import mouth_crops, read_video
    from speechkit.precision import machine_line
    from speechkit.vdtts import VDTTS
    from speechkit.vdtts.inference import resample_frames
    from speechkit.vdtts.manifest import read_manifest
    from speechkit.vdtts.vocoding import vocode

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="talking-face corpus (speechkit prepare talking-face)")
    ap.add_argument("--model", action="append", required=True, help="NAME=FOLDER (repeatable; first = baseline)")
    ap.add_argument("--count", type=int, default=10, help="test videos")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rows = read_manifest(Path(args.data) / "test.jsonl")[: args.count]
    models = {}
    for spec in args.model:
        name, _, folder = spec.partition("=")
        models[name] = VDTTS.from_pretrained(folder)
    print(machine_line())
    print(f"{len(rows)} test videos of {args.data}")
    videos = []
    for row in rows:
        v = read_video(row["video"], audio=False)
        videos.append((v, row["text"], row["speaker"]))
    seconds = sum(len(v.frames) / v.fps for v, _, _ in videos)
    model_crops = {name: [mouth_crops(v.frames[resample_frames(len(v.frames), v.fps, tts.config.fps)],
                                      tuple(tts.config.mouth_box), tts.config.crop_size) for v, _, _ in videos]
                   for name, tts in models.items()}
    header = "| model | threads | acoustic model s/s | Griffin-Lim s/s | whole, x real time | ratio to first |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|")
    base = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, tts in models.items():
            cfg, crops = tts.config, model_crops[name]
            tts.mel(crops[0], videos[0][1], videos[0][2])  # warm-up
            t_model, t_voc = [], []
            for _ in range(args.repeats):
                a = b = 0.0
                for c, (v, text, spk) in zip(crops, videos, strict=True):
                    t0 = time.perf_counter()
                    mel = tts.mel(c, text, spk)
                    t1 = time.perf_counter()
                    vocode(tts.vocoder, mel, int(round(len(v.frames) / v.fps * cfg.sample_rate)))
                    a, b = a + t1 - t0, b + time.perf_counter() - t1
                t_model.append(a)
                t_voc.append(b)
            m, g = statistics.median(t_model) / seconds, statistics.median(t_voc) / seconds
            speed = 1.0 / (m + g)
            base.setdefault(threads, speed)
            print(f"| {name} | {threads} | {m:.4f} | {g:.4f} | {speed:.1f}x | {speed / base[threads]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
