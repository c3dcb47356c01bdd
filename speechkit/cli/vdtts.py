"""``speechkit vdtts``: dub a video with speech that follows the lips; ``speechkit vdtts-sync``: the lip-sync
benchmark; ``speechkit prepare talking-face``: the offline talking-face corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

VDTTS_EXAMPLES = """examples:
  speechkit vdtts face.mp4 --text "Bring the red box to the kitchen." -o dubbed.mp4
  speechkit vdtts face.mp4 --text "Good morning." -o dubbed.mp4 --speaker us2 --model runs/vdtts/model
  speechkit vdtts face.mp4 --text "Good morning." -o dubbed.mp4 --vocoder hifigan --vocoder-path runs/mel_hifigan

The output keeps every frame of VIDEO (the video stream is copied, not re-encoded) and carries generated speech
exactly as long as the video. The mouth is read from a fixed box of the frame (the model's mouth_box: lower
middle), so the face should be frontal and centred. Default model: checkpoints/vdtts."""

SYNC_EXAMPLES = """examples:
  speechkit vdtts-sync data/talking_face --model vdtts=runs/vdtts/model --model text-only=runs/vdtts_text/model \\
      -o eval/vdtts/sync.md
  speechkit vdtts-sync data/talking_face --split test --limit 10 --model vdtts=checkpoints/vdtts -o sync.md
  speechkit vdtts-sync data/talking_face --model vdtts=checkpoints/vdtts --vocoder hifigan=runs/mel_hifigan/model \\
      --copy-synthesis --asr -o eval/vdtts/vocoder.md

Rows: the corpus's own speech (reference), each model (Griffin-Lim; "MODEL + NAME" through each --vocoder), with
--copy-synthesis the reference's own log-mel through each vocoder, with --true-alignment each aligned-decoder
model speaking the corpus's phoneme timings, and plain MBROLA TTS of the transcript (text
only, its own length). Columns: audio-video offset from the cross-correlation of mouth opening and audio
envelope, DTW phoneme boundary error against the video's phoneme timing, speech/silence agreement per video frame,
length mismatch; with --asr also pocketsphinx's WER against the transcript."""

TALKING_FACE_EXAMPLES = """examples:
  speechkit prepare talking-face data/talking_face --minutes 20 --jobs 2
  speechkit prepare talking-face data/tf_tiny --minutes 0.5

Faces are drawn offline (PIL) and speech is MBROLA (espeak-ng phoneme timings drive the visemes). Re-running
with the same settings returns at once; an interrupted run resumes."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser("vdtts", help="dub a video: speech for a text that follows the lips (VDTTS)",
                       formatter_class=HelpFormatter, epilog=VDTTS_EXAMPLES,
                       description="Generate speech for TEXT from the mouth movements of VIDEO and write VIDEO's "
                                   "frames with that speech as the audio track.")
    p.add_argument("video", type=Path, help="input video (mp4 or anything FFmpeg reads)")
    p.add_argument("--text", required=True, help="what the speaker says")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .mp4")
    p.add_argument("--speaker", default=None, help="speaker name of the model (default: its first)")
    p.add_argument("--model", type=Path, default=None, help="VDTTS model folder (default: checkpoints/vdtts)")
    p.add_argument("--vocoder", choices=["griffinlim", "hifigan", "vocos"], default="griffinlim", help="mel vocoder")
    p.add_argument("--vocoder-path", type=Path, default=None,
                   help="mel HiFi-GAN checkpoint or Vocos folder (--vocoder hifigan / vocos)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="fast path where the CPU/GPU computes in bf16/fp16 (else fp32, with a warning)")
    p.set_defaults(func=_dub)

    s = sub.add_parser("vdtts-sync", help="lip-sync benchmark of VDTTS models on held-out talking-face videos",
                       formatter_class=HelpFormatter, epilog=SYNC_EXAMPLES,
                       description="Measure how well generated speech follows held-out synthetic face videos.")
    s.add_argument("corpus", type=Path, help="talking-face corpus root (speechkit prepare talking-face)")
    s.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="a model to score (repeat)")
    s.add_argument("--split", default="test", help="manifest to use: CORPUS/SPLIT.jsonl")
    s.add_argument("--limit", type=int, default=None, help="score only the first N utterances")
    s.add_argument("--no-tts-baseline", action="store_true", help="leave out the plain MBROLA TTS row")
    s.add_argument("--asr", action="store_true", help="add a pocketsphinx WER column (intelligibility)")
    s.add_argument("--vocoder", action="append", default=[], metavar="NAME=DIR",
                   help="also speak each model's log-mel with this mel HiFi-GAN, row 'MODEL + NAME' (repeat)")
    s.add_argument("--copy-synthesis", action="store_true",
                   help="add the reference speech's own log-mel spoken by Griffin-Lim and by each --vocoder")
    s.add_argument("--true-alignment", action="store_true",
                   help="add 'MODEL, true alignment': each aligned-decoder model speaking the corpus's own phoneme "
                        "timings (separates the aligner's errors from the decoder's)")
    s.add_argument("-o", "--output", type=Path, default=None, help="markdown table (and a .json beside it)")
    s.set_defaults(func=_sync)


def add_prepare_parser(corpora: argparse._SubParsersAction) -> None:
    """Registers ``speechkit prepare talking-face`` under the ``prepare`` command's corpora."""
    from speechkit.cli.formatting import HelpFormatter

    t = corpora.add_parser("talking-face", help="offline talking-face videos + speech (for VDTTS)",
                           formatter_class=HelpFormatter, epilog=TALKING_FACE_EXAMPLES,
                           description="Render 2-D faces whose mouths follow MBROLA phoneme timings (25 fps mp4 + "
                                       "16 kHz wav + transcript + speaker; train/valid/test manifests).")
    t.add_argument("output", type=Path, help="corpus root folder")
    t.add_argument("--minutes", type=float, default=20.0, help="total speech to generate")
    t.add_argument("--seed", type=int, default=0, help="sentence, voice, face and timing seed")
    t.add_argument("--speakers", nargs="+", default=None, help="MBROLA voices (default: us1 us2 us3 en1)")
    t.add_argument("--jobs", type=int, default=1, help="worker processes")
    t.set_defaults(func=_talking_face)


