#!/usr/bin/env python
"""Unit-vocoder speed: textlesslib's inference path vs ``CodeHiFiGANVocoder``'s exact and bf16 paths, in one run.

    .venv/bin/python benchmarks/vocoder.py --seconds 10 --threads 1

Setup: the released V1 unit vocoder size (512 initial channels, upsampling 5·4·4·2·2, resblocks 3/7/11, 16 kHz,
hop 320) with random weights and K = 100; ``--seconds`` of random units (50 per second).

- **textlesslib** (the baseline: what users of textlesslib run): weight norm removed at load (textlesslib's
  ``CodeHiFiGANVocoder.__init__`` calls ``remove_weight_norm()``), the released 1-D convolutions, forward without
  ``no_grad`` (autograd records the graph), the whole sequence in one pass;
- **weight norm + autograd** (a second reference row: the training-time modules run as they are): weights
  recomputed from g and v at every call, autograd on, one pass;
- **exact**: ``CodeHiFiGANVocoder`` as loaded (weight norm folded, ``torch.inference_mode``, chunks of
  ``chunk_frames`` with overlap, fp32);
- **bf16**: the same with ``voc.set_precision("bf16")`` (opt-in; on a CPU without AVX512-BF16 / AMX it falls back
  to fp32, and the row says so).

Each path runs in a fresh subprocess (so its peak resident memory is its own). Printed per path: median wall time
of ``--repeats`` runs after one warm-up, real-time factor (seconds of compute per second of audio), speed ratio
vs the baseline, peak memory above the loaded model (VmHWM − VmRSS before synthesis), achieved GFLOP/s (convolution
FLOPs counted from the layer shapes) and its share of the measured fp32 matmul peak, max |diff| vs the baseline.
The first line names the CPU (model, ISA flags that decide the fast paths, threads).

With ``--wer-model DIR --wer-units units.jsonl [--wer-list splits/test.txt]`` it also transcribes the originals
and the fp32 / bf16 resyntheses of those utterances with pocketsphinx and prints their WERs against the corpus
transcripts (``--wer-only``: just that).
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
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from speechkit.vocoders import CodeHiFiGANVocoder  # noqa: E402
from speechkit.vocoders.hifigan.factory import build_code_hifigan, code_hifigan_v1  # noqa: E402


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def conv_flops(model: torch.nn.Module, features: torch.Tensor) -> int:
    """Multiply-adds × 2 of every convolution for one pass over ``features`` (from layer shapes)."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        k = m.kernel_size[0]
        if isinstance(m, torch.nn.ConvTranspose1d):
            total += 2 * m.in_channels * m.out_channels // m.groups * k * inp[0].shape[-1]
        else:
            total += 2 * m.in_channels // m.groups * m.out_channels * k * out.shape[-1]

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, torch.nn.Conv1d | torch.nn.ConvTranspose1d)]
    with torch.inference_mode():
        model(features)
    for h in handles:
        h.remove()
    return total


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def build(seed: int = 0) -> CodeHiFiGANVocoder:
    torch.manual_seed(seed)
    cfg = code_hifigan_v1(100)
    model = build_code_hifigan(cfg)
    return CodeHiFiGANVocoder(model, cfg)


