#!/usr/bin/env python
"""Spoken continuations measured by GenPPL, and the compute-matched best-of-k study, on the default bundle.

    .venv/bin/python eval/continuation.py --model checkpoints/default --small exp/default/ulm_small/best \\
        --ranker-lm exp/genppl/ranker_lm/model --data data/mini_expresso_120 --prompts 60 --prompt-seconds 1.5 \
        -o eval/continuation

Prompts: the first ``--prompt-seconds`` of read test utterances of the mini-Expresso, interleaved over speakers and
styles (no model was trained on them), each at least ``--min-rest`` seconds longer than the prompt. Every
continuation asks for ``--seconds`` of speech (the prompt's units per second times that, end token disabled,
temperature 0.8 as TWIST) and is spoken by the bundle's vocoder in the prompt's own speaker and style, the new
part alone.

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
    p.add_argument("--min-rest", type=float, default=0.5, help="real speech after the prompt (the topline)")
    p.add_argument("--seconds", type=float, default=3.0, help="continuation length asked")
    p.add_argument("--k-max", type=int, default=8)
    p.add_argument("--large-samples", type=int, default=4, help="samples of the larger LM per prompt")
    p.add_argument("--from-rows", action="store_true",
                   help="only re-make the tables from OUTPUT/rows.json and the meta of OUTPUT/results.json")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    if args.from_rows:
        summarize(json.loads((args.output / "rows.json").read_text()),
                  json.loads((args.output / "results.json").read_text())["meta"], args.output)
        return 0

    from default_bundle import _test_items

    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.folder import FolderEvalConfig
    from speechkit.metrics.genppl import TextLMScorer
    from speechkit.metrics.mos import DNSMOS
    from speechkit.metrics.scoring import Scorer
    from speechkit.pipeline import SpeechContinuation
    from speechkit.precision import machine_line
    from speechkit.ulm import UnitLM
    from speechkit.ulm.best_of import LikelihoodRanker, num_parameters

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
             if io.info(it["path"]).num_frames / io.info(it["path"]).sample_rate >= args.prompt_seconds + args.min_rest]
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

    def heard(units, durations, new, it, context: str, mos: bool) -> dict:
        y = speak(units, durations, new, it)
        return {**listen(y, context), **(dnsmos(y, sr_out) if mos else {})}

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
        row["large"] = [heard(units, durations, new, it, context, j == 0) for j, new in enumerate(large_new)]
        row["small"] = [heard(units, durations, new, it, context, j == 0) for j, new in enumerate(cands)]
        for r in row["small"]:
            rnll, rtok = ranker_lm.nll([r["asr"]], [context])[0]
            r["asr_score"] = -rnll / rtok if rtok else -math.inf
            r["asr_flops"] = ranker_lm.flops([r["asr"]], [context])
        self_scores = LikelihoodRanker(small.lm)(units, cands)
        for r, s in zip(row["small"], self_scores.tolist(), strict=True):
            r["self_score"] = s
        # the floor: units drawn independently from the prompts' own unit frequencies (no model)
        g = torch.Generator().manual_seed(i)
        freq = torch.bincount(units, minlength=large.lm.num_units).float() + 0.1
        floor = torch.multinomial(freq / freq.sum(), num_new, replacement=True, generator=g)
        row["unigram"] = heard(units, durations, floor, it, context, True)
        row["prompt_tokens"] = len(units) + 1
        rows.append(row)
        print(f"[{i + 1}/{len(items)}] {it['stem']}: real {real['asr']!r} | large {row['large'][0]['asr']!r} | "
              f"small {row['small'][0]['asr']!r}", flush=True)

    meta = {"machine": machine_line(), "prompts": len(rows), "prompt_seconds": args.prompt_seconds,
            "seconds": args.seconds, "k_max": args.k_max, "large_samples": args.large_samples,
            "judge": judge.name, "judge_params": num_parameters(judge.model),
            "ranker_lm": ranker_lm.name, "ranker_lm_params": num_parameters(ranker_lm.model),
            "large_params": num_parameters(large.lm.model), "small_params": num_parameters(small.lm.model),
            "vocoder_params": voc_params, "timing_seconds": timing, "date": time.strftime("%Y-%m-%d")}
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    summarize(rows, meta, out)
    return 0


def _pick(row: dict, k: int, ranker: str) -> int:
    """Index of the candidate ``ranker`` keeps among the small LM's first ``k`` (ties: the earliest)."""
    cands = row["small"][:k]
    if k == 1:
        return 0
    if ranker == "oracle":
        scores = [-c["nll"] if np.isfinite(c["nll"]) else -math.inf for c in cands]
    else:
        scores = [c["self_score" if ranker == "self" else "asr_score"] for c in cands]
    return int(np.argmax(scores))


