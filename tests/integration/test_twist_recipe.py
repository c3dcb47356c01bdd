"""recipes/twist/run.sh end to end on CPU with the debug presets: text corpus -> text LM -> story speech -> MFCC
k-means units -> warm and cold unit LMs -> synthetic sSC / tSC -> pairwise accuracy.

Sizes are tiny (the numbers mean nothing); the point is that every stage runs and hands the next what it needs.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechkit.ulm import UnitLM

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "twist" / "run.sh"
STAGES = ("text", "textlm", "speech", "kmeans", "units", "sequences", "train", "storycloze", "sc_units", "eval")


@pytest.mark.slow
def test_twist_recipe_debug(tmp_path):
    env = {**os.environ, "SPEECHKIT": f"{sys.executable} -m speechkit.cli.main", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    exp, data = tmp_path / "exp", tmp_path / "data"
    cmd = ["bash", str(RECIPE), "--preset", "debug", "--exp", str(exp), "--data", str(data), "--text-docs", "200",
           "--train-stories", "12", "--pairs", "3", "--num-units", "16"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in STAGES:
        assert f"== {stage}\n" in proc.stdout

    text_lm = exp / "textlm" / "model"
    assert (text_lm / "tokenizer.json").is_file()
    warm, cold = UnitLM.from_pretrained(exp / "ulm_warm" / "model"), UnitLM.from_pretrained(exp / "ulm_cold" / "model")
    assert warm.num_units == cold.num_units == 16
    assert warm.info["init"] == "warm" and cold.info["init"] == "cold"
    assert warm.info["text_lm"] == str(text_lm)
    units = [json.loads(x) for x in (exp / "units" / "train.jsonl").read_text().splitlines()]
    assert units and all(max(r["units"]) < 16 for r in units)

    for init in ("warm", "cold"):
        results = json.loads((exp / f"eval_{init}" / "results.json").read_text())["results"]
        assert set(results) == {"sSC", "tSC"}
        for bench, r in results.items():
            assert r["pairs"] == 3 and 0 <= r["accuracy"] <= 1
            rows = list(csv.DictReader(open(exp / f"eval_{init}" / f"{bench}.csv")))
            assert [row["positive"] for row in rows] == ["0_correct.wav", "1_correct.wav", "2_correct.wav"]
        # the CSV scores are the model's own log-likelihoods of the encoded files
        table = {json.loads(x)["id"]: json.loads(x)["units"] for x in (exp / "units" / "sSC.jsonl").open()}
        lm = warm if init == "warm" else cold
        expected = lm.log_likelihood([table["0_correct"]])
        row = next(csv.DictReader(open(exp / f"eval_{init}" / "sSC.csv")))
        assert float(row["positive_ll"]) == pytest.approx(float(expected[0]), abs=1e-5)

    # one stage alone: training again resumes at the end (nothing left to do) and keeps the weights
    before = warm.model.state_dict()
    again = subprocess.run(cmd + ["--stage", "train", "--stop-stage", "train", "--inits", "warm"],
                           capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "== text\n" not in again.stdout and "== train\n" in again.stdout
    after = UnitLM.from_pretrained(exp / "ulm_warm" / "model").model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
