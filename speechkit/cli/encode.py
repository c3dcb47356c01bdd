"""``speechkit encode``: a folder or manifest of audio -> units jsonl."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  speechkit encode data/mini_expresso/audio_48khz/read -o units.jsonl --encoder exp/hubert/encoder
  speechkit encode train.tsv -o units.jsonl --hubert hubert_base_ls960.pt --layer 6 --kmeans km.bin
  speechkit encode train.tsv -o units.2.jsonl --encoder ENC --shard 2/4      # machine 3 of 4
  speechkit encode train.tsv -o units.jsonl --encoder ENC --resume           # after an interruption

Failures are listed in OUTPUT.errors.tsv and the job goes on."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter, renamed, shard

    p = sub.add_parser("encode", help="audio -> units jsonl (HuBERT + k-means)", formatter_class=HelpFormatter,
                       description="Encode a folder or a fairseq tsv manifest into a units jsonl "
                                   '({"id", "audio", "units", "duration"} per line).', epilog=EXAMPLES)
    p.add_argument("input", type=Path, help="folder of audio files or .tsv manifest")
    p.add_argument("-o", "--output", type=Path, required=True, help="units jsonl to write")
    p.add_argument("--encoder", type=Path, default=None, help="speechkit speech-encoder folder (encoder.json)")
    p.add_argument("--hubert", type=Path, default=None, help="fairseq .pt / HF folder / speechkit HuBERT folder")
    p.add_argument("--mfcc", action="store_true", help="MFCC(+deltas) features instead of HuBERT (iteration 1)")
    p.add_argument("--layer", type=int, default=6, help="HuBERT layer (with --hubert)")
    p.add_argument("--kmeans", type=Path, default=None, help="km.bin / .npy / .safetensors (with --hubert)")
    p.add_argument("--no-dedup", action="store_true", help="keep repeated units (every duration 1)")
    p.add_argument("--f0", action="store_true", help="also write per-unit F0 (pYIN, slow)")
    p.add_argument("--shard", type=shard, default="0/1", help="i/n: encode the i-th of n shards (0-based)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run into the same output")
    p.add_argument("--batch-seconds", type=float, default=60.0,
                   help="padded audio per batch (0 = one utterance at a time; units are the same either way)")
    p.add_argument("--loader", choices=["fairseq2", "torch"], default="fairseq2", help="audio decoding pipeline")
    p.add_argument("--jobs", dest="workers", metavar="N", type=int, default=2, help="parallel audio decoders")
    renamed(p, "--workers", "--jobs")
    p.add_argument("--threads", type=int, default=0, help="torch threads for the model (0 = torch's default)")
    p.add_argument("--fast", action="store_true",
                   help="opt-in bf16 autocast (several times faster on CPUs with AMX/AVX512-BF16 and on GPUs; "
                        "a few percent of units differ from the exact fp32 path); elsewhere fp32, with a warning")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(func=run)


def build_encoder(args: argparse.Namespace):
    from speechkit.errors import SpeechkitError
    from speechkit.units import HubertFeatureReader, KMeansQuantizer, SpeechEncoder

    options = {"deduplicate": not args.no_dedup, "need_f0": args.f0}
    if args.encoder is not None:
        return SpeechEncoder.from_pretrained(args.encoder, **options)
    if (args.hubert is None) == (not args.mfcc) or args.kmeans is None:
        raise SpeechkitError("give --encoder DIR, or --hubert PATH (and --layer N) or --mfcc, with --kmeans PATH")
    if args.mfcc:
        from speechkit.units.mfcc import MfccFeatureReader

        reader = MfccFeatureReader()
    else:
        reader = HubertFeatureReader.from_pretrained(args.hubert, layer=args.layer)
    return SpeechEncoder(reader, KMeansQuantizer.from_pretrained(args.kmeans), **options)


def run(args: argparse.Namespace) -> int:
    import torch

    from speechkit.units.corpus import encode_corpus

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    encoder = build_encoder(args).to(args.device)
    if args.fast:
        encoder.reader.autocast = torch.bfloat16
    stats = encode_corpus(encoder, args.input, args.output, shard=args.shard, resume=args.resume,
                          batch_seconds=args.batch_seconds, loader=args.loader, workers=args.workers)
    print(f"wrote {args.output}: {stats.encoded} new, {stats.skipped} already done, {stats.failed} failed, "
          f"{stats.seconds / 60:.1f} min of audio encoded")
    return 0
