"""`speechkit analyze papa` end to end on a tiny encoder and a tiny Expresso-layout corpus of tones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from speechkit.audio.io import save
from speechkit.cli.main import main
from speechkit.units.hubert import HubertConfig, build_hubert, save_hubert

TINY = dict(conv_layers=[(8, 10, 5), (8, 3, 2), (8, 2, 2)], embed_dim=16, num_layers=2, num_heads=2, ffn_dim=32,
            conv_pos=4, conv_pos_groups=2)


def tone_corpus(root):
    """2 speakers (amplitude) x 2 styles (pitch), 3 train / 1 dev / 1 test utterances each, 16 kHz."""
    rng = np.random.default_rng(0)
    splits = {"train": [], "dev": [], "test": []}
    for spk, amp in (("us1", 0.2), ("us2", 0.6)):
        for style, f in (("slow", 200.0), ("fast", 1500.0)):
            for n in range(1, 6):
                stem = f"{spk}_{style}_{n:05d}"
                t = np.arange(int(16000 * rng.uniform(0.2, 0.4))) / 16000
                wav = amp * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(len(t))
                save(root / "audio_48khz" / "read" / spk / style / "base" / f"{stem}.wav", wav.astype(np.float32),
                     16000)
                splits["train" if n <= 3 else ("dev" if n == 4 else "test")].append(stem)
    (root / "splits").mkdir()
    for name, stems in splits.items():
        (root / "splits" / f"{name}.txt").write_text("\n".join(stems) + "\n")
    return root


@pytest.mark.slow
def test_analyze_papa_writes_table_and_json(tmp_path, capsys):
    torch.manual_seed(0)
    save_hubert(tmp_path / "hubert", build_hubert(HubertConfig(**TINY)), HubertConfig(**TINY))
    data = tone_corpus(tmp_path / "corpus")
    out = tmp_path / "papa.json"
    rc = main(["analyze", "papa", "--hubert", str(tmp_path / "hubert"), "--data", str(data), "--max-frames", "16",
               "--calibration", "4", "-o", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| 50% (2/4) |" in text and "| 100% (4/4) |" in text
    result = json.loads(out.read_text())
    assert [r["fraction"] for r in result["rows"]] == [0.0, 0.5, 1.0]
    assert result["train"] == 12 and result["eval"] == 8
    assert all(0 <= r["style"] <= 1 and 0 <= r["speaker"] <= 1 for r in result["rows"])


@pytest.mark.parametrize("args, message", [
    (["--fractions", "0.5,1"], "--fractions must be in \\[0, 1\\] and start with 0. Found '0.5,1'"),
    (["--tasks", "emotion"], "--tasks must name tasks among"),
    (["--fractions", "a"], "--fractions must be comma-separated numbers. Found 'a'"),
])
def test_analyze_papa_bad_arguments(tmp_path, capsys, args, message):
    import re

    rc = main(["analyze", "papa", "--hubert", str(tmp_path), "--data", str(tmp_path), *args])
    assert rc == 1
    assert re.search(message, capsys.readouterr().err)
