"""speechkit.train.vdtts: the feature file round trip and the solver's resume from a feature file alone."""

from __future__ import annotations

import json

import pytest
import torch

from speechkit.errors import SpeechkitError
from speechkit.train import vdtts as solver
from tests.unit.test_vdtts import PHONEMES, tiny_config


def items(n: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        t = 5 + i
        out.append({"crops": torch.randint(0, 256, (t, 16, 16), generator=g, dtype=torch.uint8),
                    "mel": torch.rand(4 * t, 80, generator=g) * 10 - 10,
                    "ids": torch.randint(2, len(PHONEMES) + 2, (3 + i,), generator=g), "speaker": i % 2})
    return out


def test_feature_file_round_trip(tmp_path):
    cfg, train, valid = tiny_config(), items(3), items(2, seed=1)
    path = solver.save_features(tmp_path / "feats.npz", cfg, train, valid)
    cfg2, train2, valid2 = solver.load_features(path)
    assert cfg2 == cfg and len(train2) == 3 and len(valid2) == 2
    for a, b in zip(train + valid, train2 + valid2, strict=True):
        assert torch.equal(a["crops"], b["crops"]) and torch.equal(a["ids"], b["ids"])
        assert a["speaker"] == b["speaker"] and (a["mel"] - b["mel"]).abs().max() < 0.04  # 8-bit log-mel
    (tmp_path / "junk.npz").write_bytes(b"nope")
    with pytest.raises(SpeechkitError, match="junk.npz: not a VDTTS feature file"):
        solver.load_features(tmp_path / "junk.npz")


def test_solver_trains_from_a_feature_file_and_resumes(tmp_path):
    from speechkit.cli.train import compose
    from speechkit.vdtts import VDTTS

    feats = solver.save_features(tmp_path / "feats.npz", tiny_config(), items(4), items(1, seed=1))
    with pytest.raises(SpeechkitError, match=r"features made with other \['crop_size'\]"):
        solver.run(compose("vdtts", ["preset=debug", "data.root=/x", f"data.cache={feats}", "model.crop_size=24",
                                     f"out={tmp_path / 'bad'}"]))
    args = ["preset=debug", "data.root=/nonexistent", f"data.cache={feats}", f"out={tmp_path / 'run'}"]
    assert solver.run(compose("vdtts", args)) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in log) == 6 and any("valid_mel" in r for r in log)
    model = VDTTS.from_pretrained(tmp_path / "run" / "model")
    assert model.config.phonemes == PHONEMES and model.config.d_model == 32  # vocabulary from the file, size from
    # the config: the text-only ablation trains from the same file
    assert solver.run(compose("vdtts", [*args, "optim.max_steps=8"])) == 0  # resumes at 6, runs 2 more
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "total" in r][-2:] == [6, 8]
