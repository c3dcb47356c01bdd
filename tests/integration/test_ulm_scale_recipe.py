"""recipes/ulm_scale/run.sh end to end on CPU with the debug presets: sharded story speech -> sharded units with the
bundle's encoder -> sequences -> the measured budget -> unit LMs of two kinds (a size, and TWIST warm / cold in the
text LM's shape) with kept models -> StoryCloze of every kept model -> the learning-curve table.

Sizes are tiny (the numbers mean nothing); the point is that every stage runs, hands the next what it needs, and
that a rerun resumes instead of redoing work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechkit.ulm import UnitLM
from tests.unit.ulm.conftest import save_tiny_lm

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "ulm_scale" / "run.sh"
ENCODER = ROOT / "checkpoints" / "default" / "encoder"


@pytest.mark.slow
def test_ulm_scale_recipe_debug(tmp_path):
    env = {**os.environ, "SPEECHKIT": f"{sys.executable} -m speechkit.cli.main", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    sk = [sys.executable, "-m", "speechkit.cli.main"]
    sc, sc_units = tmp_path / "sc", tmp_path / "sc_units"
    subprocess.run([*sk, "prepare", "storycloze", str(sc), "--pairs", "2"], check=True, env=env, cwd=ROOT,
                   capture_output=True)
    for bench in ("sSC", "tSC"):
        subprocess.run([*sk, "encode", str(sc / bench), "-o", str(sc_units / f"{bench}.jsonl"), "--encoder",
                        str(ENCODER)], check=True, env=env, cwd=ROOT, capture_output=True)
    save_tiny_lm(tmp_path / "textlm", "llama", max_position_embeddings=1024)  # spoken stories are ~300 units
    data, exp = tmp_path / "speech", tmp_path / "exp"
    cmd = ["bash", str(RECIPE), "--preset", "debug", "--data", str(data), "--exp", str(exp), "--stories", "6",
           "--storycloze", str(sc), "--sc-units", str(sc_units), "--sizes", "a:16:1:2:32", "--minutes", "0.002",
           "--points", "2", "--text-lm", str(tmp_path / "textlm"),
           "--ulm-args", "model.size.max_position_embeddings=1024"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in ("speech", "units", "sequences", "budget", "train", "eval", "table"):
        assert f"== {stage}\n" in proc.stdout

    # two speech shards made every story once; two encoding shards encoded every file once
    wavs = sorted(p.stem for p in (data / "audio").glob("*.wav"))
    assert len(wavs) == 6 and (data / ".complete").is_file()
    ids = [json.loads(x)["id"] for i in (0, 1) for x in (exp / f"units.{i}.jsonl").read_text().splitlines()]
    assert sorted(ids) == wavs

    budget = json.loads((exp / "budget.json").read_text())["runs"]
    assert set(budget) == {"a", "warm", "cold_text"}
    table = json.loads((exp / "table.json").read_text())
    for run in ("a", "warm", "cold_text"):
        b = budget[run]
        # the steps are what the budget buys at the measured speed
        assert b["steps"] == max(1, int(0.002 * 60 * b["tokens_per_s"] / b["tokens_per_step"]))
        lm = UnitLM.from_pretrained(exp / "runs" / run / "model")
        assert lm.num_units == 200 and lm.info["init"] == ("warm" if run == "warm" else "cold")
        every = max(1, b["steps"] // 2)  # --points 2
        kept = sorted(p.name for p in (exp / "runs" / run).glob("model_*"))
        assert kept == [f"model_{s:06d}" for s in range(every, b["steps"] + 1, every)]
        rows = table["curves"][run]
        assert rows[-1]["step"] == b["steps"] and rows[-1]["tokens"] == b["steps"] * b["tokens_per_step"]
        assert all("tSC" in r and r["tSC_pairs"] == 2 for r in rows)  # every validated step's model was scored
    a = UnitLM.from_pretrained(exp / "runs" / "a" / "model")
    assert a.model.config.hidden_size == 16 and a.model.config.num_hidden_layers == 1
    assert budget["a"]["parameters"] == sum(p.numel() for p in a.model.parameters())
    assert "| a | " in (exp / "table.md").read_text()

    # a rerun of the speech and units stages finds everything done and changes nothing
    before = (exp / "units.0.jsonl").read_text()
    again = subprocess.run([*cmd, "--stage", "speech", "--stop-stage", "units"], capture_output=True, text=True,
                           timeout=300, env=env, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (exp / "units.0.jsonl").read_text() == before and "0 new" in again.stdout
