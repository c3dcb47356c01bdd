#!/usr/bin/env python
"""Compute-matched best-of-k in unit space: one sample of a larger unit LM vs the best of k samples of a smaller one.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python eval/long_generation/best_of_k.py \\
        --small exp/twist/ulm_small/model --large exp/twist/ulm_warm/model --judge exp/twist/ulm_cold/model \\
        --units exp/twist/units/valid.jsonl --out eval/long_generation/best_of_k

Prompts: the first ``--prompt`` units of each held-out utterance. Each prompt is continued by ``--new`` units
(temperature 0.8, end token disabled so every sample has the same length and cost); prompt i's samples use
seeds 1000 i + 0 .. k_max - 1, so best-of-k sets are nested. Quality of a continuation = its mean
log-probability per unit given the prompt under the **judge**, a unit LM neither generator nor ranker ever uses
(the oracle).

Rankers for the small model's k samples: ``self`` (its own likelihood), ``large`` (the larger LM's likelihood),
``oracle`` (the judge itself; an upper bound, its cost not counted). FLOPs per prompt =
2 x parameters x tokens for every forward token (generation with a KV cache, and each ranker's scoring pass),
reported relative to one sample of the large LM.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", required=True)
    ap.add_argument("--large", required=True)
    ap.add_argument("--judge", required=True)
    ap.add_argument("--units", type=Path, required=True)
    ap.add_argument("--prompt", type=int, default=50)
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--k-max", type=int, default=8)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from speechkit.ulm import UnitLM
    from speechkit.ulm.best_of import LikelihoodRanker, forward_flops

    torch.set_num_threads(1)
    small, large, judge = (UnitLM.from_pretrained(p) for p in (args.small, args.large, args.judge))
    prompts = [torch.tensor(json.loads(line)["units"][:args.prompt])
               for line in args.units.read_text().splitlines() if line.strip()]
    rankers = {"self": LikelihoodRanker(small), "large": LikelihoodRanker(large), "oracle": LikelihoodRanker(judge)}
    tokens = args.prompt + 1 + args.new  # BOS + prompt + continuation through the model
    unit = forward_flops(large.model, tokens)  # one large sample
    cost = {"sample_small": forward_flops(small.model, tokens) / unit}
    # ranker cost for k candidates: k scoring passes + one pass over the prompt alone (LikelihoodRanker.flops)
    per = {"self": small.model, "large": large.model}
    quality = {"large x1": []}
    quality.update({f"small best-of-{k} ({r})": [] for r in rankers for k in range(1, args.k_max + 1)})
    for i, p in enumerate(prompts):
        kw = dict(max_new_tokens=args.new, temperature=0.8, stop_on_eos=False)
        # seeds differ per prompt: one seed gives nearly the same path whatever the prompt, which would make
        # "candidate j" the same sample for every prompt
        cands = [small.generate(p, seed=1000 * i + s, **kw) for s in range(args.k_max)]
        judged = rankers["oracle"](p, cands)
        scores = {name: (judged if name == "oracle" else rk(p, cands)) for name, rk in rankers.items()}
        for name, sc in scores.items():
            for k in range(1, args.k_max + 1):
                quality[f"small best-of-{k} ({name})"].append(float(judged[int(torch.argmax(sc[:k]))]))
        big = [large.generate(p, seed=1000 * i + 500 + s, **kw) for s in range(args.k_max)]
        quality["large x1"].append(float(rankers["oracle"](p, big).mean()))  # expected quality of one sample
        print(f"prompt {i + 1}/{len(prompts)}", file=sys.stderr, flush=True)

    rows = []
    for name, vals in quality.items():
        v = torch.tensor(vals)
        if name == "large x1":
            flops = 1.0
        else:
            k, ranker = int(name.split("best-of-")[1].split(" ")[0]), name.split("(")[1][:-1]
            flops = k * cost["sample_small"]
            if k > 1 and ranker in per:
                flops += (k * forward_flops(per[ranker], tokens) + forward_flops(per[ranker], args.prompt + 1)) / unit
        rows.append(dict(method=name, flops_vs_large=flops, judge_logp=float(v.mean()),
                         stderr=float(v.std() / len(v) ** 0.5)))
    args.out.with_suffix(".json").write_text(json.dumps(dict(args={k: str(v) for k, v in vars(args).items()},
                                                             cost=cost, rows=rows), indent=1))
    lines = ["| method | FLOPs vs 1 large sample | judge log-prob / unit (higher is better) |", "|---|---|---|"]
    lines += [f"| {r['method']} | {r['flops_vs_large']:.2f} | {r['judge_logp']:.3f} ± {r['stderr']:.3f} |"
              for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"params: small {sum(p.numel() for p in small.model.parameters())}, large "
          f"{sum(p.numel() for p in large.model.parameters())}; {len(prompts)} prompts")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
