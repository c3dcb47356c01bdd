"""eval/tokenizer_benchmark.py --preset debug end to end on a small synthetic corpus and an MFCC k-means encoder."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tokenizer_benchmark_debug_preset(tmp_path):
    sk = str(Path(sys.executable).parent / "speechkit")
    data, exp = tmp_path / "data", tmp_path / "exp"

    def ok(cmd, timeout=600):
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, r.stderr[-3000:]
        return r

    ok([sk, "prepare", "mini-expresso", str(data), "--minutes", "3", "--jobs", "2", "--conversations", "0"])
    ok([sk, "prepare", "manifest", str(data / "audio_48khz" / "read"), "-o", str(exp / "train.tsv"), "--include",
        str(data / "splits" / "train.txt")])
    ok([sk, "train", "kmeans", "preset=debug", f"data={exp / 'train.tsv'}", "features=mfcc", "k=16",
        f"out={exp / 'mfcc16'}"])
    out = tmp_path / "table.md"
    cmd = [sys.executable, "eval/tokenizer_benchmark.py", f"mfcc16={exp / 'mfcc16' / 'encoder'}", "--data", str(data),
           "--preset", "debug", "--test-count", "4", "--leak-per-speaker", "5", "--work", str(tmp_path / "work"),
           "-o", str(out)]
    ok(cmd, timeout=900)
    result = json.loads(out.with_suffix(".json").read_text())
    refs, (row,) = result["references"], result["rows"]
    assert len(refs["stems"]) == 4 and 0 <= refs["originals"] <= 1.5 and 0 <= refs["ceiling"] <= 1.5
    assert row["K"] == 16 and row["decoder_steps"] == 4  # the debug decoder preset: 4 steps
    # MFCC clusters carry some phonetic information: above the no-information floor on every measure
    assert 0.05 < row["pnmi"] <= 1 and row["phone_purity"] > 0.1
    assert 0 <= row["abx_within"] < 0.5 and 0 <= row["abx_across"] <= 0.6
    assert row["speaker_id_chance"] == pytest.approx(0.25, abs=0.05) and 0 <= row["speaker_id_accuracy"] <= 1
    assert 0 < row["bitrate"] < 50 * 4 and row["mel_l1"] > 0
    text = out.read_text()
    assert "| originals |" in text and "| true log-mel, Griffin-Lim (ceiling) |" in text and "| mfcc16 | 16 |" in text
    # candidates are cached under --work: a second run measures nothing again and prints the same row
    r = ok(cmd, timeout=900)
    assert "[mfcc16] unit measures" not in r.stdout and "| mfcc16 | 16 |" in r.stdout
    assert json.loads(out.with_suffix(".json").read_text())["rows"] == [row]
