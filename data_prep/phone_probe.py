#!/usr/bin/env python
"""How much phonetic content each tokenizer's units carry, against the synthesiser's own phone timings.

Test sentences are spoken again by every MBROLA voice (default prosody); MBROLA's phone segmentation gives the
true phone of each 20 ms frame. For each speech-encoder folder: phone purity (share of frames whose unit's most
frequent phone is theirs), cluster purity, PNMI (mutual information of phone and unit over the phone entropy, as in
the HuBERT paper) and the bitrate of the deduplicated units (entropy x units per second) on the same audio.

    .venv/bin/python data_prep/phone_probe.py exp/default/k50/encoder exp/default/k100/encoder \
        exp/default/k200/encoder --data data/mini_expresso_120 -o exp/default/phone_probe.md

``--sentences-file`` re-speaks other sentences (e.g. the held-out fortunes: data/heldout/unseen_sentences/items.tsv,
third column); ``--conditions clean,degraded`` adds a row per encoder with every utterance passed through one random
chain of recording conditions (:func:`speechkit.audio.augment.degrade`, seeded per utterance; the phone timings do
not move), to measure how much of the units survives a room, noise or a telephone line.

``--real DIR [DIR ...]`` adds a row per encoder and folder on real recordings with transcripts (a held-out set's
``items.tsv``, e.g. data/heldout/real_phrases): their phone labels come from pocketsphinx's forced alignment of the
transcript (ARPAbet, 10 ms frames; :meth:`speechkit.metrics.asr.PocketSphinxASR.align`), items it cannot align are
left out. Its PNMI is against another phone set than the synthetic rows' (39 ARPAbet phones against 60 MBROLA ones),
so compare encoders within a condition; the row `clean, aligned` (the synthetic utterances labelled the same way)
is the one to set the real rows against.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from speechkit.data.phones import frame_phones as _frame_phones
from speechkit.metrics.unit_quality import phone_unit_scores

# the library's helpers, under the names this script has always used
frame_phones = _frame_phones
scores = phone_unit_scores


def _degraded(syn, seed: int):
    """``syn`` through one random chain of recording conditions (seeded by ``seed``); the phone timings hold."""
    import dataclasses
    import random

    from speechkit.audio.augment import degrade

    wav, _ = degrade(torch.from_numpy(syn.wav), syn.sample_rate, random.Random(seed))
    return dataclasses.replace(syn, wav=wav.numpy())


def _real_items(folder: Path) -> list:
    """The recordings of ``folder/items.tsv`` that pocketsphinx can align to their transcripts, as
    :class:`~speechkit.synth.tts.Synthesis` records (16 kHz audio, ARPAbet phone timings)."""
    import csv

    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.synth.tts import Synthesis

    asr, out, left = PocketSphinxASR(), [], 0
    with open(folder / "items.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            wav, sr = io.load(folder / row["path"], sample_rate=16000)
            try:
                out.append(Synthesis(wav.numpy(), sr, asr.align(wav, row["text"])))
            except ValueError:
                left += 1
    print(f"{folder}: {len(out)} recordings aligned, {left} left out", file=sys.stderr)
    return out


def _aligned(items: list) -> list:
    """``(text, synthesis)`` pairs relabelled by pocketsphinx's forced alignment (ARPAbet), as the real rows are."""
    import dataclasses

    from speechkit.audio.io import resample
    from speechkit.metrics.asr import PocketSphinxASR

    asr, out = PocketSphinxASR(), []
    for text, syn in items:
        wav = resample(torch.from_numpy(syn.wav), syn.sample_rate, 16000)
        try:
            out.append(dataclasses.replace(syn, phonemes=asr.align(wav, text)))
        except ValueError:
            pass
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("encoders", nargs="+", type=Path, help="speech-encoder folders")
    p.add_argument("--data", type=Path, required=True, help="mini-Expresso root (its test sentences are re-spoken)")
    p.add_argument("--sentences", type=int, default=40)
    p.add_argument("--sentences-file", type=Path, default=None,
                   help="a text file (one sentence a line) or an items.tsv (text in column 3) to re-speak instead")
    p.add_argument("--conditions", default="clean", help="comma list of clean, degraded")
    p.add_argument("--real", type=Path, nargs="+", default=[],
                   help="folders with items.tsv (id, path, text): real recordings, labelled by forced alignment")
    p.add_argument("-o", "--output", type=Path, required=True, help="markdown table (a .json beside it)")
    args = p.parse_args()

    from speechkit.data.corpora import expresso
    from speechkit.metrics.bitrate import unit_bitrates
    from speechkit.synth import tts
    from speechkit.units import SpeechEncoder

    if args.sentences_file is not None:
        rows = [ln.split("\t") for ln in args.sentences_file.read_text().splitlines() if ln.strip()]
        found = [r[2] for r in rows[1:]] if rows and rows[0][:3] == ["id", "path", "text"] else [r[0] for r in rows]
        sentences = list(dict.fromkeys(found))[: args.sentences]
    else:
        texts = expresso.read_transcriptions(args.data)
        stems = [e.stem for e in expresso.read_splits(args.data)["test"] if e.stem in texts]
        sentences = list(dict.fromkeys(texts[s] for s in stems))[: args.sentences]
    clean = [tts.synthesize(t, v) for t in sentences for v in tts.MBROLA_VOICES.values()]
    conditions = args.conditions.split(",")
    if set(conditions) - {"clean", "degraded"}:
        p.error(f"--conditions: clean and/or degraded. Found {args.conditions}")
    real, aligned = {}, []
    if args.real:
        real = {f"real: {folder.name}": _real_items(folder) for folder in args.real}
        # the same synthetic utterances labelled the way the real ones are: separates the phone set's effect on
        # PNMI from the recordings'
        aligned = _aligned(list(zip([t for t in sentences for _ in tts.MBROLA_VOICES], clean, strict=True)))
        conditions += ["clean, aligned", *real]
    results, lines = {}, []
    for folder, condition in ((f, c) for f in args.encoders for c in conditions):
        probe = {"clean": clean, "clean, aligned": aligned, **real}.get(condition)
        if probe is None:
            probe = [_degraded(syn, i) for i, syn in enumerate(clean)]
        enc = SpeechEncoder.from_pretrained(folder, deduplicate=False)
        hop = enc.code_hop_size / enc.expected_sample_rate
        pairs, streams, seconds = [], [], 0.0
        for syn in probe:
            with torch.inference_mode():
                units = enc(torch.from_numpy(syn.wav), sample_rate=syn.sample_rate)["units"].tolist()
            pairs += [(ph, u) for ph, u in zip(frame_phones(syn.phonemes, len(units), hop), units, strict=True)
                      if ph != "_"]
            streams.append(units)
            seconds += len(syn.wav) / syn.sample_rate
        s = scores(pairs)
        s.update(unit_bitrates(streams, enc.frame_rate, enc.vocab_size, seconds=seconds))
        s["k"] = enc.vocab_size
        s["condition"] = condition
        s["encoder"] = str(folder)
        results[f"{folder}:{condition}"] = s
    real_note = (f" Conditions `real: ...`: {', '.join(f'{len(v)} recordings of {k[6:]}' for k, v in real.items())}, "
                 "labelled by pocketsphinx's forced alignment "
                 "of their transcripts (ARPAbet); `clean, aligned`: the clean utterances labelled the same way, "
                 f"{len(aligned)} aligned." if real else "")
    lines = [f"Phonetic content of the units: {len(clean)} utterances ({len(sentences)} test sentences x "
             f"{len(tts.MBROLA_VOICES)} MBROLA voices) with the synthesiser's phone timings.{real_note}", "",
             "| encoder | condition | K | phone purity | cluster purity | PNMI | bitrate (bit/s, dedup entropy) "
             "| nominal bit/s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in results.values():
        lines.append(f"| {s['encoder']} | {s['condition']} | {s['k']} | {s['phone_purity']:.3f} | "
                     f"{s['cluster_purity']:.3f} | {s['pnmi']:.3f} | {s['bitrate_entropy_dedup']:.1f} | "
                     f"{s['bitrate_nominal']:.1f} |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