def run_variant(name: str, seconds: float, repeats: int, chunk_frames: int | None, out: str) -> None:
    """One path in this (fresh) process; writes its timings, memory and waveform to ``out``."""
    voc = build()
    units = torch.randint(0, 100, (int(seconds * 50),), generator=torch.Generator().manual_seed(1))
    features = voc.features(units)
    precision = "fp32"
    if name in ("textlesslib", "weight_norm"):
        gen = voc.generator
        if name == "weight_norm":
            gen.apply_weight_norm()  # g, v -> weight recomputed at every call, as the training modules do
        for p in gen.parameters():  # textlesslib's forward runs without no_grad: autograd records the graph
            p.requires_grad_(True)

        def synth():
            return gen(features.clone(), False)[0, 0].detach()
    else:
        voc.chunk_frames = chunk_frames
        if name == "bf16":
            precision = voc.set_precision("bf16").precision

        def synth():
            return voc(units)
    synth()  # warm-up
    times, rss_before, peak = [], 0, 0
    for _ in range(repeats):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        rss_before = _status("VmRSS")
        t = time.perf_counter()
        wav = synth()
        times.append(time.perf_counter() - t)
        peak = max(peak, _status("VmHWM") - rss_before)
        del wav
    wav = synth().detach().float()
    torch.save({"times": times, "peak": peak, "wav": wav, "precision": precision}, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of units (50 Hz) to synthesise")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk-frames", type=int, default=500, help="chunk length of the exact / bf16 paths")
    ap.add_argument("--wer-model", type=Path, default=None, help="trained vocoder folder for the bf16 WER check")
    ap.add_argument("--wer-units", type=Path, default=None, help="units jsonl of test utterances (Expresso stems)")
    ap.add_argument("--wer-root", type=Path, default=Path("data/mini_expresso"), help="corpus with transcripts")
    ap.add_argument("--wer-list", type=Path, default=None, help="stems to use, in order (e.g. splits/test.txt)")
    ap.add_argument("--wer-count", type=int, default=12, help="utterances for the WER check")
    ap.add_argument("--wer-only", action="store_true", help="skip the speed measurements")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.variant:
        run_variant(args.variant, args.seconds, args.repeats, args.chunk_frames, args.out)
        return

    if args.wer_only:
        wer_check(args.wer_model, args.wer_units, args.wer_root, args.wer_list, args.wer_count)
        return
    import tempfile

    voc = build()
    features = voc.features(torch.zeros(int(args.seconds * 50), dtype=torch.long))
    flops = conv_flops(voc.generator, features)
    peak_gflops = matmul_peak()
    from speechkit.precision import machine_line

    print(machine_line())
    print(f"V1 unit vocoder, {args.seconds:g} s of 16 kHz audio, {args.threads} thread(s); convolutions "
          f"{flops / 1e9:.1f} GFLOP ({flops / 1e9 / args.seconds:.1f} GFLOP per audio second); fp32 matmul peak "
          f"{peak_gflops:.0f} GFLOP/s")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("textlesslib", "weight_norm", "exact", "bf16"):
            out = f"{tmp}/{name}.pt"
            subprocess.run([sys.executable, __file__, "--variant", name, "--out", out, "--seconds", str(args.seconds),
                            "--repeats", str(args.repeats), "--threads", str(args.threads), "--chunk-frames",
                            str(args.chunk_frames)], check=True,
                           # fixed mmap threshold: freed tensors go back to the OS, so each peak is the path's own
                           env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
            results[name] = torch.load(out, weights_only=True)
    base = statistics.median(results["textlesslib"]["times"])
    labels = {"textlesslib": "textlesslib (baseline)", "weight_norm": "weight norm + autograd", "exact": "exact",
              "bf16": "bf16" if results["bf16"]["precision"] == "bf16" else "bf16 -> fp32 (no bf16 on this CPU)"}
    width = max(map(len, labels.values()))
    print(f"{'path':<{width}} {'time s':>7} {'RTF':>6} {'speed':>6} {'peak MB':>8} {'GFLOP/s':>8} {'% peak':>7} "
          f"{'max|diff|':>10}")
    for name, r in results.items():
        t = statistics.median(r["times"])
        diff = float((r["wav"] - results["textlesslib"]["wav"]).abs().max())
        print(f"{labels[name]:<{width}} {t:7.2f} {t / args.seconds:6.3f} {base / t:5.2f}x {r['peak'] / 2**20:8.0f} "
              f"{flops / t / 1e9:8.1f} {100 * flops / t / 1e9 / peak_gflops:6.0f}% {diff:10.2e}")
    print("memory ratio exact/textlesslib: "
          f"{results['exact']['peak'] / max(results['textlesslib']['peak'], 1):.3f}")
    if args.wer_model is not None:
        wer_check(args.wer_model, args.wer_units, args.wer_root, args.wer_list, args.wer_count)


def wer_check(model_dir: Path, units_path: Path, root: Path, list_path: Path | None, count: int) -> None:
    """pocketsphinx WER of the original files and of their fp32 / bf16 resyntheses (speaker and style from the
    Expresso stems; the units' own durations, and fp32 with predicted durations)."""
    from speechkit.audio import io
    from speechkit.data.corpora.expresso import parse_stem, read_transcriptions
    from speechkit.data.manifest import read_units_jsonl
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.wer import wer

    asr, texts = PocketSphinxASR(), read_transcriptions(root)
    records = read_units_jsonl(units_path)
    if list_path is not None:
        order = [line.split()[0] for line in list_path.read_text().splitlines() if line.strip()]
        by_stem = {Path(r.audio).stem: r for r in records}
        records = [by_stem[s] for s in order if s in by_stem]
    records = records[:count]
    voc = CodeHiFiGANVocoder.from_pretrained(model_dir)
    refs = [texts[Path(r.audio).stem] for r in records]
    hyps: dict[str, list[str]] = {"original": [asr.transcribe(io.load(r.audio, sample_rate=16000)[0])
                                               for r in records]}
    for precision, predicted in (("fp32", False), ("bf16", False), ("fp32", True)):
        voc.set_precision(precision)
        name = f"{precision}{' predicted durations' if predicted else ''}"
        hyps[name] = []
        for r in records:
            s = parse_stem(Path(r.audio).stem)
            kw = {"dur_prediction": True} if predicted else {"durations": r.duration}
            wav = voc(r.units, speaker=s.speaker, style=s.style, **kw)
            hyps[name].append(asr.transcribe(io.resample(wav, voc.output_sample_rate, 16000)))
    print(f"pocketsphinx WER on {len(records)} utterances: " +
          ", ".join(f"{k} {wer(refs, v):.3f}" for k, v in hyps.items()))
    if any(h.strip() for h in hyps["fp32"]):  # how far the bf16 output's transcripts are from the fp32 output's
        print(f"bf16 transcripts against the fp32 output's transcripts: WER {wer(hyps['fp32'], hyps['bf16']):.3f}")


if __name__ == "__main__":
    main()
