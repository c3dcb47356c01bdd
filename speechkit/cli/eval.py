"""``speechkit eval BENCHMARK ...``: evaluation commands.

Each benchmark registers one sub-command in :data:`COMMANDS` (name -> function adding its parser), so new ones
(``folder``, ``resynthesis``, ...) are one function each. The pairwise likelihood benchmarks (``storycloze``,
``swuggy``, ``sblimp``) share :func:`_pairwise`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PAIRWISE_EXAMPLES = """examples:
  speechkit eval storycloze data/storycloze/sSC data/storycloze/tSC --ulm runs/ulm/model --encoder exp/encoder
  speechkit eval storycloze sSC --ulm TWIST-350M --encoder ENC --reduction sum -o results/twist
  speechkit encode sSC -o ssc.jsonl --encoder ENC && speechkit eval storycloze sSC --ulm M --units ssc.jsonl
  speechkit eval sblimp sblimp_wavs/ --ulm slam_scaled --encoder ENC        # slamkit layout, '+' separator

Folders: '{id}_correct.wav' / '{id}_incorrect.wav' pairs (released StoryCloze layout), or slamkit's
positional layout (files sorted by their leading integer, taken two by two, positive first).
A pair scores 1 if the positive file is more likely, 0.5 on a tie, 0 otherwise. Writes one CSV per folder."""


def _add_pairwise(sub: argparse._SubParsersAction, name: str, sep: str, what: str) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser(name, help=what, formatter_class=HelpFormatter, epilog=PAIRWISE_EXAMPLES,
                       description=f"{what}: pairwise log-likelihood accuracy of a unit LM.")
    p.add_argument("folders", nargs="+", type=Path, help="benchmark folders (one result each)")
    p.add_argument("--ulm", type=Path, required=True, help="unit LM folder (speechkit, TWIST or slamkit)")
    p.add_argument("--encoder", type=Path, help="speech-encoder folder (encoder.json) that made the LM's units")
    p.add_argument("--units", type=Path, nargs="+", help="units jsonl per folder from `speechkit encode FOLDER` "
                                                          "(instead of --encoder)")
    p.add_argument("--reduction", choices=["mean", "sum"], default="mean",
                   help="log-likelihood per token (mean, slamkit's default) or per sequence (sum)")
    p.add_argument("--layout", choices=["auto", "labelled", "positional"], default="auto", help="pair layout")
    p.add_argument("--sep", default=sep, help="separator after the leading id/index in file names")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="folder for per-pair CSVs and results.json (default: none written)")
    p.set_defaults(func=_pairwise, benchmark=name)


def _units_lookup(folder: Path, args: argparse.Namespace, index: int):
    """``path -> units`` for files of ``folder``: from a units jsonl, or by encoding the audio."""
    from speechkit.errors import SpeechkitError

    if args.units:
        from speechkit.data.manifest import read_units_jsonl

        if len(args.units) != len(args.folders):
            raise SpeechkitError(f"--units: {len(args.units)} file(s) for {len(args.folders)} folder(s); give one "
                                 "units jsonl per folder, in the same order")
        path = args.units[index]
        table = {r.id: r.units for r in read_units_jsonl(path)}

        def lookup(f: Path):
            key = f.relative_to(folder).with_suffix("").as_posix()
            if key not in table:
                raise SpeechkitError(f"{path}: no utterance with id {key!r} (ids are paths relative to {folder}, "
                                     "without extension, as `speechkit encode` writes them)")
            return table[key]

        return lookup
    if args.encoder is None:
        raise SpeechkitError("give --encoder (a speech-encoder folder) or --units (units jsonl per folder)")
    from speechkit.audio import io as audio_io

    encoder = args._encoder

    def encode(f: Path):
        wav, sr = audio_io.load(f)
        return encoder(wav, sample_rate=sr)["units"].tolist()

    return encode


def _pairwise(args: argparse.Namespace) -> int:
    import torch

    from speechkit.ulm import UnitLM
    from speechkit.ulm.pairwise import evaluate_pairs, find_pairs, write_pairs_csv

    lm = UnitLM.from_pretrained(args.ulm, device=args.device)
    args._encoder = None
    if args.encoder is not None and not args.units:
        from speechkit.units import SpeechEncoder

        args._encoder = SpeechEncoder.from_pretrained(args.encoder).eval().to(args.device)
        if args._encoder.vocab_size != lm.num_units:
            from speechkit.errors import SpeechkitError

            raise SpeechkitError(f"--encoder {args.encoder} makes {args._encoder.vocab_size} units but --ulm "
                                 f"{args.ulm} models {lm.num_units}")
    results = {}
    for i, folder in enumerate(args.folders):
        pairs = find_pairs(folder, sep=args.sep, layout=args.layout)
        with torch.inference_mode():
            result = evaluate_pairs(lm, pairs, _units_lookup(folder, args, i), reduction=args.reduction,
                                    batch_size=args.batch_size)
        name = folder.resolve().name
        results[name] = {**result.summary(), "folder": str(folder), "reduction": args.reduction}
        print(f"{args.benchmark} {name}: accuracy {result.accuracy:.4f} over {len(pairs)} pairs "
              f"({results[name]['ties']} ties, {args.reduction} log-likelihood)")
        if args.output is not None:
            write_pairs_csv(args.output / f"{name}.csv", result, root=folder)
    if args.output is not None:
        from speechkit.utils.files import atomic_open

        with atomic_open(args.output / "results.json") as f:
            json.dump({"benchmark": args.benchmark, "ulm": str(args.ulm), "results": results}, f, indent=2)
        print(f"wrote {args.output / 'results.json'} and one CSV per folder")
    return 0


FOLDER_EXAMPLES = """examples:
  speechkit eval folder --hyp generated/ --transcripts texts.tsv -o reports/tts          # WER / CER only
  speechkit eval folder --hyp resynth/ --ref data/test_wavs --transcripts texts.tsv \\
      --metrics wer,cer,f0,speaker,dnsmos --jobs 2 -o reports/resynth
  speechkit eval folder --hyp out/ --ref ref/ --metrics f0 --pitch-method pyin --f0-min 60 -o reports/f0
  speechkit eval folder --hyp continuations/ --metrics genppl,dnsmos,vad --prompts prompts.tsv -o reports/cont
  speechkit eval folder --hyp continuations/ --metrics genppl --asr models/whisper-small.en \\
      --text-lm meta-llama/Llama-3.2-1B -o reports/cont_llama                         # slamkit's setting

