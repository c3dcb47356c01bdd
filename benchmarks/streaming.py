#!/usr/bin/env python
"""Streaming resynthesis: latency, compute per chunk, and memory on a long input, against the offline call.

    .venv/bin/python benchmarks/streaming.py --data data/mini_expresso_120 --count 8 --long-seconds 3600

Measured on held-out read files of the bundle's mini-Expresso, fed at 16 kHz:

- **algorithmic latency**: for every output sample, the input seconds consumed before it was yielded minus its own
  time (chunks of ``--chunk-ms``, 20 ms: the chunking adds up to one chunk). Given a speaker (live conversion) and
  with the voice kept (the first output waits for ``match_seconds`` of input, then the lag falls back).
- **compute**: seconds of compute per second of input (real-time factor), overall and per input chunk of one block
  (160 ms: mean, 95th percentile, max), on 1 and 2 threads; the offline call on the same files is the baseline.
- **memory**: peak resident memory of a process streaming ``--long-seconds`` of input (the held-out files cycled,
  never held whole) at checkpoints, beside a process running the offline call on ``--offline-seconds``. The lag at
  the end of the long input shows whether it grows.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

SR = 16000


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _held_out_files(*a, **k):
    """``benchmarks/resynth.py``'s choice of files (loaded by path: this folder's tokenize.py shadows the
    standard library's, so the folder is not on sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_resynth", _HERE / "resynth.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.held_out_files(*a, **k)


def _load(args) -> tuple:
    from speechkit import Resynthesizer
    from speechkit.audio import io

    rs = Resynthesizer.from_pretrained(args.model)
    files = _held_out_files(args.data, rs.vocoder.speakers or [], args.count)
    return rs, [(io.load(p, sample_rate=SR)[0], s) for p, s in files]


def latency(rs, wav: torch.Tensor, speaker, chunk: int) -> dict:
    consumed, marks, out = 0, [], 0

    def source():
        nonlocal consumed
        for i in range(0, len(wav), chunk):
            consumed = min(len(wav), i + chunk)
            yield wav[i: i + chunk]

    for y in rs.stream(source(), SR, speaker=speaker):
        marks.append((out, out + len(y), consumed))
        out += len(y)
    lat = np.concatenate([(c - np.arange(a, b)) / SR for a, b, c in marks])
    steady = lat[int(1.5 * SR):]  # after the voice choice (1 s of input) has been caught up
    return {"first_output_s": round(float(lat[0]), 3), "max_s": round(float(lat.max()), 3),
            "steady_max_s": round(float(steady.max()), 3), "steady_mean_s": round(float(steady.mean()), 3)}


