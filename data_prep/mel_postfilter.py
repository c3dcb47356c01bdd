#!/usr/bin/env python
"""Measures a unit-to-mel decoder's spectral-detail gain on training speech and writes it into its folder.

    .venv/bin/python data_prep/mel_postfilter.py --vocoder checkpoints/default/vocoder \
        --units exp/default/k200/units.jsonl --audio data/mini_expresso_120/audio_48khz/read \
        --train-list data/mini_expresso_120/splits/train.txt --write

The decoder predicts the log-mel of ``--count`` training utterances from their units and durations (so its frames
line up with the audio, as its training targets did), without any postfilter; the gain is the standard deviation of
the true log-mels' differences between adjacent mel bins over the predicted ones
(:func:`speechkit.vocoders.unitmel.postfilter.detail_ratio`). ``--write`` stores it as ``detail_gain`` in the folder's
``config.json`` (atomically); the vocoder then applies :func:`~speechkit.vocoders.unitmel.postfilter.enhance_detail`
at synthesis, offline and streaming alike. Measure on training files only: the gain is a setting of the model.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocoder", required=True, help="unit-to-mel vocoder folder (config.json kind unit_mel)")
    p.add_argument("--units", required=True, help="units jsonl (with durations) of the audio under --audio")
    p.add_argument("--audio", required=True, help="folder of the training audio (read at the decoder's rate)")
    p.add_argument("--train-list", help="file stems to draw from (one a line; default: every file under --audio)")
    p.add_argument("--count", type=int, default=300, help="utterances to measure on")
    p.add_argument("--names", default="expresso", choices=["expresso", "parent", "none"],
                   help="speaker and style from the file names (expresso), the speaker from the folder (parent), none")
    p.add_argument("--peak", type=float, default=0.95, help="peak level of the audio, as the decoder's training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write", action="store_true", help="store the gain as detail_gain in the folder's config.json")
    args = p.parse_args(argv)

    import torch

    from speechkit.data.corpora.expresso import parse_stem
    from speechkit.data.manifest import read_units_jsonl
    from speechkit.errors import SpeechkitError
    from speechkit.train.unit_mel import mel_transform
    from speechkit.train.vocos import _read_stems, load_corpus
    from speechkit.utils.files import read_json, write_json
    from speechkit.vocoders.unitmel.postfilter import detail_ratio
    from speechkit.vocoders.unitmel.vocoder import UnitMelVocoder

    folder = Path(args.vocoder)
    voc = UnitMelVocoder.from_pretrained(folder, mel_vocoder="griffinlim")
    by_stem = {Path(r.audio).stem: r for r in read_units_jsonl(args.units)}
    stems = sorted(s for s in (_read_stems(args.train_list) or by_stem) if s in by_stem)
    if not stems:
        raise SpeechkitError(f"{args.units}: no record's audio stem is in {args.train_list or args.audio}")
    random.Random(args.seed).shuffle(stems)
    keep = set(stems[: args.count])
    stems, wavs = load_corpus(args.audio, voc.output_sample_rate, keep, args.peak, "--audio")
    mel = mel_transform(voc.config)
    gain, voc.config.detail_gain = voc.config.detail_gain, 1.0   # measure the decoder itself, not its postfilter
    pairs = []
    with torch.inference_mode():
        for stem, wav in zip(stems, wavs, strict=True):
            r = by_stem[stem]
            spk = sty = None
            if args.names == "expresso":
                info = parse_stem(stem)
                spk = info.speaker if voc.speakers and info.speaker in voc.speakers else None
                sty = info.style if voc.styles and info.style in voc.styles else None
            elif args.names == "parent":
                name = Path(r.audio).parent.name
                spk = name if voc.speakers and name in voc.speakers else None
            pred = voc.mel(torch.tensor(r.units), speaker=spk, style=sty,
                           durations=None if r.duration is None else torch.tensor(r.duration))
            pairs.append((mel(wav[None])[0], pred))
    ratio = detail_ratio(pairs)
    frames = sum(min(t.shape[-1], q.shape[-1]) for t, q in pairs)
    print(f"{folder}: spectral-detail gain {ratio:.3f} ({len(pairs)} utterances, {frames} frames; was {gain:.3f})")
    if args.write:
        meta = read_json(folder / "config.json", SpeechkitError)
        meta["model"]["detail_gain"] = round(ratio, 3)
        meta["model"].setdefault("detail_width", voc.config.detail_width)
        write_json(folder / "config.json", meta, indent=2)
        print(f"wrote detail_gain={round(ratio, 3)} into {folder / 'config.json'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