def _talking_face(args: argparse.Namespace) -> int:
    from speechkit.synth.talking_face import prepare_talking_face

    kw = {"speakers": tuple(args.speakers)} if args.speakers else {}
    root = prepare_talking_face(args.output, jobs=args.jobs, minutes=args.minutes, seed=args.seed, **kw)
    print(f"talking-face corpus ready in {root} (see {root / 'README.txt'})")
    return 0


def _dub(args: argparse.Namespace) -> int:
    from speechkit.vdtts.inference import VDTTS
    from speechkit.vdtts.text import TextError

    if not args.text.strip():
        raise TextError("--text must not be empty")
    tts = VDTTS.from_pretrained(args.model, vocoder=args.vocoder, vocoder_path=args.vocoder_path)
    tts.set_precision(args.precision)
    out = tts.dub(args.video, args.text, args.output, speaker=args.speaker)
    print(f"wrote {out}")
    return 0


def _named_dirs(specs: list[str], flag: str) -> dict[str, Path]:
    """``NAME=DIR`` options (repeatable) as name -> folder; a malformed one is refused with the flag named."""
    from speechkit.errors import SpeechkitError

    out = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise SpeechkitError(f"{flag} must be NAME=DIR. Found {spec!r}")
        out[name] = Path(folder)
    return out


def mbrola_baseline(text: str, speaker: str):
    """The text-only baseline of ``vdtts-sync``: plain MBROLA TTS of the transcript with the video's voice, as
    ``(wav float32 (samples,), sample_rate)``."""
    from speechkit.synth.tts import MBROLA_VOICES, synthesize

    syn = synthesize(text, MBROLA_VOICES[speaker])
    return syn.wav, syn.sample_rate


def _sync(args: argparse.Namespace) -> int:
    from speechkit.metrics.sync import run_benchmark

    models = _named_dirs(args.model, "--model")
    vocoders = _named_dirs(args.vocoder, "--vocoder")
    baselines = {} if args.no_tts_baseline else {"MBROLA TTS (text only)": mbrola_baseline}
    table = run_benchmark(args.corpus, models, split=args.split, limit=args.limit, baselines=baselines,
                          asr=args.asr, output=args.output, vocoders=vocoders, copy_synthesis=args.copy_synthesis,
                          true_alignment=args.true_alignment)
    print(table)
    return 0
