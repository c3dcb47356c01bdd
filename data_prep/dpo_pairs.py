#!/usr/bin/env python
"""Preference pairs for DPO from a unit LM's own continuations, ranked by an ASR + text-LM ranker (slamkit's way).

    .venv/bin/python data_prep/dpo_pairs.py candidates --model checkpoints/default \\
        --ranker-lm exp/dpo/ranker_lm/model --data data/mini_expresso_120 --prompts 400 -o exp/dpo/pairs
    .venv/bin/python data_prep/dpo_pairs.py pairs -o exp/dpo/pairs            # -> train.jsonl, valid.jsonl

``candidates``: for each prompt (the first ``--prompt-seconds`` of a **train**-split utterance of the
mini-Expresso: the evaluation's prompts come from the test split), ``--k`` continuations of ``--seconds`` are
sampled from the unit LM (``--ulm``, default the bundle's; temperature 0.8, the end token disabled, candidate j
with seed ``1000 i + j``), spoken by the bundle's vocoder in the prompt's voice and style (the new part alone),
transcribed by pocketsphinx and scored by the ranker text LM: the mean log-probability per token of the
transcript given the prompt's transcript (no words: ``-inf``). The ranker must be a text LM trained apart from
the one that later judges GenPPL (else the judge rewards what the ranker taught). One line per prompt in
``OUTPUT/candidates.<shard>.jsonl``, flushed as it goes: a killed job resumes where it stopped (``--shard i/n``
splits the prompts among processes).

``pairs``: each of a prompt's ``--top`` best candidates against each of its ``--top`` worst becomes a pair where
the better one has words and a higher score (``--top 1``: best vs worst); every ``--valid-every``-th prompt's
pairs go to ``valid.jsonl``, the rest to ``train.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from speechkit.cli.formatting import shard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))


def candidates(args) -> int:
    from default_bundle import _test_items

    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.genppl import TextLMScorer
    from speechkit.pipeline import SpeechContinuation
    from speechkit.ulm import UnitLM
    from speechkit.ulm.dpo import append_pairs, pairs_done

    torch.set_num_threads(1)
    index, count = args.shard
    args.output.mkdir(parents=True, exist_ok=True)
    out = args.output / f"candidates.{index}.jsonl"
    done = pairs_done(out)
    sc = SpeechContinuation.from_pretrained(args.model)
    if args.ulm is not None:
        sc = SpeechContinuation(sc.encoder, UnitLM.from_pretrained(args.ulm), sc.vocoder)
    ranker = TextLMScorer.from_pretrained(args.ranker_lm)
    asr = PocketSphinxASR()
    items = [it for it in _test_items(args.data, 100_000, split=args.split)
             if io.info(it["path"]).num_frames / io.info(it["path"]).sample_rate >= args.prompt_seconds + 0.5]
    items = items[: args.prompts]
    mine = [(i, it) for i, it in enumerate(items) if i % count == index and it["stem"] not in done]
    print(f"{len(items)} prompts, {len(done)} done in {out}, {len(mine)} to go (shard {index}/{count})", flush=True)
    t0 = time.time()
    for n, (i, it) in enumerate(mine, start=1):
        wav, sr = io.load(it["path"], sample_rate=16000)
        prompt = wav[: int(args.prompt_seconds * sr)]
        enc = sc.resynthesizer.encode(prompt, sr)
        units, durations = enc["units"].cpu(), enc["durations"].cpu()
        num_new = max(1, math.ceil(args.seconds * len(units) / args.prompt_seconds))
        context = asr.transcribe(prompt)
        cands = []
        for j in range(args.k):
            new = sc.continue_units(units, num_new, seed=1000 * i + j, stop_on_eos=False)
            y = sc._render(units, durations, new, it["speaker"], it["style"], include_prompt=False)
            words = asr.transcribe(io.resample(y, sc.output_sample_rate, 16000)) if len(y) else ""
            nll, tokens = ranker.nll([words], [context])[0]
            cands.append({"units": new.tolist(), "asr": words, "score": -nll / tokens if tokens else None})
        append_pairs(out, [{"id": it["stem"], "order": i, "speaker": it["speaker"], "style": it["style"],
                            "prompt": units.tolist(), "prompt_asr": context, "candidates": cands}])
        rate = (time.time() - t0) / n
        scores = [c["score"] for c in cands if c["score"] is not None]
        print(f"[{n}/{len(mine)}] {it['stem']}: ranker scores {min(scores, default=math.nan):.2f} .. "
              f"{max(scores, default=math.nan):.2f} ({rate:.1f} s/prompt)", flush=True)
    return 0


def _score(candidate: dict) -> float:
    return -math.inf if candidate["score"] is None else candidate["score"]


def pairs(args) -> int:
    from speechkit.ulm.dpo import PreferencePair, append_pairs

    rows = []
    for f in sorted(args.output.glob("candidates.*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{args.output}: no candidates.*.jsonl (run the candidates step first)")
    rows.sort(key=lambda r: r["order"])
    split = {"train": [], "valid": []}
    for r in rows:
        ranked = sorted(range(len(r["candidates"])), key=lambda j: _score(r["candidates"][j]), reverse=True)
        n = min(args.top, len(ranked) // 2)
        for a in ranked[:n]:
            for b in ranked[len(ranked) - n:]:
                c, w = r["candidates"][a], r["candidates"][b]
                if c["score"] is None or _score(c) <= _score(w):
                    continue  # nothing to prefer: no words in the better one, or the same score
                pair = PreferencePair(id=r["id"] if n == 1 else f"{r['id']}#{a}-{b}", prompt=r["prompt"],
                                      chosen=c["units"], rejected=w["units"], chosen_score=c["score"],
                                      rejected_score=w["score"])
                split["valid" if r["order"] % args.valid_every == 0 else "train"].append(pair)
    for name, ps in split.items():
        path = args.output / f"{name}.jsonl"
        path.unlink(missing_ok=True)
        append_pairs(path, ps)
        print(f"{path}: {len(ps)} pairs")
    print(f"{len(rows)} prompts")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    c = sub.add_parser("candidates", help="sample, speak, transcribe and rank continuations (resumable)")
    c.add_argument("--model", type=Path, default=Path("checkpoints/default"), help="bundle: encoder, vocoder, ulm")
    c.add_argument("--ulm", type=Path, default=None, help="the unit LM to sample (default: MODEL/ulm)")
    c.add_argument("--ranker-lm", type=Path, required=True, help="the ranker's text LM (not the GenPPL judge)")
    c.add_argument("--data", type=Path, required=True, help="a mini-Expresso (prompts from --split)")
    c.add_argument("--split", default="train", help="split of the prompts (never the evaluation's test split)")
    c.add_argument("--prompts", type=int, default=400)
    c.add_argument("--k", type=int, default=4, help="continuations per prompt")
    c.add_argument("--prompt-seconds", type=float, default=1.5)
    c.add_argument("--seconds", type=float, default=3.0)
    c.add_argument("--shard", type=shard, default="0/1", help="i/n: this process takes prompts i, i + n, ...")
    c.add_argument("-o", "--output", type=Path, required=True)
    q = sub.add_parser("pairs", help="best vs worst candidate of each prompt -> train.jsonl / valid.jsonl")
    q.add_argument("--valid-every", type=int, default=10, help="every n-th prompt's pairs are held out")
    q.add_argument("--top", type=int, default=1,
                   help="pairs per prompt: each of the n best candidates against each of the n worst (n x n)")
    q.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    return candidates(args) if args.step == "candidates" else pairs(args)


if __name__ == "__main__":
    raise SystemExit(main())
