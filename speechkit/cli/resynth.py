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
  speechkit resynth long.wav -o out.wav --stream --chunk-ms 100          # bounded memory, any length
  arecord -f S16_LE -r 16000 -c 1 | speechkit resynth - -o - --stream --rate 16000 --speaker us1 \\
      | aplay -f S16_LE -r 16000 -c 1                                      # live voice conversion

Without --speaker the voice is kept: the vocoder speaker closest to the input is chosen (with --stream, from the
first second, then held). '-' reads / writes raw mono 16-bit PCM (stdin: at --rate; stdout: at the vocoder's rate,
printed on stderr)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter
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
    p.add_argument("--mel-vocoder", choices=["auto", "griffinlim"], default="auto",
                   help="waveform stage of a unit-to-mel vocoder: auto = its mel_vocoder/ (the bundle's Vocos) where "
                        "it has one, else Griffin-Lim")
    p.add_argument("--speaker", default=None, help="vocoder speaker name or id (default: keep the voice)")
    p.add_argument("--style", default=None, help="vocoder style name or id (default: the style named 'default' "
                   "where the vocoder has one, else id 0)")
    p.add_argument("--dur-prediction", action="store_true", help="predict durations instead of keeping them")
    p.add_argument("--list-speakers", action="store_true", help="print the vocoder's speakers and styles, exit")
    p.add_argument("--stream", action="store_true",
                   help="process chunk by chunk with bounded latency and memory (Resynthesizer.stream)")
    p.add_argument("--chunk-ms", type=float, default=100.0, help="input read per step with --stream")
    p.add_argument("--lookahead-ms", type=float, default=None,
                   help="encoder lookahead with --stream (default 320 ms; latency = block + lookahead)")
    p.add_argument("--block-ms", type=float, default=None, help="output finalised per step with --stream "
                                                                "(default 160 ms)")
    p.add_argument("--rate", type=int, default=None, help="sample rate of raw PCM on stdin (input '-')")
    p.set_defaults(func=run)


def _name_or_id(value: str | None):
    return int(value) if value is not None and value.isdigit() else value


def build(args: argparse.Namespace):
    from speechkit.pipeline import Resynthesizer
    from speechkit.units import SpeechEncoder
    from speechkit.vocoders import UnitVocoder

    options = {"dur_prediction": args.dur_prediction}
    if args.encoder is None and args.vocoder is None:
        return Resynthesizer.from_pretrained(args.model, mel_vocoder=args.mel_vocoder, **options)
    if args.encoder is None or args.vocoder is None:
        from speechkit.errors import SpeechkitError

        raise SpeechkitError("give both --encoder and --vocoder, or --model DIR holding encoder/ and vocoder/")
    vocoder = UnitVocoder.from_pretrained(args.vocoder, config_path=args.vocoder_config, mel_vocoder=args.mel_vocoder)
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


def _check_paths(args: argparse.Namespace) -> None:
    """The arguments' paths, checked before torch and the models load (a typo is reported at once)."""
    from speechkit.errors import SpeechkitError

    if args.list_speakers:
        return
    if not args.inputs or args.output is None:
        raise SpeechkitError("give input files and -o OUTPUT (or --list-speakers)")
    for p in args.inputs:
        if str(p) != "-" and not p.exists():
            raise SpeechkitError(f"{p}: no such file or folder")
    if args.stream or str(args.output) == "-" or any(str(p) == "-" for p in args.inputs):
        return
    several = len(args.inputs) > 1 or any(p.is_dir() for p in args.inputs)
    if several and args.output.suffix and not args.output.is_dir():
        what = f"{len(args.inputs)} inputs are given" if len(args.inputs) > 1 else f"{args.inputs[0]} is a folder"
        raise SpeechkitError(f"-o {args.output} names a file but {what}: give an output folder "
                             "(one WAV per input is written into it)")


def run(args: argparse.Namespace) -> int:
    _check_paths(args)
    from speechkit.audio import io
    from speechkit.errors import SpeechkitError

    rs = build(args)
    if args.list_speakers:
        voc = rs.vocoder
        print("speakers:", ", ".join(voc.speakers or [str(i) for i in range(voc.config.num_speakers)]) or "-")
        print("styles:", ", ".join(voc.styles or [str(i) for i in range(voc.config.num_styles)]) or "-")
        return 0
    if args.stream:
        return run_stream(rs, args)
    if str(args.output) == "-" or any(str(p) == "-" for p in args.inputs):
        raise SpeechkitError("'-' (raw PCM on stdin / stdout) needs --stream")
    files = _expand(args.inputs)
    if not files:
        raise SpeechkitError(f"no audio files in {', '.join(map(str, args.inputs))}")
    several = len(files) > 1 or args.output.is_dir() or any(p.is_dir() for p in args.inputs)
    from speechkit.pipeline import check_offline_length

    for path in files:
        check_offline_length(io.info(path).duration, str(path))  # from the header, before reading the samples
        wav, sr = io.load(path, mono=True)
        out = rs(wav, sample_rate=sr, speaker=_name_or_id(args.speaker), style=_name_or_id(args.style))
        target = args.output / f"{path.stem}.wav" if several else args.output
        io.save(target, out, rs.output_sample_rate)
        print(f"{path} -> {target} ({len(out) / rs.output_sample_rate:.2f} s)")
    return 0


def _stream_config(rs, args):
    from dataclasses import replace

    from speechkit.errors import SpeechkitError
    from speechkit.pipeline import StreamConfig

    cfg = StreamConfig()
    frame_ms = 1000.0 / rs.encoder.frame_rate
    for name, value in (("block", args.block_ms), ("lookahead", args.lookahead_ms)):
        if value is not None:
            if value < 0:
                raise SpeechkitError(f"--{name}-ms must be >= 0. Found {value}")
            cfg = replace(cfg, **{name: round(value / frame_ms)})
    return replace(cfg, vocoder_lookahead=min(cfg.vocoder_lookahead, cfg.lookahead))


def run_stream(rs, args) -> int:
    """``--stream``: one input (a file or '-') to one output (a file or '-'), chunk by chunk."""
    import sys

    import numpy as np

    from speechkit.audio.streaming import StreamWriter, read_chunks, read_pcm16
    from speechkit.errors import SpeechkitError

    if len(args.inputs) != 1:
        raise SpeechkitError(f"--stream takes one input (a file or '-'). Found {len(args.inputs)}")
    if not args.chunk_ms > 0:
        raise SpeechkitError(f"--chunk-ms must be > 0. Found {args.chunk_ms}")
    src, dst = str(args.inputs[0]), str(args.output)
    if src == "-":
        if args.rate is None or args.rate <= 0:
            raise SpeechkitError("input '-' is raw 16-bit PCM: give its sample rate with --rate")
        sr = args.rate
        chunks = read_pcm16(sys.stdin.buffer, max(1, int(sr * args.chunk_ms / 1000)))
    else:
        sr, chunks = read_chunks(args.inputs[0], args.chunk_ms)
    out = rs.stream(chunks, sr, speaker=_name_or_id(args.speaker), style=_name_or_id(args.style),
                    config=_stream_config(rs, args))
    rate = rs.output_sample_rate
    if dst == "-":
        print(f"writing raw 16-bit mono PCM at {rate} Hz", file=sys.stderr)
        sink = sys.stdout.buffer
        for y in out:
            sink.write((np.clip(y.numpy(), -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes())
            sink.flush()
        return 0
    with StreamWriter(args.output, rate) as w:
        for y in out:
            w.write(y)
    print(f"{src} -> {dst} ({w.frames / rate:.2f} s, streamed)", file=sys.stderr)
    return 0
