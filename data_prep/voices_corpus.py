#!/usr/bin/env python
"""English read by MBROLA voices of other languages: more (and accented) voices for the phone-target HuBERT,
with exact phone labels in the English voices' inventory.

espeak-ng speaks English through 18 diphone databases of other languages (``mb-de4-en``, ``mb-fr1-en``, ...): it
makes the English phoneme stream of its ``en`` voice (the one ``mb-en1`` speaks) and maps each phoneme to the
database's, sometimes splitting one into two ("dZ 65" -> "d 26" + "Z 39"), durations kept. So the English phoneme
each piece belongs to is known exactly: its label is the ``mb-en1`` phoneme covering it, and the labels share the
inventory of the default corpus's phone labels (``speechkit prepare phone-labels``). A real accented speaker does
what these voices do: says the English phoneme with the sounds of another language.

    .venv/bin/python data_prep/voices_corpus.py data/voices_en --per-voice 120 \\
        --inventory exp/default/phones/phones.txt --text data/text/wordnet.txt

Writes ``audio/{voice}/{voice}_{n:05d}.wav`` (16 kHz), ``transcripts.tsv``, ``train.tsv`` (a HuBERT manifest) and
``train.labels.jsonl`` (50 Hz phone ids). ``--merge TSV LABELS`` also writes ``merged.tsv`` and
``merged.labels.jsonl``: that manifest and its labels (the corpus's, under ``corpus/``, a link to its root) and these
voices (under ``audio/``), the training set of ``speechkit train hubert``. Every utterance gets its own tempo,
pitch and pitch range, and one in ten is whispered. Needs the Debian packages
mbrola-{af1,de1..de6,fr1,fr4,gr2,hu1,nl2,pl1,ro1,sw1,sw2} (``data_prep/system_deps.sh`` installs them); voices not
installed are skipped with a note. Resumes: an utterance whose WAV exists is not rendered again.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

# espeak-ng voices that speak English with another language's MBROLA database (espeak-ng --voices=mb), gender
FOREIGN_VOICES = {
    "mb-af1-en": "M", "mb-nl2-en": "M", "mb-fr1-en": "M", "mb-fr4-en": "F", "mb-de1-en": "F", "mb-de2-en": "M",
    "mb-de3-en": "F", "mb-de4-en": "M", "mb-de5-en": "F", "mb-de6-en": "M", "mb-gr2-en": "M", "mb-hu1-en": "F",
    "mb-pl1-en": "F", "mb-ro1-en": "M", "mb-sw1-en": "M", "mb-sw2-en": "F",
}
LABEL_VOICE = "mb-en1"  # the English phoneme stream the foreign voices map from


def _rows(pho: str) -> list[tuple[str, int]]:
    out = []
    for line in pho.splitlines():
        parts = line.split()
        if parts and not parts[0].startswith(";"):
            out.append((parts[0], int(float(parts[1]))))
    return out


def english_labels(foreign_pho: str, english_pho: str) -> list[str]:
    """The English phoneme of each row of ``foreign_pho``.

    Each English row became one to three consecutive foreign rows, or none (French has no /h/); some databases
    also shorten some phonemes (voiceless consonants). The split is found by dynamic programming over the two
    streams, the cost of a match being the relative difference of the durations, plus a little for each split and
    for a group none of whose symbols starts with the English one's letter (``aU`` -> ``a w`` matches, ``h`` -> ``w``
    does not); a dropped English row costs a fixed amount.

    Raises:
        ValueError: no such split exists (the streams are not one mapped from the other).
    """
    eng, fgn = _rows(english_pho), _rows(foreign_pho)
    n, m, inf = len(eng), len(fgn), float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back = [[0] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(1, n + 1):
        de = max(eng[i - 1][1], 1)
        for j in range(m + 1):
            for k in (0, 1, 2, 3):
                if j - k < 0 or cost[i - 1][j - k] == inf:
                    continue
                df = sum(d for _, d in fgn[j - k : j])
                like = any(f[0].lower() == eng[i - 1][0][0].lower() for f, _ in fgn[j - k : j])
                c = cost[i - 1][j - k] + (abs(df - de) / de + 0.1 * (k - 1) + (0 if like else 0.15) if k else 0.45)
                if c < cost[i][j]:
                    cost[i][j], back[i][j] = c, k
    if cost[n][m] == inf or cost[n][m] > 0.5 * n:
        raise ValueError(f"phoneme streams do not map ({n} English rows, {m} foreign rows)")
    labels, i, j = [""] * m, n, m
    while i > 0:
        k = back[i][j]
        labels[j - k : j] = [eng[i - 1][0]] * k
        i, j = i - 1, j - k
    return labels


def merge(output: Path, tsv: Path, labels: Path) -> None:
    """``output/merged.tsv`` and ``merged.labels.jsonl``: ``tsv`` (under ``corpus/``) and ``output/train.tsv``
    (under ``audio/``) with their labels, ids prefixed the same way."""
    import json
    import os

    from speechkit.data.manifest import read_tsv

    root, _ = read_tsv(tsv)
    link = output / "corpus"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(Path(root).resolve(), link)
    parts = [("corpus", tsv, labels), ("audio", output / "train.tsv", output / "train.labels.jsonl")]
    with open(output / "merged.tsv.part", "w") as t, open(output / "merged.labels.jsonl.part", "w") as j:
        t.write(f"{output.resolve()}\n")
        for prefix, manifest, label_file in parts:
            t.writelines(f"{prefix}/{line}\n" for line in Path(manifest).read_text().splitlines()[1:] if line.strip())
            for line in Path(label_file).read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    r["id"], r["audio"] = f"{prefix}/{r['id']}", f"{prefix}/{r['audio']}"
                    j.write(json.dumps(r) + "\n")
    for name in ("merged.tsv", "merged.labels.jsonl"):
        (output / f"{name}.part").rename(output / name)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", type=Path)
    p.add_argument("--per-voice", type=int, default=120, help="utterances per voice")
    p.add_argument("--inventory", type=Path, required=True, help="phones.txt of the corpus's phone labels")
    p.add_argument("--text", type=Path, help="extra sentences, one a line, mixed half and half with the grammar's")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--merge", nargs=2, type=Path, metavar=("TSV", "LABELS"),
                   help="a HuBERT manifest and its labels jsonl to merge with these voices (merged.tsv, .labels.jsonl)")
    args = p.parse_args()

    import numpy as np
    import soundfile as sf
    import torch

    from speechkit.audio.functional import whisperize
    from speechkit.audio.io import resample
    from speechkit.data.phonemize import espeak_pho
    from speechkit.data.phones import PhoneInventory, write_phone_labels
    from speechkit.synth.sentences import generate_sentences
    from speechkit.synth.tts import Prosody, apply_prosody, mbrola_available, mbrola_render

    inventory = PhoneInventory.load(args.inventory)
    voices = [v for v in FOREIGN_VOICES if mbrola_available(v.split("-")[1])]
    missing = sorted(set(FOREIGN_VOICES) - set(voices))
    if missing:
        print(f"note: MBROLA databases not installed, skipped: {' '.join(missing)}", file=sys.stderr)
    if not voices:
        p.error("no foreign MBROLA database is installed (apt-get install mbrola-de4 ...)")
    extra = [s for s in args.text.read_text().splitlines() if s.strip()] if args.text else []
    audio = args.output / "audio"
    rows, alignments, frames, ids = [], {}, {}, {}
    skipped = 0
    for vi, voice in enumerate(voices):
        name = voice.split("-")[1]
        rng = random.Random(f"{args.seed}-{voice}")
        grammar = generate_sentences(args.per_voice, seed=args.seed * 1000 + 500 + vi)
        for n in range(args.per_voice):
            text = rng.choice(extra) if extra and rng.random() < 0.5 else grammar[n]
            prosody = Prosody(tempo=math.exp(rng.uniform(-0.25, 0.25)), pitch=math.exp(rng.uniform(-0.2, 0.2)),
                              pitch_range=math.exp(rng.uniform(-0.5, 0.5)))
            whisper, noise_seed = rng.random() < 0.1, rng.randrange(2**31)
            stem = f"{name}_{n:05d}"
            rel = f"{name}/{stem}.wav"
            try:
                foreign = espeak_pho(text, voice)
                labels = english_labels(foreign, espeak_pho(text, LABEL_VOICE))
            except ValueError:
                skipped += 1
                continue
            if any(label not in inventory.ids for label in labels):
                skipped += 1
                continue
            pho, timings = apply_prosody(foreign, prosody)
            alignment = [(label, s, e) for label, (_, s, e) in zip(labels, timings, strict=True)]
            path = audio / rel
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.wav")
                mbrola_render(pho, name, tmp)
                wav, sr = sf.read(tmp, dtype="float32")
                tmp.unlink()
                if sr != 16000:
                    wav = resample(torch.from_numpy(wav), sr, 16000).numpy()
                if whisper:
                    wav = whisperize(wav, 16000, seed=noise_seed)
                peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
                if peak > 0.99:
                    wav = wav * (0.99 / peak)
                sf.write(path.with_suffix(".part.wav"), wav, 16000, subtype="PCM_16")
                path.with_suffix(".part.wav").rename(path)
            samples = sf.info(path).frames
            rows.append((rel, samples, text))
            alignments[stem], ids[stem] = alignment, rel[: -len(".wav")]
            frames[stem] = int(samples / 320 + 0.5)
        print(f"{voice}: {args.per_voice} utterances", file=sys.stderr)
    (args.output / "train.tsv").write_text(f"{audio.resolve()}\n" + "".join(f"{r}\t{s}\n" for r, s, _ in rows))
    (args.output / "transcripts.tsv").write_text("".join(f"{r}\t{t}\n" for r, _, t in rows))
    write_phone_labels(alignments, frames, ids, inventory, 0.02, args.output / "train.labels.jsonl")
    if args.merge:
        merge(args.output, *args.merge)
    hours = sum(s for _, s, _ in rows) / 16000 / 3600
    print(f"wrote {args.output}: {len(rows)} utterances ({hours * 60:.1f} min) of {len(voices)} voices; "
          f"{skipped} skipped (phoneme streams not mappable)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
