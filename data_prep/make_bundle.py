#!/usr/bin/env python
"""Assembles the default bundle: ``encoder/`` + ``vocoder/`` + ``ulm/`` + ``textlm/`` (GenPPL's text LM, optional)
+ ``samples/`` + a model card.

Every part is loaded first (so a broken part fails here, not in a user's hands), the folder is written next to the
target and swapped in at the end, and the total size is checked against the budget.

    .venv/bin/python data_prep/make_bundle.py --encoder exp/default/k100/encoder \
        --vocoder exp/default/k100/vocoder/model --mel-vocoder exp/default/vocos/model --ulm exp/default/ulm/model \
        --text-lm exp/default/genppl_lm/model --corpus data/mini_expresso_120 -o checkpoints/default
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

CARD = """# speechkit default bundle

Small models speechkit trained itself, on speech it synthesised itself: nothing here was downloaded.

- `encoder/` ({enc_mb:.1f} MB): HuBERT small ({hubert_params:.1f} M parameters), layer {layer}, k-means K={k}.
  Supervision: {supervision}
- `vocoder/` ({voc_mb:.1f} MB): {vocoder} ({voc_params:.1f} M), speakers {speakers}; styles {styles}; duration
  predictor; the mean speaker embedding of each speaker's training speech (`speaker_embeddings.json`).
- `ulm/` ({ulm_mb:.1f} MB): TWIST unit LM warm-started from the small text LM ({ulm_params:.1f} M).
{textlm_line}- `samples/` ({samples_mb:.1f} MB): test-split utterances no model saw in training, with `transcripts.txt`.

Loading:

```python
from speechkit import Resynthesizer, SpeechContinuation

rs = Resynthesizer.from_pretrained("checkpoints/default")
sc = SpeechContinuation.from_pretrained("checkpoints/default")
```

## Data
The synthetic mini-Expresso (`speechkit prepare mini-expresso DATA --minutes {minutes:g}`): {minutes:g} minutes of
read speech from espeak-ng driving the MBROLA voices us1, us2, us3 and en1, in five styles (default, animated,
slow, fast, whisper) made by rescaling the MBROLA pitch and duration stream (whisper: LPC noise excitation).
{text_note} The unit LM is trained on the train split's units; the text LM on the synthetic text corpus
(`speechkit prepare text-corpus`).

## How it was made
`recipes/default/run.sh` (all stages; the README lists the exact commands and which ran on a GPU). Metrics and the
K trade-off are in the main README, "Default bundle".

## Licences
speechkit's code is MIT. The MBROLA voices the training speech came from (us1, us2, us3, en1) are licensed for
non-commercial, non-military use only, with the voices' own terms (see the `mbrola-*` Debian packages): treat these
weights, trained on their output, as research-only.

## Limits
Trained on four synthetic voices: resynthesis of real human speech or unseen voices is far from the training data
and degrades. The figures on real recordings, real single words and unseen sentences, none of which any training
stage read: docs/default_bundle.md and docs/heldout_sets.md.
"""


OWN_CARD = """# speechkit bundle trained on {source}

Trained by `recipes/own_data/run.sh` on {utterances} utterances ({hours:.2f} h) of {speakers} speaker(s):
{layout} layout{transcribed}. Splits: train {train_min:.1f} min, dev {dev_min:.1f} min, test {test_min:.1f} min
(the test split was never trained on).

- `encoder/` ({enc_mb:.1f} MB): HuBERT ({hubert_params}), layer {layer}, k-means K={k}.
- `vocoder/` ({voc_mb:.1f} MB): {vocoder}; speakers {speakers_list}.
- `ulm/` ({ulm_mb:.1f} MB): unit LM ({ulm_params:.1f} M parameters, {ulm_init}).
- `samples/` ({samples_mb:.1f} MB): test-split utterances, one per speaker.

```python
from speechkit import Resynthesizer, SpeechContinuation

rs = Resynthesizer.from_pretrained("{folder}")
sc = SpeechContinuation.from_pretrained("{folder}")
```

