#!/usr/bin/env python
"""Long unit generation: peak memory and tokens/s of the full KV cache vs TOVA / window / sinks / H2O, one run.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/long_generation.py --length 4096 --fraction 8

Setup: a unit LM (``--model``: a speechkit unit-LM folder, e.g. the TWIST recipe's ``exp/twist/ulm_warm/model``;
without it a random Llama unit LM of ``--hidden`` x ``--layers``) samples ``--length`` units (temperature 0.8,
seed 0, the end token disabled so every run has the same length) after a ``--prompt``-unit random prompt, with
:func:`speechkit.ulm.cache.generate_with_cache`, the same loop for every policy. Bounded policies keep
K = length / ``--fraction`` entries per layer. Rotary positions let the LM run past its training context.

Each policy runs in its own child process, so the peak resident memory (``ru_maxrss`` from ``os.wait4``) is its
own. Printed per policy: tokens/s of wall time and per CPU-second of the child (the machine may be shared: the
CPU-time figure is the steadier one; one thread per child), the KV cache's peak size in MB (keys +
values of every layer, measured after every step), peak RSS of the process and its growth over the RSS right
after the model was loaded, and ratios against the full cache measured in the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds a tokenize.py that would shadow the standard library's: take the script's folder off the
# module path before anything imports `inspect`, and put the repository root on it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

POLICIES = ["full", "tova", "window", "sinks", "h2o"]


def load_lm(args):
    import torch
    from transformers import LlamaConfig

    from speechkit.ulm import UnitLM

    if args.model:
        return UnitLM.from_pretrained(args.model)
    cfg = LlamaConfig(hidden_size=args.hidden, intermediate_size=args.hidden * 3, num_hidden_layers=args.layers,
                      num_attention_heads=max(1, args.hidden // 32), max_position_embeddings=1024, vocab_size=8)
    torch.manual_seed(0)
    return UnitLM.cold_start(cfg, args.num_units, seed=0)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(args) -> None:
    import torch

    from speechkit.ulm.cache import generate_with_cache, make_cache

    torch.set_num_threads(args.threads)
    lm = load_lm(args)
    lm.model.eval()
    loaded = rss_mb()
    size = args.length // args.fraction
    cache = make_cache(None if args.worker == "full" else args.worker, size)
    prompt = torch.randint(0, lm.num_units, (args.prompt,), generator=torch.Generator().manual_seed(0))
    prompt_ids = torch.tensor(lm.vocab.token_ids(prompt, append_eos=False))
    allowed = torch.zeros(lm.model.get_output_embeddings().weight.shape[0], dtype=torch.bool)
    allowed[lm.vocab.unit_offset:lm.vocab.unit_offset + lm.num_units] = True
    kv = {"peak": 0}

    def measure(module, a, kwargs, output):
        past = kwargs["past_key_values"]
        kv["peak"] = max(kv["peak"], sum(layer.keys.nbytes + layer.values.nbytes for layer in past.layers))

    handle = lm.model.register_forward_hook(measure, with_kwargs=True)
    start, cpu = time.perf_counter(), time.process_time()
    ids = generate_with_cache(lm.model, prompt_ids, args.length, cache=cache, do_sample=True, temperature=0.8,
                              seed=0, stop_on_eos=False, allowed_token_ids=allowed)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    handle.remove()
    print(json.dumps(dict(policy=args.worker, cache_size=None if cache is None else size, tokens=len(ids),
                          seconds=seconds, cpu_seconds=cpu, kv_mb=kv["peak"] / 2**20, loaded_rss_mb=loaded)))


def run_child(policy: str, argv: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--worker", policy]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{policy}: child failed with status {status}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="speechkit unit-LM folder (default: random Llama unit LM)")
    ap.add_argument("--hidden", type=int, default=256, help="random LM width")
    ap.add_argument("--layers", type=int, default=6, help="random LM depth")
    ap.add_argument("--num-units", type=int, default=500, help="random LM units")
    ap.add_argument("--length", type=int, default=4096, help="units to generate")
    ap.add_argument("--fraction", type=int, default=8, help="bounded caches keep length / fraction entries")
    ap.add_argument("--prompt", type=int, default=64, help="prompt units")
    ap.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of " + ",".join(POLICIES))
    ap.add_argument("--threads", type=int, default=1, help="torch threads per child")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    argv = [a for a in sys.argv[1:]]
    rows = []
    for policy in args.policies.split(","):
        if policy not in POLICIES:
            raise SystemExit(f"--policies: {policy!r} is not one of {', '.join(POLICIES)}")
        rows.append(run_child(policy, argv))
        r = rows[-1]
        print(f"  {policy}: {r['tokens'] / r['seconds']:.1f} tok/s, KV {r['kv_mb']:.1f} MB, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    base = next((r for r in rows if r["policy"] == "full"), rows[0])
    print(f"\n{args.length} units after a {args.prompt}-unit prompt, K = {args.length // args.fraction} "
          f"(1/{args.fraction}), {args.threads} thread(s), model {args.model or 'random'}\n")
    print("| policy | K | tokens/s (wall) | tokens per CPU-s | speed vs full (CPU) | KV cache peak (MB) "
          "| KV vs full | peak RSS (MB) | RSS growth (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tps, tpc = r["tokens"] / r["seconds"], r["tokens"] / r["cpu_seconds"]
        print(f"| {r['policy']} | {r['cache_size'] or 'all'} | {tps:.1f} | {tpc:.1f} | "
              f"{tpc / (base['tokens'] / base['cpu_seconds']):.2f}x | {r['kv_mb']:.1f} | "
              f"{r['kv_mb'] / base['kv_mb']:.3f} | {r['peak_rss_mb']:.0f} | "
              f"{r['peak_rss_mb'] - r['loaded_rss_mb']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(args=vars(args), rows=rows), indent=1))


if __name__ == "__main__":
    main()
