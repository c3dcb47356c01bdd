"""Streaming resynthesis against the offline call, on held-out read utterances of the bundle's mini-Expresso.

1. ``agreement``: the share of 20 ms frames whose streamed (final) unit equals the offline unit, by encoder left
   context and lookahead (the table of docs/streaming.md).
2. ``wer``: pocketsphinx WER of the offline and the streamed output (given the true speaker) for several block /
   lookahead settings, output length against the offline call's, and the streamed default call (voice kept).
3. ``voice``: how often the voice chosen from the first N seconds (speaker embedding) is the true speaker.

Example:
    python eval/streaming.py --data data/mini_expresso_120 --limit 24 -o eval/streaming
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

PARTS = ("agreement", "wer", "voice")


def _chunks(wav: torch.Tensor, n: int):
    return (wav[i: i + n] for i in range(0, len(wav), n))


def main() -> int:
    from default_bundle import _test_items

    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.wer import wer
    from speechkit.pipeline import Resynthesizer, StreamConfig
    from speechkit.precision import machine_summary
    from speechkit.units.streaming import StreamingUnitEncoder

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--data", type=Path, required=True, help="the mini-Expresso the bundle was trained on")
    p.add_argument("--limit", type=int, default=48, help="held-out read utterances (interleaved over voices)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--settings", default="default,left100,block4,lookahead8,lookahead12",
                   help="stream settings of the wer part (names in the code)")
    p.add_argument("-o", "--output", type=Path, default=Path("eval/streaming"))
    args = p.parse_args()
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        p.error(f"--parts: unknown {sorted(parts - set(PARTS))}")
    torch.set_num_threads(args.threads)
    args.output.mkdir(parents=True, exist_ok=True)
    rs = Resynthesizer.from_pretrained(args.model)
    items = _test_items(args.data, args.limit)
    wavs = [io.load(it["path"], sample_rate=16000)[0] for it in items]
    seconds = sum(len(w) for w in wavs) / 16000
    previous = args.output / "results.json"
    results = json.loads(previous.read_text()) if previous.is_file() else {}
    results.update({"machine": machine_summary(), "utterances": len(items),
                    "audio_seconds": round(seconds, 1), "date": time.strftime("%Y-%m-%d")})

    if "agreement" in parts:
        frame_enc = type(rs.encoder)(rs.encoder.reader, rs.encoder.quantizer, deduplicate=False)
        offline = [frame_enc(w)["units"] for w in wavs]
        table = {}
        for left in (25, 50, 100):
            for ahead in (0, 4, 8, 12, 16, 24):
                same = total = 0
                for w, ref in zip(wavs, offline, strict=True):
                    s = StreamingUnitEncoder(frame_enc, block=8, left_context=left, lookahead=ahead)
                    units = torch.cat([b.final for b in [*s.push(w), *s.flush()]])
                    same += int((units == ref).sum())
                    total += len(ref)
                table[f"{left},{ahead}"] = round(same / total, 3)
                print(f"agreement left {left} lookahead {ahead}: {same / total:.3f}", flush=True)
        results["agreement"] = table

    if "wer" in parts:
        asr = PocketSphinxASR()
        texts = [it["text"] for it in items]
        hyp, kept = [], []
        t = time.perf_counter()
        offline = [rs(w, 16000, speaker=it["speaker"]) for w, it in zip(wavs, items, strict=True)]
        offline_rtf = (time.perf_counter() - t) / seconds
        hyp = [asr.transcribe(y) for y in offline]
        kept = [asr.transcribe(rs(w, 16000)) for w in wavs]
        rows = {"offline": {"wer": round(wer(texts, hyp), 3), "rtf": round(offline_rtf, 3)},
                "offline_default_call": {"wer": round(wer(texts, kept), 3)}}
        print("offline", rows["offline"], rows["offline_default_call"], flush=True)
        settings = {"default": StreamConfig(), "left100": StreamConfig(left_context=100),
                    "block4": StreamConfig(block=4), "lookahead8": StreamConfig(lookahead=8),
                    "lookahead12": StreamConfig(lookahead=12)}
        for name, cfg in settings.items():
            if name not in args.settings.split(","):
                continue
            t = time.perf_counter()
            outs = [torch.cat(list(rs.stream(_chunks(w, 1600), 16000, speaker=it["speaker"], config=cfg)))
                    for w, it in zip(wavs, items, strict=True)]
            rtf = (time.perf_counter() - t) / seconds
            ratio = [len(y) / len(o) for y, o in zip(outs, offline, strict=True)]
            rows[name] = {"block": cfg.block, "left_context": cfg.left_context, "lookahead": cfg.lookahead,
                          "latency_ms": round(1000 * cfg.latency_seconds(rs.encoder.frame_rate)),
                          "wer": round(wer(texts, [asr.transcribe(y) for y in outs]), 3), "rtf": round(rtf, 3),
                          "length_ratio_min": round(min(ratio), 4), "length_ratio_max": round(max(ratio), 4)}
            print(name, rows[name], flush=True)
        outs = [torch.cat(list(rs.stream(_chunks(w, 1600), 16000))) for w in wavs]
        rows["default_call"] = {"wer": round(wer(texts, [asr.transcribe(y) for y in outs]), 3)}
        print("streamed default call", rows["default_call"], flush=True)
        results["wer"] = rows

    if "voice" in parts:
        from speechkit.metrics.speaker import SpeakerEncoder

        spk = SpeakerEncoder()
        table = {}
        for secs in (0.5, 1.0, 2.0, 3.0):
            hits = [rs.vocoder.speaker_table.closest(spk.embed(w[: int(secs * 16000)], 16000)) == it["speaker"]
                    for w, it in zip(wavs, items, strict=True)]
            table[str(secs)] = round(float(np.mean(hits)), 3)
            print(f"voice from the first {secs} s: {table[str(secs)]}", flush=True)
        results["voice_accuracy"] = table

    previous.write_text(json.dumps(results, indent=1))
    print(f"wrote {previous}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
