"""`speechkit analyze papa-lm` end to end on a tiny cold-started unit LM."""

from __future__ import annotations

import json

import pytest
import torch

from speechkit.cli.main import main


@pytest.mark.slow
def test_analyze_papa_lm_writes_table_and_json(tmp_path, capsys):
    from transformers import LlamaConfig

    from speechkit.ulm import UnitLM

    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False)
    UnitLM.cold_start(cfg, num_units=10, seed=0).save_pretrained(tmp_path / "ulm")
    g = torch.Generator().manual_seed(0)
    for name, n in (("train", 10), ("valid", 3)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            for i in range(n):
                units = torch.randint(0, 10, (12,), generator=g).tolist()
                f.write(json.dumps({"id": f"{name}{i}", "audio": "x.wav", "units": units}) + "\n")
    out = tmp_path / "papa.json"
    rc = main(["analyze", "papa-lm", "--ulm", str(tmp_path / "ulm"), "--train-units", str(tmp_path / "train.jsonl"),
               "--eval-units", str(tmp_path / "valid.jsonl"), "--max-tokens", "16", "--calibration", "4",
               "-o", str(out)])
    assert rc == 0
    assert "| 100% (4/4) |" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert [r["heads_replaced"] for r in result["rows"]] == [0, 2, 4] and result["train"] == 10
