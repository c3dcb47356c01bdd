"""recipes/vocoder/run.sh end to end on CPU with the debug preset: corpus → units → vocoder → resynthesis.

The speech encoder is a tiny random HuBERT + k-means (the recipe's ``--encoder`` takes any speech-encoder folder);
the point is that every stage runs and hands the next one what it needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechkit.audio import io
from speechkit.vocoders import CodeHiFiGANVocoder
from tests.unit.test_pipeline import K, tiny_encoder

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "vocoder" / "run.sh"


@pytest.mark.slow
def test_vocoder_recipe_debug(tmp_path):
    tiny_encoder().save_pretrained(tmp_path / "encoder")
    env = {**os.environ, "SPEECHKIT": f"{sys.executable} -m speechkit.cli.main", "OMP_NUM_THREADS": "1"}
    cmd = ["bash", str(RECIPE), "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"), "--encoder",
           str(tmp_path / "encoder"), "--num-units", str(K), "--minutes", "2", "--jobs", "1", "--preset", "debug",
           "--resynth-dir", "audio_48khz/read/us1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for stage in ("prepare", "units", "train", "resynth"):
        assert f"== {stage}" in proc.stdout
    exp = tmp_path / "exp"
    units = [json.loads(line) for line in (exp / "units.jsonl").read_text().splitlines()]
    assert len(units) >= 10 and all(max(r["units"]) < K for r in units)
    log = [json.loads(line) for line in (exp / "vocoder" / "log.jsonl").read_text().splitlines()]
    assert max(x["step"] for x in log) == 4
    voc = CodeHiFiGANVocoder.from_pretrained(exp / "vocoder" / "model")
    assert voc.speakers == ["en1", "us1", "us2", "us3"]
    assert voc.styles == ["animated", "default", "fast", "slow", "whisper"]
    assert (exp / "vocoder" / "official" / "g_00000004").is_file()
    outputs = sorted((exp / "resynth").glob("*.wav"))
    inputs = sorted((tmp_path / "data" / "audio_48khz" / "read" / "us1").rglob("*.wav"))
    assert [p.stem for p in outputs] == [p.stem for p in inputs]
    assert io.info(outputs[0]).sample_rate == 16000
    # stages can be run alone: re-running training resumes (nothing left to do at step 4)
    again = subprocess.run(cmd + ["--stage", "train", "--stop-stage", "train"], capture_output=True, text=True,
                           timeout=300, env=env, cwd=Path(__file__).resolve().parents[2])
    assert again.returncode == 0 and "== prepare" not in again.stdout
