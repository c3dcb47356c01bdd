#!/usr/bin/env python
"""Spoken continuations measured by GenPPL, and the compute-matched best-of-k study, on the default bundle.

    .venv/bin/python eval/continuation.py --model checkpoints/default --small exp/default/ulm_small/best \\
        --ranker-lm exp/genppl/ranker_lm/model --data data/mini_expresso_120 --prompts 60 -o eval/continuation

Prompts: the first ``--prompt-seconds`` of read test utterances of the mini-Expresso, interleaved over speakers and
styles (no model was trained on them), each at least 1 s longer than the prompt. Every continuation asks for
``--seconds`` of speech (the prompt's units per second times that, end token disabled, temperature 0.8 as
TWIST) and is spoken by the bundle's vocoder in the prompt's own speaker and style, the new part alone.

Quality of a continuation: **GenPPL**, the pocketsphinx transcript's perplexity under the judge text LM (the
bundle's ``textlm/``), given the pocketsphinx transcript of the prompt as context; over prompts, ``exp`` of the
mean per-prompt log-perplexity (slamkit's aggregate) with a 95% bootstrap interval over prompts. Beside it: the
share of continuations whose transcript has words, the share in which silero-vad finds speech, DNSMOS OVRL, and
recognised words per second.

1. **Continuation benchmark** (``continuation.md``): the real rest of each utterance (the topline: what the
   speaker actually said next, same ASR, same judge), one sample of the bundle's unit LM, one sample of the small
   unit LM, and a floor: units drawn independently from the prompt's own unit frequencies (add-0.1 smoothed),
   spoken by the same vocoder: speech-like sound with no sequence model behind it.
2. **Best-of-k** (``best_of_k.md``): one sample of the larger unit LM (the bundle's, ``--model``; its expected
   quality, averaged over ``--large-samples`` samples per prompt) against the best of k samples of the smaller one
   (``--small``), k = 1 .. ``--k-max`` (nested: candidate j uses seed ``1000 i + j``), chosen by three rankers:
   ``self`` (the small LM's own mean log-likelihood of the continuation given the prompt), ``asr`` (vocode,
   transcribe, mean log-probability of the transcript under ``--ranker-lm``, a text LM smaller than the judge,
   given the prompt's transcript) and ``oracle`` (the judge's GenPPL itself: an upper bound; its cost is not
   counted). FLOPs = 2 x parameters x tokens for every unit-LM and text-LM forward token, and 2 x parameters x
   mel frames for every pass of the unit-to-mel decoder (Griffin-Lim's FFTs and pocketsphinx are not counted;
   their wall time is reported), relative to one large sample spoken once.
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

RANKERS = ("self", "asr", "oracle")


def _interval(values, rounds: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """exp(mean) of per-prompt log-perplexities with a 95% bootstrap interval over prompts (NaNs left out)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not len(v):
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(rounds, len(v)))].mean(1)
    return float(np.exp(v.mean())), float(np.exp(np.quantile(means, 0.025))), float(np.exp(np.quantile(means, 0.975)))


