#!/usr/bin/env python
"""Before and after DPO: GenPPL and diversity of two unit LMs' continuations of the same test prompts.

    .venv/bin/python eval/dpo.py --model checkpoints/default --aligned exp/dpo/run/model \\
        --data data/mini_expresso_120 --prompts 100 --samples 3 -o eval/dpo

Prompts: the first ``--prompt-seconds`` of read **test** utterances of the mini-Expresso (the pairs DPO learnt
from were made on train-split prompts), as ``eval/continuation.py`` picks them. Each system continues each prompt
``--samples`` times by ``--seconds`` (temperature 0.8, the end token disabled; sample j of prompt i uses seed
``1000 i + 500 + j`` in both LMs); the bundle's vocoder speaks the new part in the prompt's voice and style,
pocketsphinx transcribes it, and the judge (``--judge``, default the bundle's ``textlm/``: not the ranker that
chose the pairs) scores the transcript given the prompt's transcript.

Per system: GenPPL (``exp`` of the mean per-prompt log-perplexity, each prompt's mean over its samples; 95%
bootstrap interval over prompts), the share of transcripts with words, and diversity: auto-BLEU (n = 2) of the
transcript's words and of the continuation's units (the share of a sequence's bigrams repeated within it; lower
is more diverse). The aligned / reference GenPPL ratio gets a paired bootstrap interval over prompts. Rows: the
real rest of each utterance (topline), the reference LM (``--model``'s ``ulm/`` or ``--reference``), the aligned
LM, and the unigram floor of ``eval/continuation.py`` (units drawn from the prompt's own unit frequencies).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _per_prompt(samples: list[dict]) -> float:
    v = [s["nll"] for s in samples if np.isfinite(s["nll"])]
    return float(np.mean(v)) if v else math.nan


def _ratio(a: list[float], b: list[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """exp(mean(b - a)) over prompts where both are finite, with a 95% paired bootstrap interval."""
    d = np.asarray([y - x for x, y in zip(a, b, strict=True) if np.isfinite(x) and np.isfinite(y)])
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(rounds, len(d)))].mean(1)
    return float(np.exp(d.mean())), float(np.exp(np.quantile(means, 0.025))), float(np.exp(np.quantile(means, 0.975)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("checkpoints/default"), help="bundle: encoder, vocoder, ulm")
    p.add_argument("--reference", type=Path, default=None, help="the LM before DPO (default: MODEL/ulm)")
    p.add_argument("--aligned", type=Path, help="the LM after DPO (same units; required unless --from-rows)")
    p.add_argument("--judge", type=Path, default=None, help="GenPPL's text LM (default: MODEL/textlm)")
    p.add_argument("--data", type=Path, help="the mini-Expresso (test-split prompts; required unless --from-rows)")
    p.add_argument("--prompts", type=int, default=100)
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--prompt-seconds", type=float, default=1.5)
    p.add_argument("--min-rest", type=float, default=0.5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--from-rows", action="store_true", help="only re-make the table from OUTPUT/rows.json")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    out = args.output
    if args.from_rows:
        saved = json.loads((out / "results.json").read_text())
        summarize(json.loads((out / "rows.json").read_text()), saved["meta"], out)
        return 0
    if args.aligned is None or args.data is None:
        p.error("--aligned and --data are required (unless --from-rows)")

    from default_bundle import _test_items

    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.genppl import TextLMScorer
    from speechkit.pipeline import SpeechContinuation
    from speechkit.precision import machine_line
    from speechkit.ulm import UnitLM

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    ref = SpeechContinuation.from_pretrained(args.model)
    if args.reference is not None:
        ref = SpeechContinuation(ref.encoder, UnitLM.from_pretrained(args.reference), ref.vocoder)
    aligned = SpeechContinuation(ref.encoder, UnitLM.from_pretrained(args.aligned), ref.vocoder)
    if aligned.lm.num_units != ref.lm.num_units:
        p.error(f"--aligned models {aligned.lm.num_units} units, the reference {ref.lm.num_units}")
    judge = TextLMScorer.from_pretrained(args.judge or args.model / "textlm")
    asr = PocketSphinxASR()
    sr_out = ref.output_sample_rate
    items = [it for it in _test_items(args.data, 10_000)
             if io.info(it["path"]).num_frames / io.info(it["path"]).sample_rate >= args.prompt_seconds + args.min_rest]
    items = items[: args.prompts]

    def listen(y: torch.Tensor, sr: int, context: str) -> dict:
        words = asr.transcribe(io.resample(y, sr, 16000) if sr != 16000 else y) if len(y) else ""
        nll, tokens = judge.nll([words], [context])[0]
        return {"asr": words, "nll": nll / tokens if tokens else math.nan, "tokens": tokens}

    def heard(sc, units, durations, new, it, context: str) -> dict:
        y = sc._render(units, durations, new, it["speaker"], it["style"], include_prompt=False)
        return {**listen(y, sr_out, context), "units": new.tolist()}

    rows, t0 = [], time.time()
    for i, it in enumerate(items):
        wav, sr = io.load(it["path"], sample_rate=16000)
        cut = int(args.prompt_seconds * sr)
        enc = ref.resynthesizer.encode(wav[:cut], sr)
        units, durations = enc["units"].cpu(), enc["durations"].cpu()
        num_new = max(1, math.ceil(args.seconds * len(units) / args.prompt_seconds))
        context = asr.transcribe(wav[:cut])
        row = {"stem": it["stem"], "prompt_asr": context, "original": listen(wav[cut:], sr, context)}
        for name, sc in (("reference", ref), ("aligned", aligned)):
            row[name] = [heard(sc, units, durations,
                               sc.continue_units(units, num_new, seed=1000 * i + 500 + j, stop_on_eos=False), it,
                               context) for j in range(args.samples)]
        g = torch.Generator().manual_seed(i)
        freq = torch.bincount(units, minlength=ref.lm.num_units).float() + 0.1
        row["floor"] = [heard(ref, units, durations, torch.multinomial(freq / freq.sum(), num_new, replacement=True,
                                                                       generator=g), it, context)]
        rows.append(row)
        print(f"[{i + 1}/{len(items)}] {it['stem']}: ref {row['reference'][0]['asr']!r} | "
              f"aligned {row['aligned'][0]['asr']!r} ({(time.time() - t0) / (i + 1):.1f} s/prompt)", flush=True)
    meta = {"machine": machine_line(), "date": time.strftime("%Y-%m-%d"), "prompts": len(rows),
            "samples": args.samples, "prompt_seconds": args.prompt_seconds, "seconds": args.seconds,
            "reference": str(args.reference or args.model / "ulm"), "aligned": str(args.aligned),
            "judge": judge.name}
    (out / "rows.json").write_text(json.dumps(rows))
    summarize(rows, meta, out)
    return 0


def summarize(rows: list[dict], meta: dict, out: Path) -> None:
    from continuation import _fmt, _interval, _markdown

    from speechkit.metrics.diversity import mean_auto_bleu

    def system(name: str, key: str) -> dict:
        samples = [s for r in rows for s in ([r[key]] if key == "original" else r[key])]
        words = mean_auto_bleu([s["asr"].split() for s in samples])
        units = mean_auto_bleu([s["units"] for s in samples if "units" in s]) if key != "original" else None
        return {"system": name, "genppl": _interval([_per_prompt([r[key]] if key == "original" else r[key])
                                                     for r in rows]),
                "with_words": float(np.mean([s["tokens"] > 0 for s in samples])),
                "auto_bleu_words": words, "auto_bleu_units": units}

    table = [system("original speech (the rest of the utterance)", "original"),
             system("reference unit LM (before DPO)", "reference"),
             system("aligned unit LM (after DPO)", "aligned"),
             system("floor: units drawn from the prompt's unit frequencies", "floor")]
    ratio = _ratio([_per_prompt(r["reference"]) for r in rows], [_per_prompt(r["aligned"]) for r in rows])
    floor_ratio = _ratio([_per_prompt(r["floor"]) for r in rows], [_per_prompt(r["aligned"]) for r in rows])
    (out / "results.json").write_text(json.dumps({"meta": meta, "table": table, "aligned_over_reference": ratio,
                                                  "aligned_over_floor": floor_ratio}, indent=2))

    def f(x):
        return "–" if x is None else f"{x:.3f}"

    _markdown(out / "results.md",
              f"{meta['prompts']} test prompts ({meta['prompt_seconds']} s), {meta['samples']} samples of "
              f"{meta['seconds']} s per LM; judge {meta['judge']}; {meta['machine']}; {meta['date']}. "
              f"GenPPL aligned / reference: {ratio[0]:.3f} [{ratio[1]:.3f}, {ratio[2]:.3f}] (paired bootstrap); "
              f"aligned / floor: {floor_ratio[0]:.3f} [{floor_ratio[1]:.3f}, {floor_ratio[2]:.3f}].",
              ["system", "GenPPL [95% CI]", "transcript has words", "auto-BLEU words", "auto-BLEU units"],
              [[t["system"], _fmt(t["genppl"]), f"{t['with_words']:.2f}", f(t["auto_bleu_words"]),
                f(t["auto_bleu_units"])] for t in table])
    print((out / "results.md").read_text())


if __name__ == "__main__":
    raise SystemExit(main())