Files pair by name without extension (sub-folders allowed). Transcript lines are 'stem<TAB>text'. Without
--transcripts, WER is measured against the ASR of the --ref file. Writes OUT/report.json ('summary' keyed by
metric: wer, cer, gpe, vde, ffe, f0_rmse, f0_corr, speaker_sim, dnsmos_ovrl, ..., genppl, asr_nonempty,
has_speech, speech_seconds;
'per_file'), OUT/report.csv and OUT/report.html (audio players, F0 contours, spectrograms). genppl: the ASR
transcript's perplexity under the text LM (given the prompt's transcript with --prompts, 'stem<TAB>text' lines)."""

RESYNTHESIS_EXAMPLES = """examples:
  speechkit eval resynthesis --data data/mini_expresso --split test --encoder exp/encoder \\
      --vocoder exp/vocoder -o reports/resynth
  speechkit eval resynthesis --data data/expresso --encoder ENC --vocoder VOC --target-speaker ex01 \\
      --style-classifier exp/style --metrics wer,cer,f0,speaker,dnsmos --jobs 2 -o reports/expresso

--data is an Expresso root (cut into <=15 s segments at 16 kHz under OUT/segments, re-used on re-runs) or a
folder prepared by prepare_expresso. Writes OUT/audio/{same,converted}/, OUT/report.json, .csv and .html with
per-utterance metrics, aggregates by speaker and style, and the units' bitrate."""