def _fmt(ci) -> str:
    return "–" if math.isnan(ci[0]) else f"{ci[0]:.0f} [{ci[1]:.0f}, {ci[2]:.0f}]"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("checkpoints/default"), help="bundle (its ulm is the larger LM)")
    p.add_argument("--small", type=Path, required=True, help="the smaller unit LM (same units)")
    p.add_argument("--judge", type=Path, default=None, help="GenPPL's text LM (default: MODEL/textlm)")
    p.add_argument("--ranker-lm", type=Path, required=True, help="the ASR ranker's text LM")
    p.add_argument("--data", type=Path, required=True, help="the mini-Expresso the bundle was trained on")
    p.add_argument("--prompts", type=int, default=60)
    p.add_argument("--prompt-seconds", type=float, default=2.5)
    p.add_argument("--seconds", type=float, default=3.0, help="continuation length asked")
    p.add_argument("--k-max", type=int, default=8)
    p.add_argument("--large-samples", type=int, default=4, help="samples of the larger LM per prompt")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()

    from default_bundle import _test_items

    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.folder import FolderEvalConfig
    from speechkit.metrics.genppl import TextLMScorer
    from speechkit.metrics.mos import DNSMOS
    from speechkit.metrics.scoring import Scorer
    from speechkit.precision import machine_line
    from speechkit.ulm import UnitLM
    from speechkit.ulm.best_of import LikelihoodRanker, forward_flops, num_parameters
    from speechkit.ulm.continuation import SpeechContinuation

    torch.set_num_threads(2)
    print(machine_line())
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    large = SpeechContinuation.from_pretrained(args.model)
    small = SpeechContinuation(large.encoder, UnitLM.from_pretrained(args.small), large.vocoder)
    if small.lm.num_units != large.lm.num_units:
        p.error(f"--small models {small.lm.num_units} units, the bundle's unit LM {large.lm.num_units}")
    judge = TextLMScorer.from_pretrained(args.judge or args.model / "textlm")
    ranker_lm = TextLMScorer.from_pretrained(args.ranker_lm)
    asr, dnsmos = PocketSphinxASR(), DNSMOS()
    vad = Scorer(("vad",), "pocketsphinx", FolderEvalConfig().pitch)
    sr_out = large.output_sample_rate
    voc_params = num_parameters(large.vocoder.model)
    mel_hop = large.vocoder.config.mel.hop_length
    items = [it for it in _test_items(args.data, 10_000)
             if io.info(it["path"]).num_frames / io.info(it["path"]).sample_rate >= args.prompt_seconds + 1.0]
    items = items[: args.prompts]
    timing = {"vocode": 0.0, "asr": 0.0, "generate": 0.0}

    def speak(units, durations, new, it) -> torch.Tensor:
        t = time.perf_counter()
        y = small._render(units, durations, new, it["speaker"], it["style"], include_prompt=False)
        timing["vocode"] += time.perf_counter() - t
        return y

    def listen(y: torch.Tensor, context: str) -> dict:
        t = time.perf_counter()
        words = asr.transcribe(io.resample(y, sr_out, 16000)) if len(y) else ""
        timing["asr"] += time.perf_counter() - t
        nll, tokens = judge.nll([words], [context])[0]
        return {"asr": words, "nll": nll / tokens if tokens else math.nan, "tokens": tokens,
                "seconds": len(y) / sr_out, "mel_frames": len(y) / mel_hop,
                "has_speech": vad.speech_regions(y, sr_out)["has_speech"] if len(y) else 0.0}

    rows = []
    for i, it in enumerate(items):
        wav, sr = io.load(it["path"], sample_rate=16000)
        cut = int(args.prompt_seconds * sr)
        prompt, rest = wav[:cut], wav[cut:]
        enc = large.resynthesizer.encode(prompt, sr)
        units, durations = enc["units"].cpu(), enc["durations"].cpu()
        num_new = max(1, math.ceil(args.seconds * len(units) / args.prompt_seconds))
        context = asr.transcribe(prompt)
        row = {"stem": it["stem"], "speaker": it["speaker"], "style": it["style"], "text": it["text"],
               "prompt_asr": context, "prompt_units": len(units), "num_new": num_new}
        real = listen(rest, context)
        real.update(dnsmos(rest, sr))
        row["original"] = real
        t = time.perf_counter()
        large_new = [large.continue_units(units, num_new, seed=1000 * i + 500 + j, stop_on_eos=False)
                     for j in range(args.large_samples)]
        cands = [small.continue_units(units, num_new, seed=1000 * i + j, stop_on_eos=False)
                 for j in range(args.k_max)]
        timing["generate"] += time.perf_counter() - t
        row["large"] = []
        for j, new in enumerate(large_new):
            y = speak(units, durations, new, it)
            r = listen(y, context)
            if j == 0:
                r.update(dnsmos(y, sr_out))
            row["large"].append(r)
        row["small"] = []
        for j, new in enumerate(cands):
            y = speak(units, durations, new, it)
            r = listen(y, context)
            if j == 0:
                r.update(dnsmos(y, sr_out))
            rnll, rtok = ranker_lm.nll([r["asr"]], [context])[0]
            r["asr_score"] = -rnll / rtok if rtok else -math.inf
            r["asr_flops"] = ranker_lm.flops([r["asr"]], [context])
            row["small"].append(r)
        self_scores = LikelihoodRanker(small.lm)(units, cands)
        for r, s in zip(row["small"], self_scores.tolist(), strict=True):
            r["self_score"] = s
        # the floor: units drawn independently from the prompts' own unit frequencies (no model)
        g = torch.Generator().manual_seed(i)
        freq = torch.bincount(units, minlength=large.lm.num_units).float() + 0.1
        floor = torch.multinomial(freq / freq.sum(), num_new, replacement=True, generator=g)
        y = speak(units, durations, floor, it)
        row["unigram"] = {**listen(y, context), **dnsmos(y, sr_out)}
        row["prompt_tokens"] = len(units) + 1
        rows.append(row)
        print(f"[{i + 1}/{len(items)}] {it['stem']}: real {real['asr']!r} | large {row['large'][0]['asr']!r} | "
              f"small {row['small'][0]['asr']!r}", flush=True)

    # FLOPs: one large sample = its generation (prompt + new tokens) + speaking it once
    def gen_flops(lm, row) -> float:
        return forward_flops(lm.model, row["prompt_tokens"] + row["num_new"])

    def voc_flops(r) -> float:
        return 2.0 * voc_params * r["mel_frames"]

    unit_cost = [gen_flops(large.lm, r) + voc_flops(r["large"][0]) for r in rows]
    unit_cost_lm = [gen_flops(large.lm, r) for r in rows]

    def pick(row, k, ranker) -> int:
        cands = row["small"][:k]
        key = {"self": "self_score", "asr": "asr_score"}.get(ranker)
        if ranker == "oracle":
            scores = [-c["nll"] if np.isfinite(c["nll"]) else -math.inf for c in cands]
        else:
            scores = [c[key] for c in cands]
        return int(np.argmax(scores))

    def cost(row, k, ranker) -> tuple[float, float]:
        cands = row["small"][:k]
        gen = k * gen_flops(small.lm, row)
        chosen = cands[pick(row, k, ranker)]
        lm = gen
        voc = voc_flops(chosen)
        if k > 1 and ranker == "self":
            lm += k * gen_flops(small.lm, row) + forward_flops(small.lm.model, row["prompt_tokens"])
        if k > 1 and ranker == "asr":
            lm += sum(c["asr_flops"] for c in cands)
            voc = sum(voc_flops(c) for c in cands)
        return lm, lm + voc

    table = []
    large_nll = [np.nanmean([s["nll"] for s in r["large"]]) if any(np.isfinite(s["nll"]) for s in r["large"])
                 else math.nan for r in rows]
    table.append({"method": f"large x1 (mean of {args.large_samples} samples)", "k": 1, "ranker": "-",
                  "genppl": _interval(large_nll), "flops_lm": 1.0, "flops_all": 1.0,
                  "with_words": float(np.mean([np.mean([s["tokens"] > 0 for s in r["large"]]) for r in rows]))})
    for ranker in RANKERS:
        for k in range(1, args.k_max + 1):
            if k == 1 and ranker != "self":
                continue
            chosen = [r["small"][pick(r, k, ranker)] for r in rows]
            costs = [cost(r, k, ranker) for r in rows]
            table.append({"method": f"small best-of-{k}" + (f" ({ranker})" if k > 1 else ""), "k": k,
                          "ranker": ranker if k > 1 else "-", "genppl": _interval([c["nll"] for c in chosen]),
                          "flops_lm": float(np.mean([c[0] / u for c, u in zip(costs, unit_cost_lm, strict=True)])),
                          "flops_all": float(np.mean([c[1] / u for c, u in zip(costs, unit_cost, strict=True)])),
                          "with_words": float(np.mean([c["tokens"] > 0 for c in chosen]))})

    def bench(name, samples) -> dict:
        secs = sum(s["seconds"] for s in samples)
        return {"system": name, "genppl": _interval([s["nll"] for s in samples]),
                "with_words": float(np.mean([s["tokens"] > 0 for s in samples])),
                "has_speech": float(np.mean([s["has_speech"] for s in samples])),
                "dnsmos_ovrl": float(np.mean([s["dnsmos_ovrl"] for s in samples])),
                "words_per_second": sum(len(s["asr"].split()) for s in samples) / max(secs, 1e-9),
                "seconds": secs / len(samples)}

    benchmark = [bench("original speech (the rest of the utterance)", [r["original"] for r in rows]),
                 bench(f"bundle unit LM ({num_parameters(large.lm.model) / 1e6:.2f} M), 1 sample",
                       [r["large"][0] for r in rows]),
                 bench(f"small unit LM ({num_parameters(small.lm.model) / 1e6:.2f} M), 1 sample",
                       [r["small"][0] for r in rows]),
                 bench("floor: units drawn from the prompt's unit frequencies", [r["unigram"] for r in rows])]
    meta = {"machine": machine_line(), "prompts": len(rows), "prompt_seconds": args.prompt_seconds,
            "seconds": args.seconds, "judge": judge.name, "judge_params": num_parameters(judge.model),
            "ranker_lm": ranker_lm.name, "ranker_lm_params": num_parameters(ranker_lm.model),
            "large_params": num_parameters(large.lm.model), "small_params": num_parameters(small.lm.model),
            "vocoder_params": voc_params, "timing_seconds": timing, "date": time.strftime("%Y-%m-%d")}
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    (out / "results.json").write_text(json.dumps({"meta": meta, "benchmark": benchmark, "best_of_k": table},
                                                 indent=2))
    lines = [f"Continuations of {len(rows)} prompts ({args.prompt_seconds} s of read test speech, {args.seconds} s "
             f"asked); {meta['machine']}; {meta['date']}.", "",
             "| system | GenPPL [95% CI] | transcript has words | VAD finds speech | DNSMOS OVRL | words/s |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {b['system']} | {_fmt(b['genppl'])} | {b['with_words']:.2f} | {b['has_speech']:.2f} | "
              f"{b['dnsmos_ovrl']:.2f} | {b['words_per_second']:.2f} |" for b in benchmark]
    (out / "continuation.md").write_text("\n".join(lines) + "\n")
    lines = [f"Best-of-k over {len(rows)} prompts; FLOPs relative to one sample of the larger unit LM "
             f"({meta['large_params'] / 1e6:.2f} M; small {meta['small_params'] / 1e6:.2f} M; ranker text LM "
             f"{meta['ranker_lm_params'] / 1e6:.2f} M; decoder {voc_params / 1e6:.2f} M); {meta['machine']}; "
             f"{meta['date']}.", "",
             "| method | FLOPs, unit/text LMs | FLOPs, with the decoder | GenPPL [95% CI] | with words |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {t['method']} | {t['flops_lm']:.2f} | {t['flops_all']:.2f} | {_fmt(t['genppl'])} | "
              f"{t['with_words']:.2f} |" for t in table]
    (out / "best_of_k.md").write_text("\n".join(lines) + "\n")
    print((out / "continuation.md").read_text())
    print((out / "best_of_k.md").read_text())
    print(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
