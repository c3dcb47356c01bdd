"""recipes/dpo/run.sh end to end on CPU with the debug presets, on the bundled default and a 2-minute mini-Expresso:
ranker text LM -> candidates (two resumable shards) -> pairs -> DPO -> before/after evaluation.

Sizes are tiny (the numbers mean nothing); the point is that every stage runs and hands the next what it needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechkit.data.corpora import expresso
from speechkit.ulm import UnitLM
from speechkit.ulm.dpo import read_pairs

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "dpo" / "run.sh"
STAGES = ("ranker", "candidates", "pairs", "train", "eval")


@pytest.mark.slow
def test_dpo_recipe_debug(tmp_path, mini_expresso):
    env = {**os.environ, "SPEECHKIT": f"{sys.executable} -m speechkit.cli.main", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    exp = tmp_path / "exp"
    cmd = ["bash", str(RECIPE), "--preset", "debug", "--data", str(mini_expresso), "--exp", str(exp),
           "--prompts", "10", "--k", "2", "--top", "1", "--ranker-docs", "200", "--eval-prompts", "2", "--samples", "1",
           "--dpo-args", "optim.batch_size=2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in STAGES:
        assert f"== {stage}\n" in proc.stdout

    # candidates: every prompt once over the two shards, k continuations each, prompts from the train split
    rows = [json.loads(x) for f in sorted((exp / "pairs").glob("candidates.*.jsonl"))
            for x in f.read_text().splitlines() if x]
    assert len({r["id"] for r in rows}) == 10 and sorted(r["order"] for r in rows) == list(range(10))
    train_stems = {e.stem for e in expresso.read_splits(mini_expresso)["train"]}
    assert {r["id"] for r in rows} <= train_stems
    assert all(len(r["candidates"]) == 2 for r in rows)
    # pairs: chosen is the better-ranked candidate of its prompt
    pairs = read_pairs(exp / "pairs" / "train.jsonl") + read_pairs(exp / "pairs" / "valid.jsonl")
    by_id = {r["id"]: r for r in rows}
    for p in pairs:
        scores = {tuple(c["units"]): c["score"] for c in by_id[p.id]["candidates"]}
        assert scores[tuple(p.chosen)] is not None and p.chosen_score == scores[tuple(p.chosen)]
        assert scores[tuple(p.rejected)] is None or scores[tuple(p.rejected)] < p.chosen_score

    aligned = UnitLM.from_pretrained(exp / "run" / "model")
    assert aligned.info["dpo"]["reference"] == "checkpoints/default/ulm" and aligned.num_units == 200
    results = json.loads((exp / "eval" / "results.json").read_text())
    assert results["meta"]["prompts"] == 2
    assert [t["system"].split()[0] for t in results["table"]] == ["original", "reference", "aligned", "floor:"]

    # the candidates stage resumes: rerun, nothing is sampled again
    again = subprocess.run(cmd + ["--stage", "candidates", "--stop-stage", "candidates"], capture_output=True,
                           text=True, timeout=300, env=env, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("0 to go") == 2
