"""data_prep/dpo_pairs.py pairs: which candidates become preference pairs, and where they go (train / valid)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

from speechkit.ulm.dpo import read_pairs

_spec = importlib.util.spec_from_file_location(
    "dpo_pairs", Path(__file__).resolve().parents[2] / "data_prep" / "dpo_pairs.py")
dp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dp)


def _write(folder: Path, rows: list[dict], shard: int = 0) -> None:
    with open(folder / f"candidates.{shard}.jsonl", "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def _row(order: int, scores: list[float | None]) -> dict:
    return {"id": f"u{order}", "order": order, "prompt": [1, 2, 3],
            "candidates": [{"units": [10 + j], "asr": "w" if s is not None else "", "score": s}
                           for j, s in enumerate(scores)]}


def _pairs(folder: Path, top: int, valid_every: int = 3) -> int:
    return dp.pairs(argparse.Namespace(output=folder, top=top, valid_every=valid_every))


def test_best_against_worst_skipping_prompts_without_a_preference(tmp_path):
    _write(tmp_path, [_row(1, [-3.0, -1.0, None, -2.0]), _row(2, [None, None, None, None])])
    _write(tmp_path, [_row(3, [-4.0, -4.0, -4.0, -4.0]), _row(4, [-5.0, -2.5, -6.0, -2.0])], shard=1)
    assert _pairs(tmp_path, top=1) == 0
    train = read_pairs(tmp_path / "train.jsonl")  # u3 (order 3) is the held-out prompt, but it has no preference
    assert not (tmp_path / "valid.jsonl").read_text().strip()
    assert [(p.id, p.chosen, p.rejected) for p in train] == [("u1", [11], [12]), ("u4", [13], [12])]
    assert train[0].chosen_score == -1.0 and train[0].rejected_score is None  # no words: the worst, no score


def test_top_n_makes_n_by_n_pairs_and_holds_out_whole_prompts(tmp_path):
    _write(tmp_path, [_row(0, [-1.0, -2.0, -3.0, -4.0]), _row(1, [-4.0, -3.0, -2.0, -1.0])])
    _pairs(tmp_path, top=2, valid_every=2)
    valid, train = read_pairs(tmp_path / "valid.jsonl"), read_pairs(tmp_path / "train.jsonl")
    assert {p.id.split("#")[0] for p in valid} == {"u0"} and {p.id.split("#")[0] for p in train} == {"u1"}
    assert sorted((p.chosen[0], p.rejected[0]) for p in valid) == [(10, 12), (10, 13), (11, 12), (11, 13)]
    assert all(p.chosen_score > p.rejected_score for p in valid + train)


def test_no_candidates_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no candidates"):
        _pairs(tmp_path, top=1)
