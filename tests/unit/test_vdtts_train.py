"""speechkit.train.vdtts: the feature file round trip and the solver's resume from a feature file alone."""

from __future__ import annotations

import json

import pytest
import torch

from speechkit.errors import SpeechkitError
from speechkit.train import vdtts as solver
from tests.unit.test_vdtts import PHONEMES, tiny_config


def items(n: int, seed: int = 0, align: bool = True) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        t = 5 + i
        out.append({"crops": torch.randint(0, 256, (t, 16, 16), generator=g, dtype=torch.uint8),
                    "mel": torch.rand(4 * t, 80, generator=g) * 10 - 10,
                    "ids": torch.randint(2, len(PHONEMES) + 2, (3 + i,), generator=g), "speaker": i % 2})
        if align:  # silence, the phonemes in order, silence
            out[-1]["align"] = torch.cat([torch.zeros(2, dtype=torch.long),
                                          torch.arange(4 * t - 4) * (3 + i) // (4 * t - 4) + 1,
                                          torch.zeros(2, dtype=torch.long)])
    return out


def test_alignment_targets_follow_the_timings_and_the_plain_text():
    # "_" pauses are silence; frame f is centred at (f + 0.5) * 10 ms
    timings = [["_", 0.0, 0.02], ["h", 0.02, 0.05], ["@", 0.05, 0.08], ["_", 0.08, 0.1], ["l", 0.1, 0.13]]
    got = solver.alignment_targets(timings, ["h", "@", "l"], 15, 160, 16000)
    assert got.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 3, 3, 3, 0, 0]
    # the timed phonemes (made with commas at the pauses) differ from the plain text's: matched, not shifted
    timings = [["b", 0.0, 0.03], ["E", 0.03, 0.06], ["d", 0.06, 0.09], ["_", 0.09, 0.12], ["r", 0.12, 0.15]]
    got = solver.alignment_targets(timings, ["b", "E", "t", "r"], 15, 160, 16000)
    assert got.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0, 0, 4, 4, 4]
    got = solver.alignment_targets(timings, ["b", "E", "r"], 15, 160, 16000)  # "d" has no match: joins "E"
    assert got.tolist() == [1, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 0, 3, 3, 3]


def test_feature_file_round_trip(tmp_path):
    cfg, train, valid = tiny_config(), items(3), items(2, seed=1)
    path = solver.save_features(tmp_path / "feats.npz", cfg, train, valid)
    cfg2, train2, valid2 = solver.load_features(path)
    assert cfg2 == cfg and len(train2) == 3 and len(valid2) == 2
    for a, b in zip(train + valid, train2 + valid2, strict=True):
        assert torch.equal(a["crops"], b["crops"]) and torch.equal(a["ids"], b["ids"])
        assert a["speaker"] == b["speaker"] and (a["mel"] - b["mel"]).abs().max() < 0.04  # 8-bit log-mel
        assert torch.equal(a["align"], b["align"])
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
    old = solver.save_features(tmp_path / "old.npz", tiny_config(), items(2, align=False), [])
    with pytest.raises(SpeechkitError, match="old.npz: features without alignment targets"):
        solver.run(compose("vdtts", ["preset=debug", "data.root=/x", f"data.cache={old}", f"out={tmp_path / 'o'}"]))
    args = ["preset=debug", "data.root=/nonexistent", f"data.cache={feats}", f"out={tmp_path / 'run'}"]
    assert solver.run(compose("vdtts", args)) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in log) == 6 and any("valid_mel" in r for r in log)
    # the aligned decoder: the aligner's cross-entropy, and the mel on the aligner's own path at validation
    assert all("align" in r for r in log if "total" in r) and any("valid_mel_pred" in r for r in log)
    model = VDTTS.from_pretrained(tmp_path / "run" / "model")
    assert model.config.phonemes == PHONEMES and model.config.d_model == 32  # vocabulary from the file, size from
    # the config: the text-only ablation trains from the same file
    assert solver.run(compose("vdtts", [*args, "optim.max_steps=8"])) == 0  # resumes at 6, runs 2 more
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "total" in r][-2:] == [6, 8]


@pytest.mark.skipif(__import__("shutil").which("mbrola") is None, reason="mbrola is needed (make install)")
def test_featurize_gives_alignment_targets_and_names_a_row_with_bad_timings(tmp_path):
    from speechkit.synth.talking_face import prepare_talking_face
    from speechkit.vdtts.manifest import read_manifest
    from speechkit.vdtts.text import phonemize

    corpus = prepare_talking_face(tmp_path / "tf", minutes=0.1, speakers=("us1",))
    row = read_manifest(corpus / "train.jsonl")[0]
    cfg = tiny_config(speakers=["us1"])
    (item,) = solver.featurize([row], cfg)
    n = len(phonemize(row["text"]))
    assert item["align"].shape == (len(item["mel"]),) and int(item["align"].max()) == n
    assert item["align"][0] == 0 and item["align"][-1] == 0  # the corpus starts and ends in silence
    with pytest.raises(SpeechkitError, match=r"tf00000.mp4: 'phonemes' must be \[\[symbol, start_s, end_s\]"):
        solver.featurize([{**row, "phonemes": [["h", 0.1]]}], cfg)
    with pytest.raises(SpeechkitError, match="tf00000.mp4: the aligned decoder needs phoneme timings"):
        solver.featurize([{k: v for k, v in row.items() if k != "phonemes"}], cfg)