def _add_metric_options(p: argparse.ArgumentParser, default: str, protocol: str = "wide") -> None:
    p.add_argument("--metrics", default=default, help="comma-separated: wer, cer, f0, speaker, dnsmos, genppl, vad")
    p.add_argument("--asr", default="pocketsphinx", help="'pocketsphinx' or a local Hugging Face CTC/Whisper folder")
    p.add_argument("--text-lm", default=None,
                   help="GenPPL's text LM: a Hugging Face causal-LM folder or hub name (default: the bundle's, "
                        "checkpoints/default/textlm)")
    p.add_argument("--f0-protocol", choices=["wide", "fairseq"], default=protocol,
                   help="F0 settings by name: wide = YIN 50-500 Hz (covers low male voices); fairseq = YIN "
                        "100-500 Hz, the Expresso / speech-resynthesis protocol, for numbers comparable with theirs")
    p.add_argument("--pitch-method", choices=["yin", "pyin", "crepe"], default=None,
                   help="F0 tracker (default: the protocol's, yin)")
    p.add_argument("--f0-min", type=float, default=None, help="lowest F0 in Hz (default: the protocol's)")
    p.add_argument("--f0-max", type=float, default=None, help="highest F0 in Hz (default: the protocol's)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for scoring")
    p.add_argument("--no-media", action="store_true", help="no audio copies or images for report.html")
    p.add_argument("-o", "--output", type=Path, required=True, help="report folder")


def _metric_config(args: argparse.Namespace):
    from speechkit.metrics.f0 import PitchConfig
    from speechkit.metrics.folder import FolderEvalConfig

    pitch = PitchConfig.protocol(args.f0_protocol, method=args.pitch_method, fmin=args.f0_min, fmax=args.f0_max)
    return FolderEvalConfig(metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()), asr=args.asr,
                            text_lm=args.text_lm, pitch=pitch, jobs=args.jobs, media=not args.no_media)


def _print_summary(summary: dict, out: Path) -> None:
    print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()))
    print(f"wrote {out / 'report.json'}, report.csv and report.html")


