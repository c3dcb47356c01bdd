#!/usr/bin/env python
"""Tokenisation speed: textlesslib's one-utterance-at-a-time fp32 loop vs `speechkit encode`, in one run.

    .venv/bin/python benchmarks/tokenize.py --minutes 10

Setup: a HuBERT-base-shaped model (random weights, 12 layers x 768, layer 6 read) and k = 500 centroids fitted on
its features; 10 minutes of synthetic speech (the mini-Expresso, 48 kHz) cut into 2-10 s utterances.

- **reference** (textlesslib's way): for each file in turn, read it, resample to 16 kHz, run torchaudio's
  wav2vec2/HuBERT implementation (the fairseq architecture, direct ``nn.Conv1d`` front end) with the same weights,
  then scikit-learn ``predict`` on the features.
- **speechkit exact**: ``encode_corpus`` (fairseq2 decoding in background threads, longest-first padded batches,
  matmul front end, fp32).
- **speechkit fast**: the same with ``--fast`` (bf16 autocast; on a CPU without AVX512-BF16 / AMX it falls back
  to fp32, and the row says so).

Printed: real-time factor, speed ratio vs the reference, unit agreement with the reference, achieved GFLOP/s and
its share of the machine's measured fp32 matmul peak; and the decoding pipelines alone (fairseq2 vs DataLoader).
The first line names the CPU (model, ISA flags that decide the fast paths, threads).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `tokenize`, which numpy/inspect import: take the script's own
# folder off the module path before importing anything else, and put the repository root on it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from speechkit.audio import io  # noqa: E402
from speechkit.units import HubertFeatureReader, KMeansQuantizer, SpeechEncoder  # noqa: E402
from speechkit.units.corpus import encode_corpus  # noqa: E402
from speechkit.units.hubert import HubertConfig, build_hubert  # noqa: E402
from speechkit.units.hubert.interop import to_fairseq_state_dict  # noqa: E402


def make_corpus(root: Path, minutes: float, seed: int = 0) -> list[Path]:
    """Mini-Expresso read speech, concatenated and cut into 2-10 s utterances (48 kHz wav)."""
    from speechkit.synth.synthetic import prepare_mini_expresso

    out = root / f"utterances_{minutes:g}min"
    files = sorted(out.glob("*.wav"))
    if files:
        return files
    src = prepare_mini_expresso(root / f"mini_expresso_{minutes:g}min", minutes=minutes * 1.05, jobs=2,
                                conversations=0)
    stream = np.concatenate([io.load(f)[0].numpy() for f in sorted((src / "audio_48khz/read").rglob("*.wav"))])
    rng, pos, i, sr = np.random.default_rng(seed), 0, 0, 48000
    while pos < min(len(stream), int(minutes * 60 * sr)):
        n = int(rng.uniform(2, 10) * sr)
        io.save(out / f"utt{i:04d}.wav", stream[pos : pos + n], sr)
        pos, i = pos + n, i + 1
    return sorted(out.glob("*.wav"))


def matmul_peak(dtype: torch.dtype) -> float:
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    for _ in range(3):
        a @ b
    t, n = time.perf_counter(), 10
    for _ in range(n):
        a @ b
    return 2 * 2048**3 * n / (time.perf_counter() - t) / 1e9


def flops(cfg: HubertConfig, samples: int, layer: int) -> float:
    """Multiply-adds x 2 of the front end and of transformer layers 1..layer for one utterance."""
    total, n, c_in = 0.0, samples, 1
    for c_out, k, s in cfg.conv_layers:
        n = (n - k) // s + 1
        total += 2 * n * c_in * k * c_out
        c_in = c_out
    d, f, t = cfg.embed_dim, cfg.ffn_dim, n
    total += 2 * t * c_in * d  # projection
    total += 2 * t * d * (d // cfg.conv_pos_groups) * cfg.conv_pos  # positional convolution
    total += layer * (2 * t * (4 * d * d + 2 * d * f) + 4 * t * t * d)
    return total


def torchaudio_model(state: dict, cfg: HubertConfig):
    from torchaudio.models import wav2vec2_model
    from torchaudio.models.wav2vec2.utils.import_fairseq import _convert_state_dict

    m = wav2vec2_model(
        extractor_mode="group_norm", extractor_conv_layer_config=cfg.conv_layers, extractor_conv_bias=False,
        encoder_embed_dim=cfg.embed_dim, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=cfg.conv_pos,
        encoder_pos_conv_groups=cfg.conv_pos_groups, encoder_num_layers=cfg.num_layers,
        encoder_num_heads=cfg.num_heads, encoder_attention_dropout=0.0, encoder_ff_interm_features=cfg.ffn_dim,
        encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=False, encoder_layer_drop=0.0,
        aux_num_out=None)
    m.load_state_dict(_convert_state_dict(to_fairseq_state_dict(state, cfg)))
    return m.eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--layer", type=int, default=6)
    p.add_argument("--k", type=int, default=500)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--data", type=Path, default=Path("data/bench_tokenize"))
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    files = make_corpus(args.data, args.minutes)
    seconds = sum(io.info(f).duration for f in files)
    torch.manual_seed(0)
    cfg = HubertConfig()
    model = build_hubert(cfg).eval()
    reader = HubertFeatureReader(model, cfg, layer=args.layer)
    ref_model = torchaudio_model(model.state_dict(), cfg)

    from sklearn.cluster import MiniBatchKMeans

    train = torch.cat([reader(io.load(f, sample_rate=16000)[0]) for f in files[:20]]).numpy()
    km = MiniBatchKMeans(n_clusters=args.k, random_state=0, n_init=1, batch_size=4096, max_iter=20).fit(train)
    quantizer = KMeansQuantizer(km.cluster_centers_)
    total_flops = sum(flops(cfg, int(io.info(f).num_frames / 3), args.layer) for f in files)
    peak32 = matmul_peak(torch.float32)
    from speechkit.precision import fast_path_missing, machine_line

    # an emulated bf16 matmul (AVX2-only CPUs) is ~30x slower than fp32: no peak to measure there
    peak16 = matmul_peak(torch.bfloat16) if fast_path_missing("bf16") is None else float("nan")

    # ---- reference: one utterance at a time, fp32, torchaudio model, sklearn predict
    t = time.perf_counter()
    ref_units = {}
    with torch.inference_mode():
        for f in files:
            wav, sr = io.load(f)
            wav = io.resample(wav, sr, 16000)
            feats = ref_model.extract_features(wav[None], num_layers=args.layer)[0][-1][0]
            ref_units[f.stem] = km.predict(feats.numpy())
    t_ref = time.perf_counter() - t

    results = {"reference": dict(time=t_ref, agreement=1.0)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, dtype in (("speechkit exact", None), ("speechkit fast (bf16)", torch.bfloat16)):
            reader.autocast = dtype
            if dtype is not None and reader.autocast is None:
                name = "speechkit fast (bf16 -> fp32: no bf16 on this CPU)"
            enc = SpeechEncoder(reader, quantizer, deduplicate=False)
            out = Path(tmp) / f"{name.split()[1]}.jsonl"
            t = time.perf_counter()
            encode_corpus(enc, files[0].parent, out, progress=False)
            elapsed = time.perf_counter() - t
            same = total = 0
            for line in out.read_text().splitlines():
                r = json.loads(line)
                u, ref = np.asarray(r["units"]), ref_units[r["id"]]
                same, total = same + int((u == ref).sum()), total + len(ref)
            results[name] = dict(time=elapsed, agreement=same / total)
        # decoding pipelines alone
        items = [{"id": f.stem, "path": str(f)} for f in files]
        for loader in ("fairseq2", "torch"):
            t = time.perf_counter()
            for _ in io.iter_audio(items, 16000, loader=loader, workers=2):
                pass
            results[f"decode only: {loader}"] = dict(time=time.perf_counter() - t)

    print("\n" + machine_line())
    print(f"{len(files)} utterances, {seconds / 60:.1f} min of audio; {args.threads} threads; "
          f"HuBERT-base layer {args.layer}, k={args.k}; {total_flops / 1e12:.2f} TFLOP per pass")
    bf16_peak = f"{peak16:.0f} GFLOP/s" if math.isfinite(peak16) else "not measured (no bf16 arithmetic)"
    print(f"measured matmul peak: fp32 {peak32:.0f} GFLOP/s, bf16 {bf16_peak}\n")
    print("| path | seconds | real-time factor | speed vs reference | unit agreement | GFLOP/s | % of fp32 peak |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        if name.startswith("decode"):
            continue
        gflops = total_flops / r["time"] / 1e9
        print(f"| {name} | {r['time']:.1f} | {r['time'] / seconds:.3f} | {t_ref / r['time']:.2f}x | "
              f"{100 * r['agreement']:.2f}% | {gflops:.0f} | {100 * gflops / peak32:.0f}% |")
    # where the exact path's gain is: the conv front end on one 6 s utterance, plain vs tiled vs torchaudio's
    wav = io.load(files[0], sample_rate=16000)[0][: 6 * 16000][None]
    fe = model.feature_extractor

    def ms(fn, repeats=5):
        with torch.inference_mode():
            fn()
            t = time.perf_counter()
            for _ in range(repeats):
                fn()
        return 1000 * (time.perf_counter() - t) / repeats
    tiles = fe.tile_frames
    fe.tile_frames = 0
    plain = ms(lambda: fe(wav))
    fe.tile_frames = tiles
    tiled = ms(lambda: fe(wav))
    print(f"\nfront end, {wav.shape[1] / 16000:.1f} s utterance: plain {plain:.0f} ms, tiled {tiled:.0f} ms, "
          f"torchaudio {ms(lambda: ref_model.feature_extractor(wav, None)):.0f} ms; whole model to layer {args.layer}: "
          f"speechkit {ms(lambda: model(wav, output_layer=args.layer)):.0f} ms, "
          f"torchaudio {ms(lambda: ref_model.extract_features(wav, num_layers=args.layer)):.0f} ms")
    print("\n| decoding + resampling to 16 kHz only | seconds |\n|---|---:|")
    for name, r in results.items():
        if name.startswith("decode"):
            print(f"| {name.split(': ')[1]} | {r['time']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "seconds": seconds, "peak_fp32": peak32,
                                         "peak_bf16": peak16, "tflop": total_flops / 1e12}, indent=2))
    return 0 if math.isfinite(t_ref) else 1


if __name__ == "__main__":
    sys.exit(main())