## Licences
These weights were trained on the recordings above: they inherit those recordings' terms, and those of any encoder
or text LM they started from.
"""


def _count(folder: Path) -> str:
    files = sorted(folder.glob("*.safetensors"))
    return f"{_params(files[0]):.1f} M parameters" if files else "official checkpoint"


def _finish_own_data(args, tmp: Path, encoder, vocoder, lm) -> int:
    """Samples from a prepared own-data corpus' test split, the card, the size check and the swap."""
    from speechkit.audio import io
    from speechkit.data.corpora.own import read_utterances

    rows = read_utterances(args.prepared)
    summary = json.loads((args.prepared / "summary.json").read_text()) if (args.prepared / "summary.json").is_file() \
        else {}
    picked: dict[str, dict] = {}
    for r in rows:
        if r["split"] == "test" and r["speaker"] not in picked:
            picked[r["speaker"]] = r
    lines = []
    (tmp / "samples").mkdir(parents=True, exist_ok=True)
    for _, r in sorted(picked.items())[: args.samples]:
        wav, _ = io.load(r["wav"], sample_rate=16000)
        io.save(tmp / "samples" / f"{r['id']}.wav", wav, 16000)
        if r["text"]:
            lines.append(f"{r['id']}\t{r['text']}\n")
    if lines:
        (tmp / "samples" / "transcripts.txt").write_text("".join(lines))
    enc_cfg = json.loads((tmp / "encoder" / "encoder.json").read_text())
    voc_cfg = json.loads((tmp / "vocoder" / "config.json").read_text())
    if voc_cfg["kind"] == "unit_mel":
        mel_dir = tmp / "vocoder" / "mel_vocoder"
        wave = "Vocos mel vocoder in `mel_vocoder/`" if mel_dir.is_dir() else "Griffin-Lim"
        described = f"unit-to-mel decoder with a duration predictor + {wave}"
    else:
        described = "CodeHiFiGAN"
    split_min = {s: sum(r["seconds"] for r in rows if r["split"] == s) / 60 for s in ("train", "dev", "test")}
    info = getattr(lm, "info", {}) or {}
    ulm_init = ("warm-started from " + str(info.get("text_lm", "a text LM"))) if info.get("init") == "warm" \
        else "cold start, no text LM"
    card = OWN_CARD.format(
        source=summary.get("source", args.prepared), utterances=len(rows), hours=sum(r["seconds"] for r in rows) / 3600,
        speakers=len({r["speaker"] for r in rows}), layout=summary.get("layout", "?"),
        transcribed=", with transcripts" if any(r["text"] for r in rows) else ", no transcripts",
        train_min=split_min["train"], dev_min=split_min["dev"], test_min=split_min["test"],
        enc_mb=_mb(tmp / "encoder"), hubert_params=_count(tmp / "encoder" / enc_cfg["hubert"]),
        layer=enc_cfg["layer"], k=encoder.vocab_size, voc_mb=_mb(tmp / "vocoder"), vocoder=described,
        speakers_list=", ".join(vocoder.speakers or []) or "one", ulm_mb=_mb(tmp / "ulm"),
        ulm_params=_params(tmp / "ulm" / "model.safetensors"), ulm_init=ulm_init, samples_mb=_mb(tmp / "samples"),
        folder=args.output)
    (tmp / "README.md").write_text(card)
    return _swap(args, tmp)


