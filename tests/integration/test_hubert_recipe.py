"""recipes/hubert/run.sh --preset debug, every stage, end to end on CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechkit.units import HubertFeatureReader, SpeechEncoder

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_hubert_recipe_debug_preset(tmp_path):
    env = {"SPEECHKIT": str(Path(sys.executable).parent / "speechkit"), "PATH": "/usr/bin:/bin"}
    cmd = ["bash", "recipes/hubert/run.sh", "--preset", "debug", "--data", str(tmp_path / "data"), "--exp",
           str(tmp_path / "exp"), "--minutes", "1", "--k1", "8", "--k2", "8", "--k-final", "12", "--layer", "1"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    exp = tmp_path / "exp"
    for it in ("it1", "it2"):
        history = json.loads((exp / it / "history.json").read_text())
        losses = [h["loss"] for h in history if "loss" in h]
        assert history[-1]["step"] == 30 and losses[-1] < losses[0]  # it learns something
        reader = HubertFeatureReader.from_pretrained(exp / it / "model", layer=2)
        assert reader(torch.randn(8000)).shape == (24, 48)
    enc = SpeechEncoder.from_pretrained(exp / "final" / "encoder")
    assert enc.vocab_size == 12
    units = [json.loads(line) for line in (exp / "final" / "train.units.jsonl").read_text().splitlines()]
    train_ids = (exp / "train.tsv").read_text().splitlines()[1:]
    assert len(units) == len(train_ids) > 10
    assert all(len(u["units"]) == len(u["duration"]) and max(u["units"]) < 12 for u in units)
    # the stages resume: re-running the last stage skips what is done
    r = subprocess.run(cmd + ["--stage", "final_units"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "0 new" in r.stdout
