"""``speechkit resynth``: audio → units → audio, keeping the voice or converting speaker / style."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  speechkit resynth in.wav -o out.wav --model checkpoints/default
  speechkit resynth in.wav -o out.wav --model checkpoints/default --speaker us2 --style whisper
  speechkit resynth a.wav b.flac -o outdir/ --encoder runs/encoder --vocoder runs/vocoder/model
  speechkit resynth data/mini_expresso/audio_48khz/read/us1/default -o outdir/ --model checkpoints/default
  speechkit resynth in.wav -o out.wav --encoder ENC --vocoder g_00500000 --vocoder-config config.json
  speechkit resynth --list-speakers --model checkpoints/default

Without --speaker the voice is kept: the vocoder speaker closest to the input is chosen."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.main import HelpFormatter
    from speechkit.hub import DEFAULT_MODEL

    p = sub.add_parser("resynth", help="resynthesise speech through units (voice / style conversion)",
                       formatter_class=HelpFormatter, epilog=EXAMPLES,
                       description="Encode speech into units and decode it with a unit vocoder. Any input rate; "
                                   "output at the vocoder's rate.")
    p.add_argument("inputs", nargs="*", type=Path, help="audio files or folders of them")
    p.add_argument("-o", "--output", type=Path, help="output file (one input) or folder (several)")
    p.add_argument("--model", type=Path, default=Path(DEFAULT_MODEL),
                   help="folder with encoder/ and vocoder/ (ignored when --encoder and --vocoder are given)")
    p.add_argument("--encoder", type=Path, default=None, help="speech-encoder folder")
    p.add_argument("--vocoder", type=Path, default=None,
                   help="speechkit vocoder folder, official g_XXXXXXXX file or folder of them")
    p.add_argument("--vocoder-config", type=Path, default=None, help="official config.json (default: beside it)")
    p.add_argument("--speaker", default=None, help="vocoder speaker name or id (default: keep the voice)")
    p.add_argument("--style", default=None, help="vocoder style name or id (default: the vocoder's first)")
    p.add_argument("--dur-prediction", action="store_true", help="predict durations instead of keeping them")
    p.add_argument("--list-speakers", action="store_true", help="print the vocoder's speakers and styles, exit")
    p.set_defaults(func=run)


def _name_or_id(value: str | None):
    return int(value) if value is not None and value.isdigit() else value


def build(args: argparse.Namespace):
    from speechkit.pipeline import Resynthesizer
    from speechkit.units import SpeechEncoder
    from speechkit.vocoders import load_unit_vocoder

    options = {"dur_prediction": args.dur_prediction}
    if args.encoder is None and args.vocoder is None:
        return Resynthesizer.from_pretrained(args.model, **options)
    if args.encoder is None or args.vocoder is None:
        from speechkit.errors import SpeechkitError

        raise SpeechkitError("give both --encoder and --vocoder, or --model DIR holding encoder/ and vocoder/")
    vocoder = load_unit_vocoder(args.vocoder, args.vocoder_config)
    return Resynthesizer(SpeechEncoder.from_pretrained(args.encoder), vocoder, **options)


def _expand(inputs: list[Path]) -> list[Path]:
    from speechkit.data.manifest import AUDIO_EXTENSIONS

    files = []
    for p in inputs:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS)
        else:
            files.append(p)
    return files


def run(args: argparse.Namespace) -> int:
    from speechkit.audio import io
    from speechkit.errors import SpeechkitError

    rs = build(args)
    if args.list_speakers:
        voc = rs.vocoder
        print("speakers:", ", ".join(voc.speakers or [str(i) for i in range(voc.config.num_speakers)]) or "-")
        print("styles:", ", ".join(voc.styles or [str(i) for i in range(voc.config.num_styles)]) or "-")
        return 0
    if not args.inputs or args.output is None:
        raise SpeechkitError("give input files and -o OUTPUT (or --list-speakers)")
    files = _expand(args.inputs)
    if not files:
        raise SpeechkitError(f"no audio files in {', '.join(map(str, args.inputs))}")
    several = len(files) > 1 or args.output.is_dir() or any(p.is_dir() for p in args.inputs)
    for path in files:
        wav, sr = io.load(path, mono=True)
        out = rs(wav, sample_rate=sr, speaker=_name_or_id(args.speaker), style=_name_or_id(args.style))
        target = args.output / f"{path.stem}.wav" if several else args.output
        io.save(target, out, rs.output_sample_rate)
        print(f"{path} -> {target} ({len(out) / rs.output_sample_rate:.2f} s)")
    return 0