def _cost(row: dict, k: int, ranker: str, meta: dict) -> tuple[float, float]:
    """FLOPs of best-of-k with ``ranker``: (unit and text LMs, + the decoder's passes)."""
    def lm_pass(params, tokens):
        return 2.0 * params * tokens

    def decoder(r):
        return 2.0 * meta["vocoder_params"] * r["mel_frames"]

    cands = row["small"][:k]
    tokens = row["prompt_tokens"] + row["num_new"]
    lm = k * lm_pass(meta["small_params"], tokens)
    voc = decoder(cands[_pick(row, k, ranker)])
    if k > 1 and ranker == "self":  # LikelihoodRanker: every candidate with its prompt, and the prompt alone
        lm += k * lm_pass(meta["small_params"], tokens) + lm_pass(meta["small_params"], row["prompt_tokens"])
    if k > 1 and ranker == "asr":  # every candidate spoken, transcribed and scored by the ranker's text LM
        lm += sum(c["asr_flops"] for c in cands)
        voc = sum(decoder(c) for c in cands)
    return lm, lm + voc


def _bench(name: str, samples: list[dict]) -> dict:
    secs = sum(s["seconds"] for s in samples)
    return {"system": name, "genppl": _interval([s["nll"] for s in samples]),
            "with_words": float(np.mean([s["tokens"] > 0 for s in samples])),
            "has_speech": float(np.mean([s["has_speech"] for s in samples])),
            "dnsmos_ovrl": float(np.mean([s["dnsmos_ovrl"] for s in samples])),
            "words_per_second": sum(len(s["asr"].split()) for s in samples) / max(secs, 1e-9),
            "seconds": secs / len(samples)}


def _markdown(path: Path, caption: str, header: list[str], rows: list[list[str]]) -> None:
    lines = [caption, "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    path.write_text("\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n")


def summarize(rows: list[dict], meta: dict, out: Path) -> None:
    """The two tables (``continuation.md``, ``best_of_k.md``) and ``results.json`` from the per-prompt rows."""
    meta = {"k_max": len(rows[0]["small"]), "large_samples": len(rows[0]["large"]), **meta}
    one_large = [_cost({**r, "small": r["large"]}, 1, "self", {**meta, "small_params": meta["large_params"]})
                 for r in rows]
    table = [{"method": f"large x1 (mean of {meta['large_samples']} samples)", "k": 1, "ranker": "-",
              "genppl": _interval([np.nanmean([s["nll"] for s in r["large"]])
                                   if any(np.isfinite(s["nll"]) for s in r["large"]) else math.nan for r in rows]),
              "flops_lm": 1.0, "flops_all": 1.0,
              "with_words": float(np.mean([np.mean([s["tokens"] > 0 for s in r["large"]]) for r in rows]))}]
    for ranker in RANKERS:
        for k in range(1 if ranker == "self" else 2, meta["k_max"] + 1):
            chosen = [r["small"][_pick(r, k, ranker)] for r in rows]
            costs = [_cost(r, k, ranker, meta) for r in rows]
            table.append({"method": f"small best-of-{k}" + (f" ({ranker})" if k > 1 else ""), "k": k,
                          "ranker": ranker if k > 1 else "-", "genppl": _interval([c["nll"] for c in chosen]),
                          "flops_lm": float(np.mean([c[0] / u[0] for c, u in zip(costs, one_large, strict=True)])),
                          "flops_all": float(np.mean([c[1] / u[1] for c, u in zip(costs, one_large, strict=True)])),
                          "with_words": float(np.mean([c["tokens"] > 0 for c in chosen]))})
    benchmark = [_bench("original speech (the rest of the utterance)", [r["original"] for r in rows]),
                 _bench(f"bundle unit LM ({meta['large_params'] / 1e6:.2f} M), 1 sample",
                        [r["large"][0] for r in rows]),
                 _bench(f"small unit LM ({meta['small_params'] / 1e6:.2f} M), 1 sample",
                        [r["small"][0] for r in rows]),
                 _bench("floor: units drawn from the prompt's unit frequencies", [r["unigram"] for r in rows])]
    (out / "results.json").write_text(json.dumps({"meta": meta, "benchmark": benchmark, "best_of_k": table},
                                                 indent=2))
    _markdown(out / "continuation.md",
              f"Continuations of {len(rows)} prompts ({meta['prompt_seconds']} s of read test speech, "
              f"{meta['seconds']} s asked); {meta['machine']}; {meta['date']}.",
              ["system", "GenPPL [95% CI]", "transcript has words", "VAD finds speech", "DNSMOS OVRL", "words/s"],
              [[b["system"], _fmt(b["genppl"]), f"{b['with_words']:.2f}", f"{b['has_speech']:.2f}",
                f"{b['dnsmos_ovrl']:.2f}", f"{b['words_per_second']:.2f}"] for b in benchmark])
    _markdown(out / "best_of_k.md",
              f"Best-of-k over {len(rows)} prompts; FLOPs relative to one sample of the larger unit LM "
              f"({meta['large_params'] / 1e6:.2f} M; small {meta['small_params'] / 1e6:.2f} M; ranker text LM "
              f"{meta['ranker_lm_params'] / 1e6:.2f} M; decoder {meta['vocoder_params'] / 1e6:.2f} M); "
              f"{meta['machine']}; {meta['date']}.",
              ["method", "FLOPs, unit/text LMs", "FLOPs, with the decoder", "GenPPL [95% CI]", "with words"],
              [[t["method"], f"{t['flops_lm']:.2f}", f"{t['flops_all']:.2f}", _fmt(t["genppl"]),
                f"{t['with_words']:.2f}"] for t in table])
    print((out / "continuation.md").read_text())
    print((out / "best_of_k.md").read_text())


if __name__ == "__main__":
    raise SystemExit(main())
