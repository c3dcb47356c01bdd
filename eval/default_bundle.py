#!/usr/bin/env python
"""Quality of the default bundle, measured: every figure of the "Default bundle" tables (docs/default_bundle.md).

1. Resynthesis of read test utterances (same voice): pocketsphinx WER vs the originals' WER (same decoder), F0
   errors, style accuracy (MFCC style classifier), and the bf16 vocoder path's WER beside the exact one.
2. Voice conversion of the same utterances to every bundle speaker: speaker similarity (resemblyzer cosine) of the
   converted speech to that speaker's real recordings, and WER.
3. A voice the bundle never saw (plain espeak-ng formant voices): WER before and after resynthesis.
4. Continuation of test prompts: is the generated part speech? (ASR words recognised per second, share of
   continuations with any word.)
5. Speed: resynthesis real-time factor on this machine's CPU threads.
6. Held-out sets no training stage reads (``--parts heldout``; data_prep/heldout_sets.py, docs/heldout_sets.md):
   real recordings of one woman, real single words of two people (closed-vocabulary recognition), unseen sentences
   in corpus voices and test-only voices, voice conversion on them; WER, speaker similarity and DNSMOS beside the
   originals'.

    .venv/bin/python eval/default_bundle.py --model checkpoints/default --data data/mini_expresso_120 \
        --style-classifier exp/default/style -o eval/default
    .venv/bin/python eval/default_bundle.py --parts heldout --heldout data/heldout -o eval/default
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

PARTS = ("resynthesis", "unseen", "continuation", "heldout")


def _nanmean(values) -> float | None:
    """Mean over the finite values (``None`` when there are none: e.g. GPE when no frame is voiced in both)."""
    v = np.asarray(values, dtype=float)
    return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else None


def _test_items(data: Path, limit: int, split: str = "test") -> list[dict]:
    """Read utterances of ``split`` (test by default), interleaved over speakers and styles (the first ``limit``)."""
    from speechkit.data.corpora import expresso

    texts = expresso.read_transcriptions(data)
    groups: dict[tuple, list] = defaultdict(list)
    for e in expresso.read_splits(data)[split]:
        if e.stem in texts:
            info = expresso.parse_stem(e.stem)
            groups[(info.speaker, info.style)].append({"stem": e.stem, "text": texts[e.stem], "speaker": info.speaker,
                                                        "style": info.style,
                                                        "path": expresso.audio_path(data, e.stem)})
    out = []
    for i in range(max(len(g) for g in groups.values())):
        for key in sorted(groups):
            if i < len(groups[key]):
                out.append(groups[key][i])
    return out[:limit]


def _train_refs(data: Path, speakers: list[str], per_speaker: int = 5) -> dict[str, list[Path]]:
    """Default-style train recordings of each speaker: the references of speaker similarity."""
    from speechkit.data.corpora import expresso

    refs: dict[str, list[Path]] = defaultdict(list)
    for e in expresso.read_splits(data)["train"]:
        info = expresso.parse_stem(e.stem)
        if info.speaker in speakers and info.style == "default" and len(refs[info.speaker]) < per_speaker:
            refs[info.speaker].append(expresso.audio_path(data, e.stem))
    return refs


def heldout_part(rs, heldout: Path, out: Path, transcribe, spk, limit: int | None = None) -> dict:
    """Figures on the sets of data_prep/heldout_sets.py: real phrases, real single words, unseen sentences.

    Every output is the default call ``rs(wav, sample_rate=sr)`` (the voice kept from the input) unless a row says
    otherwise; originals are scored by the same ASR, speaker encoder and DNSMOS.
    """
    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.mos import DNSMOS
    from speechkit.metrics.speaker import cosine
    from speechkit.metrics.wer import wer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
    from heldout_sets import read_items

    sr_out = rs.output_sample_rate
    mos = DNSMOS()
    results: dict = {"heldout": str(heldout)}
    rows_out: dict = {}

    def score(items, *, words_asr=None) -> list[dict]:
        rows = []
        for it in items[:limit]:
            wav, sr = io.load(it["path"])
            y = rs(wav, sr)
            io.save(out / "heldout" / f"{it['id']}.wav", y.clamp(-1, 1), sr_out)
            row = {"id": it["id"], "text": it["text"], "speaker": it["speaker"], "group": it["group"],
                   "orig": transcribe(wav, sr), "resynth": transcribe(y, sr_out),
                   "similarity": cosine(spk.embed(y, sr_out), spk.embed(wav, sr)),
                   "dnsmos_orig": mos(wav, sr)["dnsmos_ovrl"], "dnsmos_resynth": mos(y, sr_out)["dnsmos_ovrl"]}
            if words_asr is not None:
                row["word_orig"] = words_asr.transcribe(io.resample(wav, sr, 16000))
                row["word_resynth"] = words_asr.transcribe(io.resample(y, sr_out, 16000))
            rows.append(row)
        return rows

    def summary(rows: list[dict]) -> dict:
        t = [r["text"] for r in rows]
        return {"items": len(rows), "wer_originals": wer(t, [r["orig"] for r in rows]),
                "wer_resynthesis": wer(t, [r["resynth"] for r in rows]),
                "speaker_similarity": _nanmean([r["similarity"] for r in rows]),
                "dnsmos_originals": _nanmean([r["dnsmos_orig"] for r in rows]),
                "dnsmos_resynthesis": _nanmean([r["dnsmos_resynth"] for r in rows])}

    if (heldout / "real_phrases" / "items.tsv").is_file():
        rows = score(read_items(heldout / "real_phrases"))
        rows_out["real_phrases"] = rows
        results["real_phrases"] = summary(rows)
    if (heldout / "real_words" / "items.tsv").is_file():
        items = read_items(heldout / "real_words")
        rows = score(items, words_asr=PocketSphinxASR(words=[it["text"] for it in items]))
        rows_out["real_words"] = rows
        s = summary(rows)
        s["recognised_originals"] = float(np.mean([r["word_orig"] == r["text"] for r in rows]))
        s["recognised_resynthesis"] = float(np.mean([r["word_resynth"] == r["text"] for r in rows]))
        s["recognised_relative"] = s["recognised_resynthesis"] / max(s["recognised_originals"], 1e-9)
        s["vocabulary"] = len({it["text"] for it in items})
        results["real_words"] = s
    if (heldout / "unseen_sentences" / "items.tsv").is_file():
        items = read_items(heldout / "unseen_sentences")
        groups = {g: [it for it in items if it["group"] == g] for g in ("corpus_voice", "unseen_voice")}
        for g, its in groups.items():
            rows = score(its)
            rows_out[f"unseen_sentences_{g}"] = rows
            results[f"unseen_sentences_{g}"] = summary(rows)
        # voice conversion between the corpus voices the bundle knows, on sentences it never saw
        known = [s for s in (rs.vocoder.speakers or []) if s in {it["speaker"] for it in groups["corpus_voice"]}]
        if len(known) >= 2:
            refs = {s: np.mean([spk.embed(*io.load(it["path"])) for it in groups["corpus_voice"]
                                if it["speaker"] == s], axis=0) for s in known}
            conv = []
            for it in groups["corpus_voice"][:limit]:
                if it["speaker"] not in known:
                    continue
                wav, sr = io.load(it["path"])
                for target in known:
                    if target == it["speaker"]:
                        continue
                    y = rs(wav, sr, speaker=target)
                    e = spk.embed(y, sr_out)
                    conv.append({"id": it["id"], "text": it["text"], "source": it["speaker"], "target": target,
                                 "asr": transcribe(y, sr_out), "sim_target": cosine(e, refs[target]),
                                 "sim_source": cosine(e, refs[it["speaker"]])})
            rows_out["unseen_sentences_conversion"] = conv
            base = results["unseen_sentences_corpus_voice"]
            results["unseen_sentences_conversion"] = {
                "conversions": len(conv), "wer": wer([c["text"] for c in conv], [c["asr"] for c in conv]),
                "wer_originals": base["wer_originals"],
                "similarity_to_target": _nanmean([c["sim_target"] for c in conv]),
                "similarity_to_source": _nanmean([c["sim_source"] for c in conv]),
                "closer_to_target": float(np.mean([c["sim_target"] > c["sim_source"] for c in conv]))}
    (out / "heldout_rows.json").write_text(json.dumps(rows_out, indent=1))
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--data", type=Path, default=None,
                   help="the mini-Expresso the bundle was trained on (its test split; parts resynthesis, unseen, "
                        "continuation)")
    p.add_argument("--heldout", type=Path, default=Path("data/heldout"),
                   help="the sets of data_prep/heldout_sets.py (part heldout): real phrases, real words, unseen "
                        "sentences")
    p.add_argument("--heldout-limit", type=int, default=None, help="at most this many items per held-out set")
    p.add_argument("--style-classifier", type=Path, default=None)
    p.add_argument("--limit", type=int, default=80, help="test utterances (interleaved over speakers and styles)")
    p.add_argument("--unseen", type=int, default=30, help="sentences spoken by the unseen espeak-ng voices")
    p.add_argument("--prompts", type=int, default=20, help="continuation prompts")
    p.add_argument("--parts", default=",".join(PARTS),
                   help="comma list of the parts to run; the others keep their figures in OUTPUT/results.json")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()

    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.f0 import compare_f0
    from speechkit.metrics.speaker import SpeakerEncoder, cosine
    from speechkit.metrics.wer import wer
    from speechkit.pipeline import Resynthesizer, SpeechContinuation
    from speechkit.synth import tts

    torch.manual_seed(0)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    rs = Resynthesizer.from_pretrained(args.model)
    sr_out = rs.output_sample_rate
    asr = PocketSphinxASR()
    spk = SpeakerEncoder()
    clf = None
    if args.style_classifier is not None:
        from speechkit.metrics.style import StyleClassifier

        clf = StyleClassifier.from_pretrained(args.style_classifier)

    def transcribe(wav: torch.Tensor, sr: int) -> str:
        return asr.transcribe(io.resample(wav, sr, 16000) if sr != 16000 else wav)

    parts = set(args.parts.split(","))
    unknown = parts - set(PARTS)
    if unknown:
        p.error(f"--parts: unknown {sorted(unknown)} (choose from {', '.join(PARTS)})")
    if parts - {"heldout"} and args.data is None:
        p.error(f"--data is needed by the parts {sorted(parts - {'heldout'})}")
    if "heldout" in parts and not args.heldout.is_dir():
        p.error(f"--heldout {args.heldout}: no such folder (build it: python data_prep/heldout_sets.py {args.heldout})")
    items = _test_items(args.data, args.limit) if args.data is not None else []
    previous = out / "results.json"  # a partial run updates the figures of the parts it ran
    results = json.loads(previous.read_text()) if previous.is_file() and parts != set(PARTS) else {}
    if "resynthesis" in parts:
        refs = _train_refs(args.data, rs.vocoder.speakers or [])
        ref_emb = {s: np.mean([spk.embed(*io.load(pth)) for pth in paths], axis=0) for s, paths in refs.items()}
        rows, synth_time, default_time, audio_time = [], 0.0, 0.0, 0.0
        fast_precision = rs.vocoder.set_precision("bf16").precision  # fp32 where the CPU has no bf16 (one warning)
        rs.vocoder.set_precision("fp32")
        rs(io.load(items[0]["path"], sample_rate=16000)[0], 16000)  # warm-up (the speaker encoder loads here)
        for it in items:
            wav, sr = io.load(it["path"], sample_rate=16000)
            t = time.perf_counter()
            enc = rs.encode(wav, sr)
            same = rs.vocoder(enc["units"], speaker=it["speaker"], style=it["style"], durations=enc["durations"])
            synth_time += time.perf_counter() - t
            t = time.perf_counter()
            kept = rs(wav, sr)  # the default call: the voice is chosen from the input
            default_time += time.perf_counter() - t
            audio_time += len(wav) / sr
            rs.vocoder.set_precision(fast_precision)
            fast = rs.vocoder(enc["units"], speaker=it["speaker"], style=it["style"], durations=enc["durations"])
            rs.vocoder.set_precision("fp32")
            row = {"stem": it["stem"], "speaker": it["speaker"], "style": it["style"], "text": it["text"],
                   "orig": transcribe(wav, sr), "resynth": transcribe(same, sr_out),
                   "resynth_default_call": transcribe(kept, sr_out), "resynth_bf16": transcribe(fast.float(), sr_out)}
            f0 = compare_f0(wav, sr, same, sr_out)
            row.update({k: f0[k] for k in ("gpe", "vde", "ffe")})
            if clf is not None:
                row["style_orig_ok"] = clf.predict(wav, sr) == it["style"]
                row["style_resynth_ok"] = clf.predict(same, sr_out) == it["style"]
            conv = {}
            for target in rs.vocoder.speakers or []:
                if target == it["speaker"]:
                    continue
                y = rs.vocoder(enc["units"], speaker=target, style=it["style"], durations=enc["durations"])
                e = spk.embed(y, sr_out)
                conv[target] = {"sim_target": cosine(e, ref_emb[target]),
                                "sim_source": cosine(e, ref_emb[it["speaker"]]), "asr": transcribe(y, sr_out)}
            row["conversion"] = conv
            rows.append(row)
        (out / "resynthesis_rows.json").write_text(json.dumps(rows, indent=1))

        texts = [r["text"] for r in rows]
        results.update({"model": str(args.model), "test_utterances": len(rows),
                   "wer_originals": wer(texts, [r["orig"] for r in rows]),
                   "wer_resynthesis": wer(texts, [r["resynth"] for r in rows]),
                   "wer_resynthesis_default_call": wer(texts, [r["resynth_default_call"] for r in rows]),
                   "wer_resynthesis_bf16": wer(texts, [r["resynth_bf16"] for r in rows]), "bf16_path": fast_precision,
                   "gpe": _nanmean([r["gpe"] for r in rows]), "vde": float(np.nanmean([r["vde"] for r in rows])),
                   "ffe": float(np.nanmean([r["ffe"] for r in rows])),
                   "real_time_factor": synth_time / audio_time,
                   "real_time_factor_default_call": default_time / audio_time,
                   "torch_threads": torch.get_num_threads()})
        if clf is not None:
            results["style_accuracy_originals"] = float(np.mean([r["style_orig_ok"] for r in rows]))
            results["style_accuracy_resynthesis"] = float(np.mean([r["style_resynth_ok"] for r in rows]))
        conv = [c for r in rows for c in r["conversion"].values()]
        conv_texts = [r["text"] for r in rows for _ in r["conversion"]]
        if conv:
            results["conversion_similarity_to_target"] = float(np.mean([c["sim_target"] for c in conv]))
            results["conversion_similarity_to_source"] = float(np.mean([c["sim_source"] for c in conv]))
            results["conversion_wer"] = wer(conv_texts, [c["asr"] for c in conv])
            results["conversion_closer_to_target"] = float(np.mean([c["sim_target"] > c["sim_source"] for c in conv]))
            results["conversion_similarity_to_target_min"] = float(np.min([c["sim_target"] for c in conv]))
        by_style = defaultdict(lambda: ([], [], []))
        for r in rows:
            by_style[r["style"]][0].append(r["text"])
            by_style[r["style"]][1].append(r["orig"])
            by_style[r["style"]][2].append(r["resynth"])
        results["wer_by_style"] = {s: {"originals": wer(t, o), "resynthesis": wer(t, h)}
                                   for s, (t, o, h) in sorted(by_style.items())}

    # 3. unseen voices: plain espeak-ng formant voices reading test sentences
    if "unseen" in parts:
        unseen_rows = []
        voices = list(tts.ESPEAK_VOICES.values())
        for i, it in enumerate(items[: args.unseen]):
            v = voices[i % len(voices)]
            syn = tts.synthesize(it["text"], v)
            wav = torch.from_numpy(syn.wav).float()
            y = rs(wav, syn.sample_rate)
            io.save(out / "unseen" / f"{v.name}_{i:03d}.wav", y.clamp(-1, 1), sr_out)
            unseen_rows.append({"voice": v.espeak_voice, "text": it["text"], "orig": transcribe(wav, syn.sample_rate),
                                "resynth": transcribe(y, sr_out)})
        if unseen_rows:
            t = [r["text"] for r in unseen_rows]
            results["unseen_voice"] = {"utterances": len(unseen_rows),
                                       "voices": sorted({r["voice"] for r in unseen_rows}),
                                       "wer_originals": wer(t, [r["orig"] for r in unseen_rows]),
                                       "wer_resynthesis": wer(t, [r["resynth"] for r in unseen_rows])}
        (out / "unseen_rows.json").write_text(json.dumps(unseen_rows, indent=1))

    # 4. continuation: 3 s of new speech after the first 2.5 s of test prompts, as the LM ends it and at full length
    if "continuation" in parts:
        sc = SpeechContinuation.from_pretrained(args.model)
        cont_rows = {}
        for key, stop in (("continuation", True), ("continuation_full_length", False)):
            cont_rows[key] = []
            for i, it in enumerate(items[: args.prompts]):
                wav, sr = io.load(it["path"], sample_rate=16000)
                prompt = wav[: int(2.5 * sr)]
                y = sc(prompt, sr, seconds=3.0, seed=i, include_prompt=False, speaker=it["speaker"],
                       style=it["style"], stop_on_eos=stop)
                if len(y) == 0:  # the unit LM ended the utterance at once
                    cont_rows[key].append({"stem": it["stem"], "seconds": 0.0, "words": []})
                    continue
                io.save(out / key / f"{it['stem']}.wav", y.clamp(-1, 1), sc.output_sample_rate)
                words = transcribe(y, sc.output_sample_rate).split()
                cont_rows[key].append({"stem": it["stem"], "seconds": len(y) / sc.output_sample_rate, "words": words})
            r = cont_rows[key]
            results[key] = {
                "prompts": len(r), "mean_seconds": float(np.mean([x["seconds"] for x in r])),
                "with_any_word": float(np.mean([bool(x["words"]) for x in r])),
                "empty": sum(x["seconds"] == 0 for x in r),
                "words_per_second": float(sum(len(x["words"]) for x in r) /
                                          max(sum(x["seconds"] for x in r), 1e-9))}
        (out / "continuation_rows.json").write_text(json.dumps(cont_rows, indent=1))
    if "heldout" in parts:
        results["heldout"] = heldout_part(rs, args.heldout, out, transcribe, spk, args.heldout_limit)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
