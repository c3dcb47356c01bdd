#!/usr/bin/env python
"""A small corpus of plain espeak-ng voices (none of them the default bundle's MBROLA voices), laid out as a user's
recordings would be, to try recipes/own_data on speech it never trained on.

    .venv/bin/python data_prep/espeak_corpus.py data/espeak_ls --layout librispeech --speakers 6 --per-speaker 100
    .venv/bin/python data_prep/espeak_corpus.py data/espeak_mixed --layout folder --mixed

--layout librispeech writes ``speaker/chapter/speaker-chapter-NNNN.flac`` and ``speaker-chapter.trans.txt``;
--layout folder writes ``speaker/NNNN.wav`` with no transcripts (``--mixed``: 8-48 kHz, mono and stereo, WAV, FLAC
and OGG, the way recordings arrive). Sentences come from speechkit's sentence grammar, a different seed per speaker.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

# espeak-ng voice + variant, speed (words per minute) and pitch: distinct speakers
VOICES = [("en-us+m3", 160, 45), ("en-gb+f2", 150, 60), ("en-us+m7", 170, 35), ("en-gb-scotland+f4", 155, 70),
          ("en-us+f3", 165, 65), ("en-gb+m4", 145, 40), ("en-us+m1", 175, 50), ("en-gb+f5", 160, 75)]
RATES = [8000, 16000, 22050, 44100, 48000]
FORMATS = ["wav", "flac", "ogg"]


def speak(text: str, voice: str, speed: int, pitch: int):
    import soundfile as sf

    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", f.name, text],
                       check=True, capture_output=True)
        return sf.read(f.name, dtype="float32")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", type=Path)
    p.add_argument("--layout", choices=["librispeech", "folder"], default="librispeech")
    p.add_argument("--speakers", type=int, default=4, help=f"at most {len(VOICES)}")
    p.add_argument("--per-speaker", type=int, default=20, help="utterances per speaker")
    p.add_argument("--mixed", action="store_true", help="folder layout: mixed rates, channels and formats")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import numpy as np
    import soundfile as sf

    from speechkit.audio.io import resample
    from speechkit.synth.sentences import generate_sentences

    if not 1 <= args.speakers <= len(VOICES):
        p.error(f"--speakers must be 1..{len(VOICES)}")
    n = 0
    for s, (voice, speed, pitch) in enumerate(VOICES[: args.speakers]):
        spk = str(100 + s)
        texts = generate_sentences(args.per_speaker, seed=args.seed * 1000 + s)
        lines = []
        for i, text in enumerate(texts):
            wav, sr = speak(text, voice, speed, pitch)
            if args.layout == "librispeech":
                uid = f"{spk}-{s}-{i:04d}"
                path = args.output / spk / str(s) / f"{uid}.flac"
                lines.append(f"{uid} {text.upper()}\n")
            else:
                fmt = FORMATS[(i + s) % len(FORMATS)] if args.mixed else "wav"
                path = args.output / f"speaker{s}" / f"{i:04d}.{fmt}"
                if args.mixed:
                    import torch

                    rate = RATES[(i * 3 + s) % len(RATES)]
                    wav = resample(torch.from_numpy(wav), sr, rate).numpy()
                    sr = rate
                    if i % 2:
                        wav = np.stack([wav, 0.8 * wav], axis=1)  # stereo
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), wav, sr)
            n += 1
        if lines:
            (args.output / spk / str(s) / f"{spk}-{s}.trans.txt").write_text("".join(lines))
    print(f"wrote {n} utterances of {args.speakers} speakers to {args.output} ({args.layout} layout)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
