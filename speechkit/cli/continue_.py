"""``speechkit continue``: speech continuation with a unit LM (prompt -> units -> unit LM -> vocoder -> audio)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  speechkit continue prompt.wav -o out.wav --seconds 5 --seed 0                # the default bundle
  speechkit continue prompt.wav -o out.wav --encoder exp/encoder --ulm runs/ulm/model --vocoder runs/vocoder/model
  speechkit continue prompt.wav -o out.wav --model M --prompt-seconds 3 --temperature 0.8 --top-k 50 --no-prompt
  speechkit continue prompt.wav -o long.wav --model M --seconds 300 --cache tova --cache-size 512

The prompt's units are continued by sampling (temperature 0.8 by default, as TWIST); the vocoder synthesises
prompt + continuation with its duration predictor. Without --speaker the vocoder voice closest to the prompt is used.
--cache tova --cache-size K keeps at most K cached tokens per layer (TOVA eviction; also window, sinks, h2o):
memory stays flat however long the continuation."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser("continue", help="continue speech with a unit LM", formatter_class=HelpFormatter,
                       epilog=EXAMPLES, description="Continue a spoken prompt: encoder -> unit LM -> vocoder.")
    p.add_argument("input", type=Path, help="prompt audio file (any rate, mono or stereo)")
    p.add_argument("-o", "--output", type=Path, required=True, help="audio file to write")
    p.add_argument("--seconds", type=float, default=5.0, help="about how much speech to add")
    p.add_argument("--model", type=Path, default=None,
                   help="folder with encoder/, ulm/ and vocoder/ (default: checkpoints/default unless parts are given)")
    p.add_argument("--encoder", type=Path, default=None, help="speech-encoder folder (overrides MODEL/encoder)")
    p.add_argument("--ulm", type=Path, default=None, help="unit LM folder: speechkit, TWIST or slamkit")
    p.add_argument("--vocoder", type=Path, default=None, help="vocoder folder or official g_XXXXXXXX")
    p.add_argument("--prompt-seconds", type=float, default=None, help="use only the first S seconds as prompt")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (0 = greedy)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely units")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass")
    p.add_argument("--seed", type=int, default=None, help="makes the continuation reproducible")
    p.add_argument("--speaker", default=None, help="vocoder speaker name or id (default: closest to the prompt)")
    p.add_argument("--style", default=None, help="vocoder style name or id")
    p.add_argument("--no-prompt", action="store_true", help="write the continuation only")
    p.add_argument("--ignore-eos", action="store_true",
                   help="never end the utterance early: the continuation has the asked --seconds")
    p.add_argument("--cache", choices=["full", "tova", "window", "sinks", "h2o"], default="full",
                   help="KV-cache policy: full, or bounded to --cache-size entries per layer")
    p.add_argument("--cache-size", type=int, default=None, help="entries per layer kept by a bounded --cache")
    p.set_defaults(func=_run)


def _name_or_id(value: str | None):
    return int(value) if value is not None and value.isdigit() else value


def _run(args: argparse.Namespace) -> int:
    if not Path(args.input).is_file():  # before torch and the models load: a typo is reported at once
        from speechkit.errors import SpeechkitError

        raise SpeechkitError(f"{args.input}: no such file")
    from speechkit.audio import io
    from speechkit.pipeline import SpeechContinuation

    sc = SpeechContinuation.from_pretrained(args.model, encoder=args.encoder, ulm=args.ulm, vocoder=args.vocoder)
    wav, sr = io.load(args.input)
    if args.prompt_seconds is not None:
        wav = wav[: int(args.prompt_seconds * sr)]
    out = sc(wav, sr, seconds=args.seconds, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
             seed=args.seed, speaker=_name_or_id(args.speaker), style=_name_or_id(args.style),
             include_prompt=not args.no_prompt, cache=args.cache, cache_size=args.cache_size,
             stop_on_eos=not args.ignore_eos)
    io.save(args.output, out, sc.output_sample_rate)
    print(f"wrote {args.output}: {len(out) / sc.output_sample_rate:.2f} s at {sc.output_sample_rate} Hz "
          f"(prompt {len(wav) / sr:.2f} s)")
    return 0
