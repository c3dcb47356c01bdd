#!/usr/bin/env python
"""Mel-vocoder speed: Griffin-Lim (the baseline: what the bundle used) vs a Vocos and a mel HiFi-GAN, in one run.

    .venv/bin/python benchmarks/mel_vocoder.py --seconds 10 --vocos checkpoints/default/vocoder/mel_vocoder

Every path turns the same ``--seconds`` of 80-bin log-mel (16 kHz, hop 256: the unit-to-mel decoder's) into a
waveform under ``torch.inference_mode``, on 1 and on 2 threads; printed per path: parameters, GFLOP per second of
audio, median wall time of ``--repeats`` runs after a warm-up, speed as a multiple of real time, and the ratio to
Griffin-Lim on the same threads. The first line names the CPU.

- **Griffin-Lim**: the bundle's (``UnitMelConfig``'s 32 iterations, NNLS mel inversion with 50 updates, power 1.0).
  Its FLOPs are counted analytically: NNLS ``4 * 80 * 513`` per update and frame, each Griffin-Lim iteration one
  STFT and one inverse STFT of ``1024``-point real FFTs (``2.5 * N log2 N`` each) plus the window products;
- **Vocos**: a folder given with ``--vocos`` (else the default size with random weights: speed does not depend on
  the weights); FLOPs from ``torch.utils.flop_counter`` (convolutions and matrix products) plus the inverse FFT;
- **mel HiFi-GAN V1** (hop 256 = 8·8·2·2, 512 initial channels; random weights): the mel HiFi-GAN the mission names,
  for its cost; its FLOPs from the same counter.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]   # benchmarks/tokenize.py shadows stdlib
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

HOP, N_FFT, MELS, SR = 256, 1024, 80, 16000


def griffin_lim():
    from speechkit.vocoders.unitmel.config import UnitMelConfig
    from speechkit.vocoders.unitmel.vocoder import griffin_lim as build

    return build(UnitMelConfig(num_units=1))


def griffin_lim_flops(frames: int, n_iter: int = 32, nnls_iters: int = 50) -> float:
    nnls = nnls_iters * 4 * MELS * (N_FFT // 2 + 1) * frames
    fft = 2.5 * N_FFT * math.log2(N_FFT)                 # one real FFT of N points (half a complex one)
    per_iter = frames * (2 * fft + 4 * N_FFT + 6 * (N_FFT // 2 + 1))   # STFT + iSTFT + windows + phase update
    return nnls + n_iter * per_iter


def vocos(folder: str | None):
    from speechkit.vocoders.vocos.vocoder import VocosConfig, VocosVocoder, build_vocos

    if folder:
        return VocosVocoder.from_pretrained(folder)
    cfg = VocosConfig()
    return VocosVocoder(build_vocos(cfg), cfg)


def mel_hifigan():
    from speechkit.vocoders.hifigan.config import GeneratorConfig, MelHiFiGANConfig
    from speechkit.vocoders.hifigan.factory import build_mel_hifigan
    from speechkit.vocoders.hifigan.mel_vocoder import HiFiGANVocoder

    cfg = MelHiFiGANConfig(num_mels=MELS, sample_rate=SR, generator=GeneratorConfig(
        upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4)))
    return HiFiGANVocoder(build_mel_hifigan(cfg).init_weights(), cfg)


def counted_flops(module, mel: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        module(mel)
    return float(counter.get_total_flops())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="audio per run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", default="1,2", help="thread counts to time")
    p.add_argument("--vocos", default=None, help="a Vocos folder (default: random weights of the default size)")
    p.add_argument("--no-hifigan", action="store_true", help="skip the mel HiFi-GAN row (the slowest)")
    args = p.parse_args()
    from speechkit.precision import machine_line

    print(machine_line())
    frames = int(args.seconds * SR / HOP)
    mel = torch.randn(MELS, frames, generator=torch.Generator().manual_seed(0)) - 4.0
    paths = {"Griffin-Lim (32 it., NNLS)": griffin_lim(), "Vocos": vocos(args.vocos)}
    if not args.no_hifigan:
        paths["mel HiFi-GAN V1"] = mel_hifigan()
    flops = {"Griffin-Lim (32 it., NNLS)": griffin_lim_flops(frames),
             "Vocos": counted_flops(paths["Vocos"], mel) + frames * 2.5 * N_FFT * math.log2(N_FFT)}
    if "mel HiFi-GAN V1" in paths:
        flops["mel HiFi-GAN V1"] = counted_flops(paths["mel HiFi-GAN V1"], mel)
    params = {k: sum(q.numel() for q in m.parameters()) for k, m in paths.items()}
    print(f"{args.seconds:g} s of log-mel ({frames} frames), median of {args.repeats} runs after one warm-up")
    print("| path | threads | parameters | GFLOP per audio second | seconds | x real time | vs Griffin-Lim |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        base = None
        for name, voc in paths.items():
            with torch.inference_mode():
                voc(mel)
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    voc(mel)
                    times.append(time.perf_counter() - t)
            sec = statistics.median(times)
            base = base or sec
            print(f"| {name} | {threads} | {params[name] / 1e6:.2f} M | {flops[name] / args.seconds / 1e9:.2f} | "
                  f"{sec:.3f} | {args.seconds / sec:.1f} | {base / sec:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