def _swap(args, tmp: Path) -> int:
    total = _mb(tmp)
    if total > args.max_mb:
        print(f"{tmp}: {total:.1f} MB exceeds the {args.max_mb} MB budget (--max-mb)", file=sys.stderr)
        return 1
    # a kill at any point leaves the old bundle whole, no bundle, or the new one whole: never a half-deleted one
    old = args.output.with_name(args.output.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if args.output.exists():
        args.output.rename(old)
    tmp.rename(args.output)
    shutil.rmtree(old, ignore_errors=True)
    print(f"wrote {args.output}: {total:.1f} MB (encoder {_mb(args.output / 'encoder'):.1f}, vocoder "
          f"{_mb(args.output / 'vocoder'):.1f}, ulm {_mb(args.output / 'ulm'):.1f})")
    return 0


def _params(tensors_path: Path) -> float:
    from safetensors.torch import load_file

    return sum(t.numel() for t in load_file(str(tensors_path)).values()) / 1e6


def _mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _text_note(corpus: Path) -> str:
    """What the corpus's read sentences are, from its completion marker."""
    marker = corpus / ".speechkit_complete.json"
    cfg = json.loads(marker.read_text()) if marker.is_file() else {}
    if cfg.get("text"):
        return (f"A share {cfg.get('text_share', 0.5):g} of the read sentences are lines of `{Path(cfg['text']).name}` "
                "(WordNet's usage examples: ordinary English), the rest come from the project's sentence grammar.")
    return "The read sentences come from the project's sentence grammar."


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", type=Path, required=True, help="speech-encoder folder")
    p.add_argument("--vocoder", type=Path, required=True, help="speechkit vocoder folder (CodeHiFiGAN or unit-to-mel)")
    p.add_argument("--supervision", default="self-supervised (HuBERT masked prediction of its own clusters, two "
                   "iterations); no labels", help="what the encoder was trained on, for the model card")
    p.add_argument("--mel-vocoder", type=Path, default=None,
                   help="mel vocoder folder (speechkit train vocos) copied to vocoder/mel_vocoder, replacing "
                        "Griffin-Lim (unit-to-mel vocoders only)")
    p.add_argument("--ulm", type=Path, required=True, help="unit LM folder")
    p.add_argument("--text-lm", type=Path, help="GenPPL's text LM (speechkit train textlm data.normalize=asr)")
    p.add_argument("--corpus", type=Path, help="the mini-Expresso root (samples: its test split)")
    p.add_argument("--prepared", type=Path,
                   help="instead of --corpus: a corpus made by `speechkit prepare own-data` (recipes/own_data); "
                        "samples come from its test split and the card describes it")
    p.add_argument("--samples", type=int, default=4, help="test utterances to copy into samples/ (one per speaker)")
    p.add_argument("--minutes", type=float, default=120, help="read speech in the corpus (for the card)")
    p.add_argument("--max-mb", type=float, default=60.0, help="size budget of the whole bundle")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    if (args.corpus is None) == (args.prepared is None):
        p.error("give exactly one of --corpus (mini-Expresso) and --prepared (speechkit prepare own-data)")

    from speechkit.audio import io
    from speechkit.data.corpora import expresso
    from speechkit.metrics.genppl import TextLMScorer
    from speechkit.ulm import UnitLM
    from speechkit.units import SpeechEncoder
    from speechkit.vocoders import UnitVocoder

    encoder = SpeechEncoder.from_pretrained(args.encoder)
    vocoder = UnitVocoder.from_pretrained(args.vocoder)
    lm = UnitLM.from_pretrained(args.ulm)
    if not encoder.vocab_size == vocoder.vocab_size == lm.num_units:
        print(f"unit vocabularies differ: encoder {encoder.vocab_size}, vocoder {vocoder.vocab_size}, unit LM "
              f"{lm.num_units}", file=sys.stderr)
        return 1
    scorer = TextLMScorer.from_pretrained(args.text_lm) if args.text_lm is not None else None
    tmp = args.output.with_name(args.output.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(args.encoder, tmp / "encoder")
    shutil.copytree(args.vocoder, tmp / "vocoder")
    if args.mel_vocoder is not None:
        if not hasattr(vocoder, "mel_vocoder"):
            print(f"--mel-vocoder: {args.vocoder} is not a unit-to-mel vocoder", file=sys.stderr)
            return 1
        shutil.rmtree(tmp / "vocoder" / "mel_vocoder", ignore_errors=True)
        shutil.copytree(args.mel_vocoder, tmp / "vocoder" / "mel_vocoder")
        vocoder = UnitVocoder.from_pretrained(tmp / "vocoder")   # refuses a mel vocoder of other mel settings
    shutil.copytree(args.ulm, tmp / "ulm", ignore=shutil.ignore_patterns("checkpoint*", "*.pt"))
    if scorer is not None:
        shutil.copytree(args.text_lm, tmp / "textlm", ignore=shutil.ignore_patterns("checkpoint*", "*.pt"))

    if args.prepared is not None:
        return _finish_own_data(args, tmp, encoder, vocoder, lm)
    # samples: the first test utterance of each speaker in the default style, at 16 kHz
    texts = expresso.read_transcriptions(args.corpus)
    picked: dict[str, str] = {}
    for e in expresso.read_splits(args.corpus)["test"]:
        info = expresso.parse_stem(e.stem)
        if info.style == "default" and info.speaker not in picked and e.stem in texts:
            picked[info.speaker] = e.stem
    lines = []
    for _, stem in sorted(picked.items())[: args.samples]:
        wav, sr = io.load(expresso.audio_path(args.corpus, stem), sample_rate=16000)
        io.save(tmp / "samples" / f"{stem}.wav", wav, 16000)
        lines.append(f"{stem}\t{texts[stem]}\n")
    (tmp / "samples" / "transcripts.txt").write_text("".join(lines))

    enc_cfg = json.loads((tmp / "encoder" / "encoder.json").read_text())
    voc_cfg = json.loads((tmp / "vocoder" / "config.json").read_text())
    m = voc_cfg["model"]
    if voc_cfg["kind"] == "unit_mel":
        mel_dir = tmp / "vocoder" / "mel_vocoder"
        if mel_dir.is_dir():
            vm = json.loads((mel_dir / "config.json").read_text())
            wave = (f"{vm['kind']} mel vocoder in `mel_vocoder/` ({_params(mel_dir / 'model.safetensors'):.1f} M"
                    + (f", {vm['model']['num_layers']} ConvNeXt blocks of {vm['model']['dim']}, inverse-STFT head"
                       if vm["kind"] == "vocos" else "") + "; Griffin-Lim stays selectable)")
        else:
            wave = f"Griffin-Lim ({m['griffin_lim_iters']} iterations)"
        described = (f"unit-to-mel decoder ({len(m['dilations'])} dilated residual layers of {m['channels']} channels, "
                     f"speaker and style embeddings) + {wave}")
    else:
        described = f"CodeHiFiGAN, {m['generator']['upsample_initial_channel']}-channel generator"
    card = CARD
    if enc_cfg.get("kind") == "pocketsphinx-phones":  # no weights of ours: the units are pocketsphinx's phones
        card = card.replace("HuBERT small ({hubert_params:.1f} M parameters), layer {layer}, k-means K={k}.",
                            "the phones pocketsphinx's en-us acoustic model (installed with pocketsphinx, trained on "
                            "real speech) recognises, K={k} units\n  (`speechkit.units.phones.PhoneEncoder`).")
    card = card.format(
        hubert_params=_params(next((tmp / "encoder" / "hubert").glob("*.safetensors")))
        if "hubert" in enc_cfg else 0.0, layer=enc_cfg.get("layer"),
        k=encoder.vocab_size, enc_mb=_mb(tmp / "encoder"), supervision=args.supervision, vocoder=described,
        voc_params=_params(tmp / "vocoder" / "model.safetensors"),
        speakers=", ".join(vocoder.speakers or []), styles=", ".join(vocoder.styles or []), voc_mb=_mb(tmp / "vocoder"),
        ulm_params=_params(tmp / "ulm" / "model.safetensors"), ulm_mb=_mb(tmp / "ulm"),
        samples_mb=_mb(tmp / "samples"), minutes=args.minutes, text_note=_text_note(args.corpus),
        textlm_line="" if scorer is None else
        f"- `textlm/` ({_mb(tmp / 'textlm'):.1f} MB): GenPPL's text LM "
        f"({_params(tmp / 'textlm' / 'model.safetensors'):.1f} M), trained on the text corpus normalised as ASR "
        f"output (`normalize: {scorer.normalize}`).\n")
    (tmp / "README.md").write_text(card)
    return _swap(args, tmp)


if __name__ == "__main__":
    sys.exit(main())