def compute(rs, data: list, threads: int, block_samples: int) -> dict:
    torch.set_num_threads(threads)
    per_chunk, total, seconds = [], 0.0, 0.0
    for wav, spk in data:
        gen = rs.stream((wav[i: i + block_samples] for i in range(0, len(wav), block_samples)), SR, speaker=spk)
        it = iter(gen)
        # time each pull: the work done for one input chunk (pulls that return nothing are included in the next)
        t = time.perf_counter()
        while True:
            try:
                next(it)
            except StopIteration:
                break
            now = time.perf_counter()
            per_chunk.append(now - t)
            t = now
        total += sum(per_chunk[-(len(wav) // block_samples + 1):])
        seconds += len(wav) / SR
    offline_t = 0.0
    for wav, spk in data:
        t = time.perf_counter()
        rs(wav, SR, speaker=spk)
        offline_t += time.perf_counter() - t
    rtf = np.array(per_chunk) / (block_samples / SR)
    return {"threads": threads, "rtf": round(total / seconds, 3), "chunk_rtf_mean": round(float(rtf.mean()), 3),
            "chunk_rtf_p95": round(float(np.percentile(rtf, 95)), 3), "chunk_rtf_max": round(float(rtf.max()), 3),
            "offline_rtf": round(offline_t / seconds, 3)}


def memory_child(args) -> dict:
    """Runs in its own process: peak memory streaming (or, ``offline``, resynthesising whole) a long input."""
    torch.set_num_threads(args.threads)
    rs, data = _load(args)
    base = _rss_mb()
    if args.memory_child == "offline":
        n = int(args.offline_seconds * SR)
        wav = torch.cat([w for w, _ in data] * (n // sum(len(w) for w, _ in data) + 1))[:n]
        t = time.perf_counter()
        y = rs(wav, SR, speaker=data[0][1])
        return {"seconds": args.offline_seconds, "peak_mb": round(_peak_mb(), 1), "model_mb": round(base, 1),
                "compute_s": round(time.perf_counter() - t, 1), "output_s": len(y) / SR}
    n = int(args.long_seconds * SR)
    chunk = int(args.chunk_ms * SR / 1000)
    checkpoints, consumed = {}, 0

    def source():
        nonlocal consumed
        while consumed < n:
            for w, _ in data:
                for i in range(0, len(w), chunk):
                    piece = w[i: i + chunk][: n - consumed]
                    if piece.numel() == 0:
                        return
                    consumed += piece.numel()
                    yield piece

    out, t = 0, time.perf_counter()
    step = max(60 * SR, n // 6)
    next_mark = 60 * SR
    for y in rs.stream(source(), SR, speaker=data[0][1]):
        out += len(y)
        if consumed >= next_mark:
            checkpoints[f"{consumed / SR / 60:.0f} min"] = {"rss_mb": round(_rss_mb(), 1),
                                                           "lag_s": round((consumed - out) / SR, 3)}
            next_mark += step
    return {"seconds": args.long_seconds, "output_s": out / SR, "peak_mb": round(_peak_mb(), 1),
            "model_mb": round(base, 1), "checkpoints": checkpoints, "compute_s": round(time.perf_counter() - t, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--data", type=Path, required=True, help="mini-Expresso (held-out read files)")
    p.add_argument("--count", type=int, default=8, help="held-out files")
    p.add_argument("--chunk-ms", type=float, default=20.0, help="input chunk of the latency and memory runs")
    p.add_argument("--long-seconds", type=float, default=3600.0, help="input of the memory run (0: skip)")
    p.add_argument("--offline-seconds", type=float, default=300.0, help="input of the offline memory baseline")
    p.add_argument("--threads", type=int, default=2, help="threads of the memory runs")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--memory-child", choices=("stream", "offline"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        print(json.dumps(memory_child(args)))
        return 0

    from speechkit.pipeline import StreamConfig
    from speechkit.precision import machine_line, machine_summary

    print(machine_line(), flush=True)
    rs, data = _load(args)
    cfg = StreamConfig()
    block = int(cfg.block * SR / rs.encoder.frame_rate)
    results = {"machine": machine_summary(), "date": time.strftime("%Y-%m-%d"), "files": len(data),
               "audio_s": round(sum(len(w) for w, _ in data) / SR, 1), "config": cfg.__dict__,
               "latency_designed_s": round(cfg.latency_seconds(rs.encoder.frame_rate), 3)}
    rs(data[0][0], SR)  # warm-up: loads the speaker encoder
    chunk = int(args.chunk_ms * SR / 1000)
    for name, spk in (("given_speaker", True), ("voice_kept", False)):
        rows = [latency(rs, w, s if spk else None, chunk) for w, s in data]
        results[f"latency_{name}"] = {k: round(float(np.max([r[k] for r in rows])) if "max" in k or "first" in k
                                               else float(np.mean([r[k] for r in rows])), 3) for k in rows[0]}
        print(f"latency ({name}):", results[f"latency_{name}"], flush=True)
    for threads in (1, 2):
        results[f"compute_{threads}_threads"] = compute(rs, data, threads, block)
        print(f"compute ({threads} threads):", results[f"compute_{threads}_threads"], flush=True)
    if args.long_seconds > 0:
        for kind in ("offline", "stream"):
            cmd = [sys.executable, __file__, "--memory-child", kind, "--model", str(args.model), "--data",
                   str(args.data), "--count", str(args.count), "--chunk-ms", str(args.chunk_ms), "--long-seconds",
                   str(args.long_seconds), "--offline-seconds", str(args.offline_seconds), "--threads",
                   str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            results[f"memory_{kind}"] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"memory ({kind}):", results[f"memory_{kind}"], flush=True)
        s, o = results["memory_stream"], results["memory_offline"]
        print(f"peak memory: streaming {s['seconds'] / 60:.0f} min {s['peak_mb']:.0f} MB; offline "
              f"{o['seconds'] / 60:.0f} min {o['peak_mb']:.0f} MB ({s['peak_mb'] / o['peak_mb']:.2f}x for "
              f"{s['seconds'] / o['seconds']:.0f}x the input)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
