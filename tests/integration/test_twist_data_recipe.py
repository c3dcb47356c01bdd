"""recipes/twist_data/run.sh end to end on CPU with the debug presets: nested speech-data subsets -> warm and cold
unit LMs per size and seed -> StoryCloze of each best model -> the paired table.

Sizes are tiny (the numbers mean nothing); the point is that every stage runs and hands the next what it needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speechkit.ulm import UnitLM
from tests.unit.ulm.conftest import save_tiny_lm

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "twist_data" / "run.sh"
K = 16


@pytest.mark.slow
def test_twist_data_recipe_debug(tmp_path):
    rng = np.random.default_rng(0)
    units = tmp_path / "units"
    units.mkdir()
    for split, n in (("train", 40), ("valid", 6)):
        with open(units / f"{split}.jsonl", "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": f"{split}{i}", "units": rng.integers(0, K, 20).tolist()}) + "\n")
    save_tiny_lm(tmp_path / "textlm", "llama")
    sc, sc_units = tmp_path / "sc", tmp_path / "sc_units"
    sc_units.mkdir()
    for bench in ("sSC", "tSC"):  # two pairs; the units are what the LM scores (the audio is never read here)
        (sc / bench).mkdir(parents=True)
        with open(sc_units / f"{bench}.jsonl", "w") as f:
            for i in range(2):
                for kind in ("correct", "incorrect"):
                    (sc / bench / f"{i}_{kind}.wav").write_bytes(b"")
                    f.write(json.dumps({"id": f"{i}_{kind}", "units": rng.integers(0, K, 12).tolist()}) + "\n")

    env = {**os.environ, "SPEECHKIT": f"{sys.executable} -m speechkit.cli.main", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    exp = tmp_path / "exp"
    cmd = ["bash", str(RECIPE), "--preset", "debug", "--units", str(units), "--text-lm", str(tmp_path / "textlm"),
           "--storycloze", str(sc), "--sc-units", str(sc_units), "--exp", str(exp), "--fractions", "25 100",
           "--seeds", "0 1", "--num-units", str(K)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in ("subsets", "train", "eval", "table"):
        assert f"== {stage}\n" in proc.stdout

    # nested subsets: 10 of 40 utterances inside the 40, the same validation set
    small = [json.loads(x)["id"] for x in (exp / "data" / "p25" / "train.jsonl").read_text().splitlines()]
    full = [json.loads(x)["id"] for x in (exp / "data" / "p100" / "train.jsonl").read_text().splitlines()]
    assert len(small) == 10 and len(full) == 40 and set(small) < set(full)
    assert (exp / "data" / "p25" / "valid.jsonl").read_text() == (units / "valid.jsonl").read_text()

    for f in ("p25", "p100"):
        for s in (0, 1):
            for init in ("warm", "cold"):
                lm = UnitLM.from_pretrained(exp / f / f"seed{s}" / f"ulm_{init}" / "model")
                assert lm.info["init"] == init and lm.num_units == K and lm.info["seed"] == s
                res = json.loads((exp / f / f"seed{s}" / f"eval_{init}" / "results.json").read_text())["results"]
                assert set(res) == {"sSC", "tSC"} and all(r["pairs"] == 2 for r in res.values())

    table = json.loads((exp / "table.json").read_text())
    for f in ("p25", "p100"):
        rows, runs = table[f]["rows"], table[f]["runs"]
        diffs = [runs["warm"][s]["tSC"] - runs["cold"][s]["tSC"] for s in ("0", "1")]
        assert rows["warm - cold"]["tSC"][0] == pytest.approx(sum(diffs) / 2)
        assert rows["warm"]["seeds"] == rows["warm - cold"]["seeds"] == 2
    assert table["p25"]["train_units"] == 200
    assert "| 25% (200 units) | warm - cold | 2 |" in (exp / "table.md").read_text()
