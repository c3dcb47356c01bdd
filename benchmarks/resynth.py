#!/usr/bin/env python
"""Speed of the default resynthesis call, and how it chooses the voice, in one run.

    .venv/bin/python benchmarks/resynth.py --data data/mini_expresso_120 --count 24 --threads 2

``Resynthesizer.from_pretrained()(wav, sample_rate=sr)`` with no speaker keeps the input's voice: it picks the
closest vocoder speaker. Three ways of calling it are timed on the same held-out files (read speech of the test
split, one file per speaker in turn, 2-6 s long):

- **embedding** (the default where the vocoder stores ``speaker_embeddings.json``): the input's resemblyzer
  embedding against each vocoder speaker's mean training embedding;
- **synthesis** (the fallback for official checkpoints, and the default before speaker embeddings were stored):
  the first 3 s of units vocoded once per vocoder speaker, spectra compared;
- **given speaker**: ``speaker=`` the input's true voice (no choice at all: the floor).

Printed: the CPU, seconds of compute per second of audio (real-time factor) and its inverse ("x real time") for
each, the share of files where the embedding choice agrees with the synthesis choice, and the share where each
choice is the input's true voice. Model loading is timed apart; one warm-up call precedes the timings.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402


def held_out_files(root: Path, speakers: list[str], count: int, split: str = "test",
                   min_seconds: float = 2.0, max_seconds: float = 6.0) -> list[tuple[Path, str]]:
    """``count`` read files of ``split`` whose speaker is a vocoder speaker, taken round-robin over speakers."""
    from speechkit.audio import io
    from speechkit.data.corpora import expresso

    by_speaker: dict[str, list[Path]] = {s: [] for s in speakers}
    for entry in expresso.read_splits(root)[split]:
        info = expresso.parse_stem(entry.stem)
        if info.kind == "read" and info.speaker in by_speaker:
            path = expresso.audio_path(root, entry.stem)
            if min_seconds <= io.info(path).duration <= max_seconds:
                by_speaker[info.speaker].append(path)
    out, i = [], 0
    while len(out) < count and any(i < len(v) for v in by_speaker.values()):
        out += [(v[i], s) for s, v in by_speaker.items() if i < len(v)]
        i += 1
    return out[:count]


def main() -> int:
    from speechkit import Resynthesizer
    from speechkit.audio import io
    from speechkit.hub import DEFAULT_MODEL
    from speechkit.precision import machine_line

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL, help="resynthesis folder (encoder/ + vocoder/)")
    p.add_argument("--data", type=Path, default=Path("data/mini_expresso_120"), help="Expresso-layout corpus")
    p.add_argument("--split", default="test")
    p.add_argument("--count", type=int, default=24)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    t = time.perf_counter()
    rs = Resynthesizer.from_pretrained(args.model)
    load = time.perf_counter() - t
    names = rs.vocoder.speakers or []
    if rs.vocoder.speaker_table is None:
        print(f"error: {args.model}/vocoder has no speaker_embeddings.json (see data_prep/speaker_embeddings.py)",
              file=sys.stderr)
        return 1
    files = held_out_files(args.data, names, args.count, args.split)
    if not files:
        print(f"error: no read {args.split} files of speakers {names} in {args.data}", file=sys.stderr)
        return 1
    audio = [(io.load(f)[0], io.info(f).sample_rate, spk) for f, spk in files]
    seconds = sum(len(w) / sr for w, sr, _ in audio)
    modes = {"embedding": Resynthesizer(rs.encoder, rs.vocoder, voice_match="embedding"),
             "synthesis": Resynthesizer(rs.encoder, rs.vocoder, voice_match="synthesis")}

    def name(s) -> str:
        return s if isinstance(s, str) else names[s]

    rs(audio[0][0], sample_rate=audio[0][1])  # warm-up (the speaker encoder loads here)
    modes["embedding"]._speaker_encoder = rs._speaker_encoder
    results, chosen = {}, {m: [] for m in modes}
    for mode, r in modes.items():
        t = time.perf_counter()
        for wav, sr, _ in audio:
            r(wav, sample_rate=sr)
        results[mode] = time.perf_counter() - t
        for wav, sr, _ in audio:  # the choice alone (untimed)
            enc = r.encode(wav, sr)
            chosen[mode].append(name(r.match_speaker(wav, sr, enc["units"], enc["durations"])))
    t = time.perf_counter()
    for wav, sr, spk in audio:
        rs(wav, sample_rate=sr, speaker=spk)
    results["given speaker"] = time.perf_counter() - t

    truth = [spk for _, _, spk in audio]
    n = len(audio)
    agree = sum(a == b for a, b in zip(chosen["embedding"], chosen["synthesis"], strict=True)) / n
    print(machine_line())
    print(f"{args.model}: loaded in {load:.1f} s; {n} held-out files ({seconds:.1f} s of audio, {args.split} split of "
          f"{args.data}), {args.threads} threads\n")
    print("| voice choice | seconds | real-time factor | x real time | choice = input's voice |")
    print("|---|---:|---:|---:|---:|")
    for mode, sec in results.items():
        correct = (f"{sum(c == s for c, s in zip(chosen[mode], truth, strict=True)) / n:.2f}" if mode in chosen
                   else "(given)")
        print(f"| {mode} | {sec:.2f} | {sec / seconds:.3f} | {seconds / sec:.1f}x | {correct} |")
    print(f"\nembedding choice = synthesis choice on {agree:.2f} of the files "
          f"(speed-up of the default call: {results['synthesis'] / results['embedding']:.1f}x)")
    if args.json:
        args.json.write_text(json.dumps({"seconds": seconds, "times": results, "agreement": agree, "chosen": chosen,
                                         "truth": truth}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