def _add_folder(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser("folder", help="speech metrics on a folder of audio", formatter_class=HelpFormatter,
                       epilog=FOLDER_EXAMPLES, description="Score a folder of audio: WER/CER (ASR), F0 errors and "
                       "speaker similarity against reference audio, DNSMOS.")
    p.add_argument("--hyp", type=Path, required=True, help="folder of audio to evaluate")
    p.add_argument("--ref", type=Path, help="folder of reference audio, paired by file name")
    p.add_argument("--transcripts", type=Path, help="reference texts, one 'stem<TAB>text' line per file")
    p.add_argument("--prompts", type=Path, help="prompt transcripts for genppl, one 'stem<TAB>text' line per file")
    _add_metric_options(p, "wer,cer")
    p.set_defaults(func=_folder)


def _folder(args: argparse.Namespace) -> int:
    from speechkit.metrics.folder import evaluate_folder

    report = evaluate_folder(args.hyp, ref_dir=args.ref, transcripts=args.transcripts, out=args.output,
                             config=_metric_config(args), prompts=args.prompts)
    _print_summary(report["summary"], args.output)
    return 0


def _add_resynthesis(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser("resynthesis", help="Expresso resynthesis benchmark", formatter_class=HelpFormatter,
                       epilog=RESYNTHESIS_EXAMPLES, description="Encode each utterance of an Expresso split to "
                       "units, decode it (same voice, and converted to --target-speaker), score it.")
    p.add_argument("--data", type=Path, required=True, help="Expresso root (or a prepared segments folder)")
    p.add_argument("--split", choices=["train", "dev", "test"], default="test", help="which split")
    p.add_argument("--encoder", type=Path, required=True, help="speech-encoder folder (encoder.json)")
    p.add_argument("--vocoder", type=Path, required=True, help="vocoder folder (speechkit or official g_XXXXXXXX)")
    p.add_argument("--target-speaker", help="vocoder speaker to convert every utterance to")
    p.add_argument("--style-classifier", type=Path,
                   help="style-classifier folder, for style accuracy: a StyleClassifier or an early-exit classifier "
                        "(speechkit.adaptive; stops at the first confident exit)")
    p.add_argument("--kinds", default="read,conversational", help="read and/or conversational utterances")
    p.add_argument("--limit", type=int, help="score only the first N utterances (by id)")
    _add_metric_options(p, "wer,cer,f0,speaker", protocol="fairseq")
    p.set_defaults(func=_resynthesis)


def _resynthesis(args: argparse.Namespace) -> int:
    from speechkit.metrics.resynthesis import run_resynthesis

    report = run_resynthesis(args.data, encoder=args.encoder, vocoder=args.vocoder, out=args.output,
                             split=args.split, target_speaker=args.target_speaker,
                             style_classifier=args.style_classifier, config=_metric_config(args), limit=args.limit,
                             kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()))
    _print_summary(report["summary"], args.output)
    return 0


def _add_text_storycloze(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser("storycloze-text", help="text topline of the synthetic StoryCloze (a text LM)",
                       formatter_class=HelpFormatter,
                       description="Accuracy of a Hugging Face text LM on the text of a synthetic StoryCloze "
                                   "(stories.jsonl written by data_prep/make_storycloze.py), scored like the "
                                   "spoken benchmark.",
                       epilog="examples:\n  speechkit eval storycloze-text data/twist/storycloze/stories.jsonl "
                              "--text-lm exp/twist/textlm/model")
    p.add_argument("stories", type=Path, help="stories.jsonl of the synthetic StoryCloze")
    p.add_argument("--text-lm", type=Path, required=True, help="HF causal LM folder with its tokenizer")
    p.add_argument("--reduction", choices=["mean", "sum"], default="mean", help="per-token mean or sum")
    p.set_defaults(func=_text_storycloze)


def _text_storycloze(args: argparse.Namespace) -> int:
    from speechkit.ulm.pairwise import text_storycloze

    r = text_storycloze(args.text_lm, args.stories, reduction=args.reduction)
    print(f"text StoryCloze ({r['pairs']} stories, {args.reduction} log-likelihood): sSC {r['sSC']:.4f}  "
          f"tSC {r['tSC']:.4f}")
    return 0


COMMANDS = {
    "storycloze": lambda sub: _add_pairwise(sub, "storycloze", "_", "spoken StoryCloze (sSC / tSC)"),
    "swuggy": lambda sub: _add_pairwise(sub, "swuggy", "_", "sWUGGY (word vs non-word)"),
    "sblimp": lambda sub: _add_pairwise(sub, "sblimp", "+", "sBLIMP (grammatical vs ungrammatical)"),
    "storycloze-text": _add_text_storycloze,
    "folder": _add_folder,
    "resynthesis": _add_resynthesis,
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    from speechkit.cli.formatting import HelpFormatter

    p = sub.add_parser("eval", help="evaluate models on benchmarks", formatter_class=HelpFormatter,
                       description="Evaluate models. Benchmarks: " + ", ".join(COMMANDS),
                       epilog="examples:\n  speechkit eval storycloze data/storycloze/sSC --ulm runs/ulm/model "
                              "--encoder exp/encoder\n  speechkit eval folder --hyp out/ --ref ref/ --transcripts "
                              "texts.tsv --metrics wer,cer,f0,speaker -o report\n  speechkit eval resynthesis "
                              "--data data/mini_expresso --encoder ENC --vocoder VOC -o report"
                              "\n\nRun `speechkit eval BENCHMARK --help` for its options.")
    benchmarks = p.add_subparsers(dest="benchmark_command", metavar="BENCHMARK", required=True)
    for add in COMMANDS.values():
        add(benchmarks)
