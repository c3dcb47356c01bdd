"""recipes/vdtts/run.sh end to end on CPU with the debug preset: corpus → VDTTS + ablation → sync table → dub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechkit.audio import video
from speechkit.vdtts import VDTTS

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "vdtts" / "run.sh"


@pytest.mark.slow
def test_vdtts_recipe_debug(tmp_path):
    env = {**os.environ, "SPEECHKIT": f"{sys.executable} -m speechkit.cli.main", "OMP_NUM_THREADS": "1"}
    data, exp = tmp_path / "data", tmp_path / "exp"
    cmd = ["bash", str(RECIPE), "--data", str(data), "--exp", str(exp), "--minutes", "0.4", "--jobs", "1",
           "--preset", "debug", "--limit", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for stage in ("corpus", "train", "sync", "dub"):
        assert f"== {stage}" in proc.stdout
    assert len((data / "train.jsonl").read_text().splitlines()) == 8
    log = [json.loads(line) for line in (exp / "vdtts" / "log.jsonl").read_text().splitlines()]
    assert max(x["step"] for x in log) == 6
    assert VDTTS.from_pretrained(exp / "vdtts" / "model").config.use_video
    assert VDTTS.from_pretrained(exp / "vdtts" / "model").config.decoder == "aligned"  # the explicit alignment path
    assert not VDTTS.from_pretrained(exp / "text_only" / "model").config.use_video
    table = (exp / "sync.md").read_text()
    for row in ("reference (corpus speech)", "vdtts", "text-only ablation", "MBROLA TTS (text only)"):
        assert f"| {row} |" in table
    means = json.loads((exp / "sync.json").read_text())["means"]
    assert means["reference (corpus speech)"]["boundary_ms"] < 5 and means["vdtts"]["length_ms"] < 1
    test_row = json.loads((data / "test.jsonl").read_text().splitlines()[0])
    src = video.read_video(data / test_row["video"], audio=False)
    out = video.read_video(exp / "dubbed.mp4")
    assert len(out.frames) == len(src.frames) == test_row["num_frames"]
    assert abs(len(out.audio) / out.sample_rate - test_row["num_frames"] / 25) < 0.1
    # stages run alone: the sync stage again, without corpus or training
    again = subprocess.run(cmd + ["--stage", "sync", "--stop-stage", "sync"], capture_output=True, text=True,
                           timeout=300, env=env, cwd=ROOT)
    assert again.returncode == 0 and "== corpus" not in again.stdout and "== sync" in again.stdout
