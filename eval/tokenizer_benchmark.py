#!/usr/bin/env python
"""Tokenizer benchmark: which units should ship? Cheap enough to run per candidate (no HiFi-GAN per tokenizer).

    .venv/bin/python eval/tokenizer_benchmark.py mfcc=exp/tok/mfcc200/encoder bundle=checkpoints/default/encoder \
        --data data/mini_expresso_120 --decoder-minutes 20 -o eval/tokenizers/table.md

For each speech-encoder folder (HuBERT or MFCC k-means), on a synthetic mini-Expresso whose phone timings are known
(the synthesiser's own, :func:`speechkit.synth.synthetic.phone_alignments`):

- **PNMI, phone purity** of the test split's frame units against the phone of each 20 ms frame (silence left out);
- **ABX** (ZeroSpeech-style triphone phone discrimination, DTW over units) within and across speakers, test split;
- **speaker leakage**: speaker-ID accuracy of a logistic regression on unit histograms (train split utterances ->
  test split utterances), beside chance;
- **bitrate** of the deduplicated units (entropy x units per second) on the test split;
- **decodability**: a fixed unit-to-mel decoder (``speechkit train unit_mel preset=probe``: 4 dilated residual
  layers, about 0.9 M parameters, speaker and style embeddings, L1 to HiFi-GAN log-mel) trained on the train
  split's units for ``--decoder-steps`` (or ``--decoder-minutes`` of CPU time), then a fixed Griffin-Lim (32
  iterations, NNLS mel inversion); pocketsphinx WER on ``--test-count``
  test utterances (round-robin over speakers) and the decoder's log-mel L1 on them. Printed beside the originals'
  WER and the ceiling of this path (the true log-mel through Griffin-Lim).

Everything a candidate needs is cached under ``--work`` (units, decoder run), so re-running adds new candidates
only. ``--preset debug`` shrinks every budget for the CI smoke run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

HOP_SECONDS = 0.02


def split_files(root: Path, split: str) -> list[tuple[str, Path, str, str]]:
    """``(stem, path, speaker, style)`` of the read files of ``split``."""
    from speechkit.data.corpora import expresso

    out = []
    for e in expresso.read_splits(root)[split]:
        info = expresso.parse_stem(e.stem)
        if info.kind == "read":
            out.append((e.stem, expresso.audio_path(root, e.stem), info.speaker, info.style))
    return out


def round_robin(files: list, count: int) -> list:
    """``count`` files taken in turn from each speaker (their own order kept)."""
    by: dict[str, list] = defaultdict(list)
    for f in files:
        by[f[2]].append(f)
    out, i = [], 0
    while len(out) < count and any(i < len(v) for v in by.values()):
        out += [v[i] for v in by.values() if i < len(v)]
        i += 1
    return out[:count]


def frame_units(encoder, path: Path) -> list[int]:
    from speechkit.audio import io

    wav, sr = io.load(path)
    with torch.inference_mode():
        out = encoder(wav, sample_rate=sr)
    return torch.repeat_interleave(out["units"], out["durations"]).tolist()


def transcribe_all(asr, wavs: list[torch.Tensor]) -> list[str]:
    return [asr.transcribe(w) for w in wavs]


def inverter():
    """The fixed mel-to-waveform step of every decodability row: Griffin-Lim, 32 iterations from zero phases, NNLS
    inversion of the mel filters (the unit-to-mel vocoder's defaults)."""
    from speechkit.vocoders.griffinlim import GriffinLimVocoder
    from speechkit.vocoders.unitmel.config import UnitMelConfig

    cfg = UnitMelConfig(num_units=1)
    m = cfg.mel
    return GriffinLimVocoder(sample_rate=m.sample_rate, n_fft=m.n_fft, hop_length=m.hop_length, win_length=m.win_length,
                             num_mels=m.num_mels, fmin=m.fmin, fmax=m.fmax, n_iter=cfg.griffin_lim_iters,
                             power=cfg.griffin_lim_power, inversion=cfg.griffin_lim_inversion)


def references(args, test: list, work: Path) -> dict:
    """Originals' WER and the Griffin-Lim ceiling on the decodability test set (cached)."""
    from speechkit.audio import io
    from speechkit.data.corpora.expresso import read_transcriptions
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.wer import wer
    from speechkit.train.unit_mel import mel_transform
    from speechkit.vocoders.unitmel.config import UnitMelConfig

    path = work / "references.json"
    key = [s for s, *_ in test]
    if path.is_file() and json.loads(path.read_text()).get("stems") == key:
        return json.loads(path.read_text())
    texts = read_transcriptions(args.data)
    mel, gl = mel_transform(UnitMelConfig(num_units=1)), inverter()
    asr = PocketSphinxASR()
    originals = [io.load(p, sample_rate=16000)[0] for _, p, _, _ in test]
    with torch.inference_mode():
        ceiling = [gl(mel(w[None])[0]) for w in originals]
    refs = [texts[s] for s in key]
    out = {"stems": key, "originals": wer(refs, transcribe_all(asr, originals)),
           "ceiling": wer(refs, transcribe_all(asr, ceiling))}
    path.write_text(json.dumps(out, indent=1))
    return out


def decodability(args, name: str, encoder, work: Path, train_files: list, test: list) -> dict:
    """Trains the probe decoder on the train split's units, then WER and log-mel L1 on the test set."""
    from speechkit.audio import io
    from speechkit.cli.train import compose
    from speechkit.data.corpora.expresso import read_transcriptions
    from speechkit.data.manifest import ManifestEntry, write_tsv
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.wer import wer
    from speechkit.train.unit_mel import mel_transform, run
    from speechkit.units.corpus import encode_corpus
    from speechkit.vocoders import UnitMelVocoder

    units_path = work / "train.units.jsonl"
    if not (work / "train.done").is_file():
        tsv = work / "train.tsv"
        write_tsv(tsv, args.data, [ManifestEntry(str(p.relative_to(args.data)), io.info(p).num_frames)
                                   for _, p, _, _ in train_files])
        encoder.deduplicate = True
        encode_corpus(encoder, tsv, units_path, resume=units_path.exists(), progress=False)
        (work / "train.done").write_text("")
    run_dir = work / "decoder"
    if not (run_dir / "model" / "config.json").is_file():
        overrides = [f"preset={args.decoder_preset}", f"data.units={units_path}", "data.speaker=expresso",
                     "data.style=expresso", "data.valid_count=0", f"model.num_units={encoder.vocab_size}",
                     f"out={run_dir}", f"train.threads={args.threads}"]
        # a step budget is the same for every candidate whatever else the machine does; minutes are not
        overrides += ([f"optim.max_steps={args.decoder_steps}"] if args.decoder_steps else
                      [f"train.max_minutes={args.decoder_minutes}"])
        t = time.time()
        run(compose("unit_mel", overrides))
        print(f"[{name}] decoder trained for {(time.time() - t) / 60:.1f} min", flush=True)
    voc = UnitMelVocoder.from_pretrained(run_dir / "model")
    steps = json.loads((run_dir / "model" / "config.json").read_text()).get("step")
    mel, gl = mel_transform(voc.config), inverter()
    texts = read_transcriptions(args.data)
    asr = PocketSphinxASR()
    hyps, l1 = [], []
    encoder.deduplicate = True
    for _, path, speaker, style in test:
        wav, sr = io.load(path)
        with torch.inference_mode():
            enc = encoder(wav, sample_rate=sr)
            pred = voc.mel(enc["units"], speaker=speaker, style=style, durations=enc["durations"])
            ref = io.resample(wav, sr, 16000)
            true = mel((ref * (0.95 / ref.abs().max().clamp(min=1e-6)))[None])[0]  # peak 0.95, as in training
            n = min(pred.shape[-1], true.shape[-1])
            l1.append(float((pred[:, :n] - true[:, :n]).abs().mean()))
            hyps.append(asr.transcribe(gl(pred)))
    return {"wer": wer([texts[s] for s, *_ in test], hyps), "mel_l1": float(np.mean(l1)), "decoder_steps": steps}


def evaluate(args, name: str, folder: Path, refs: dict, test: list, test_all: list, train_files: list,
             alignments: dict) -> dict:
    from speechkit.data.phones import frame_phones
    from speechkit.metrics.bitrate import unit_bitrates
    from speechkit.metrics.unit_quality import abx_error, phone_unit_scores, speaker_leakage, triphone_items
    from speechkit.units import SpeechEncoder

    work = args.work / name
    work.mkdir(parents=True, exist_ok=True)
    cached = work / "result.json"
    if cached.is_file() and not args.retrain:
        return json.loads(cached.read_text())
    encoder = SpeechEncoder.from_pretrained(folder, deduplicate=True, need_f0=False).eval()
    t = time.time()
    test_units = {s: frame_units(encoder, p) for s, p, _, _ in test_all}
    pairs = []  # phones only, not silence (as data_prep/phone_probe.py)
    for s, u in test_units.items():
        pairs += [(ph, x) for ph, x in zip(frame_phones(alignments[s], len(u), HOP_SECONDS), u, strict=True)
                  if ph != "_"]
    row = {"name": name, "encoder": str(folder), "K": encoder.vocab_size, **phone_unit_scores(pairs)}
    items = triphone_items([(test_units[s], alignments[s], spk) for s, _, spk, _ in test_all], HOP_SECONDS)
    row["abx_within"] = abx_error(items, max_cells=args.abx_cells)
    row["abx_across"] = abx_error(items, across=True, max_cells=args.abx_cells)
    leak_train = [f for spk in sorted({f[2] for f in train_files})
                  for f in [g for g in train_files if g[2] == spk][: args.leak_per_speaker]]
    leak = speaker_leakage([frame_units(encoder, p) for _, p, _, _ in leak_train], [f[2] for f in leak_train],
                           [test_units[s] for s, *_ in test_all], [f[2] for f in test_all], encoder.vocab_size)
    row["speaker_id_accuracy"], row["speaker_id_chance"] = leak["accuracy"], leak["chance"]
    row["bitrate"] = unit_bitrates(list(test_units.values()), 50.0, encoder.vocab_size)["bitrate_entropy_dedup"]
    print(f"[{name}] unit measures in {time.time() - t:.0f} s", flush=True)
    if args.no_decoder:
        row.update(wer=None, mel_l1=None, decoder_steps=None)
        return row  # not cached: a later run with the decoder completes it
    row.update(decodability(args, name, encoder, work, train_files, test))
    cached.write_text(json.dumps(row, indent=1))
    return row


def table(rows: list[dict], refs: dict, args) -> str:
    budget = f"{args.decoder_steps} steps" if args.decoder_steps else f"{args.decoder_minutes:g} CPU min"
    lines = [f"Tokenizer benchmark on {args.data} (test split; decodability: {len(refs['stems'])} test utterances, "
             f"decoder `preset={args.decoder_preset}` for {budget}, Griffin-Lim, pocketsphinx)", "",
             "| units | K | PNMI | phone purity | ABX within | ABX across | speaker ID (chance) | bit/s | "
             "decoder steps | log-mel L1 | WER |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| originals | | | | | | | | | | {refs['originals']:.3f} |",
             f"| true log-mel, Griffin-Lim (ceiling) | | | | | | | | | 0 | {refs['ceiling']:.3f} |"]
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    for r in rows:
        lines.append(f"| {r['name']} | {r['K']} | {r['pnmi']:.3f} | {r['phone_purity']:.3f} | "
                     f"{r['abx_within']:.3f} | {r['abx_across']:.3f} | {r['speaker_id_accuracy']:.2f} "
                     f"({r['speaker_id_chance']:.2f}) | {r['bitrate']:.0f} | {num(r['decoder_steps'], 'd')} | "
                     f"{num(r['mel_l1'], '.3f')} | {num(r['wer'], '.3f')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    from speechkit.errors import SpeechkitError
    from speechkit.synth.synthetic import phone_alignments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("encoders", nargs="+", help="NAME=FOLDER (or FOLDER) of speech-encoder folders")
    p.add_argument("--data", type=Path, required=True, help="synthetic mini-Expresso (MBROLA voices)")
    p.add_argument("--test-count", type=int, default=40, help="decodability test utterances")
    p.add_argument("--decoder-minutes", type=float, default=20.0, help="CPU minutes of probe-decoder training")
    p.add_argument("--decoder-steps", type=int, default=None,
                   help="train the probe decoder for this many steps instead (fair on a busy machine)")
    p.add_argument("--decoder-preset", default="probe", help="unit_mel preset of the probe decoder")
    p.add_argument("--leak-per-speaker", type=int, default=40, help="train utterances per speaker (leakage)")
    p.add_argument("--abx-cells", type=int, default=3000, help="most ABX cells drawn per condition")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("exp/tokenizer_benchmark"), help="cache of every candidate")
    p.add_argument("--retrain", action="store_true", help="recompute candidates found in --work")
    p.add_argument("--no-decoder", action="store_true", help="unit measures only (no decodability columns)")
    p.add_argument("--preset", choices=["full", "debug"], default="full", help="debug: tiny budgets (CI)")
    p.add_argument("-o", "--output", type=Path, required=True, help="markdown table (a .json beside it)")
    args = p.parse_args()
    if args.preset == "debug":
        args.decoder_preset, args.abx_cells = "debug", 200
    torch.set_num_threads(args.threads)
    try:
        candidates = [(e.split("=", 1) if "=" in e else (Path(e).parent.name, e)) for e in args.encoders]
        train_files, test_all = split_files(args.data, "train"), split_files(args.data, "test")
        if not train_files or not test_all:
            raise SpeechkitError(f"{args.data}: needs read files in both the train and the test split")
        test = round_robin(test_all, args.test_count)
        alignments = phone_alignments(args.data, [s for s, *_ in test_all])
        args.work.mkdir(parents=True, exist_ok=True)
        refs = references(args, test, args.work)
        rows = [evaluate(args, name, Path(folder), refs, test, test_all, train_files, alignments)
                for name, folder in candidates]
    except (SpeechkitError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    text = table(rows, refs, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    args.output.with_suffix(".json").write_text(json.dumps({"references": refs, "rows": rows}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
