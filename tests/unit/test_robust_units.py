"""data_prep/robust_units.py: perturbed units land on the clean frame grid, paired with the clean audio; resume."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from speechkit.audio import io
from tests.unit.units import fairseq_format as ff

_spec = importlib.util.spec_from_file_location(
    "robust_units", Path(__file__).resolve().parents[2] / "data_prep" / "robust_units.py")
ru = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ru)


def test_perturb_resamples_by_the_drawn_factor_and_degrades_with_its_probability():
    wav = torch.randn(16000) * 0.1
    x, s, chain = ru.perturb(wav, 16000, random.Random(1), (0.8, 1.25), 0.0)
    assert 0.8 <= s <= 1.25 and chain == []
    assert abs(x.numel() - 16000 / s) <= 2                               # s times faster
    chains = [ru.perturb(wav, 16000, random.Random(seed), (1.0, 1.0), 1.0) for seed in range(8)]
    assert all(s == 1.0 and x.numel() == 16000 for x, s, _ in chains)   # conditions keep every sample
    applied = [(x, chain) for x, _, chain in chains if chain]
    assert len(applied) >= 6 and all(not torch.equal(x, wav) for x, _ in applied)
    assert all(torch.equal(x, wav) for x, _, chain in chains if not chain)  # no condition drawn: untouched
    assert all(not ru.perturb(wav, 16000, random.Random(seed), (1.0, 1.0), 0.0)[2] for seed in range(8))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    rng = np.random.default_rng(0)
    enc = ff.tiny_speech_encoder(root / "hubert.pt", 3, 12, rng)
    enc.save_pretrained(root / "encoder")
    lines = []
    for i in range(5):
        n = int(rng.integers(8000, 20000))
        t = np.arange(n) / 16000
        wav = (0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t * (1 + t))
               + 0.05 * rng.standard_normal(n)).astype(np.float32)
        path = root / "audio" / f"spk_default_{i:05d}.wav"
        io.save(path, wav, 16000)
        e = enc(torch.from_numpy(wav))
        lines.append(json.dumps({"id": f"u{i}", "audio": str(path), "units": e["units"].tolist(),
                                 "duration": e["durations"].tolist()}))
    (root / "units.jsonl").write_text("\n".join(lines) + "\n")
    (root / "train.txt").write_text("".join(f"spk_default_{i:05d}\n" for i in range(4)))  # u4 is not train
    return root


def _run(root, out, *extra):
    return ru.main(["--encoder", str(root / "encoder"), "--units", str(root / "units.jsonl"), "--list",
                    str(root / "train.txt"), "-o", str(out), *extra])


def _read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_without_a_perturbation_the_copies_equal_the_clean_units(corpus, tmp_path):
    _run(corpus, tmp_path / "o.jsonl", "--copies", "2", "--speed", "1,1", "--degrade", "0")
    rows = _read(tmp_path / "o.jsonl")
    clean = {r["id"]: r for r in _read(corpus / "units.jsonl")}
    assert [r["id"] for r in rows[:5]] == [f"u{i}" for i in range(5)]   # every clean record first
    copies = rows[5:]
    assert sorted(r["id"] for r in copies) == sorted(f"u{i}~p{c}" for i in range(4) for c in range(2))
    for r in copies:
        base = clean[r["id"].split("~")[0]]
        assert (r["audio"], r["units"], r["duration"]) == (base["audio"], base["units"], base["duration"])


def test_perturbed_copies_keep_the_clean_audio_and_frame_count_and_resume_exactly(corpus, tmp_path):
    out = tmp_path / "o.jsonl"
    _run(corpus, out, "--copies", "2", "--degrade", "0.5")
    full = out.read_text()
    rows = _read(out)
    clean = {r["id"]: r for r in _read(corpus / "units.jsonl")}
    changed = 0
    for r in rows[5:]:
        base = clean[r["id"].split("~")[0]]
        assert r["audio"] == base["audio"] and sum(r["duration"]) == sum(base["duration"])
        assert all(a != b for a, b in zip(r["units"], r["units"][1:], strict=False))
        changed += r["units"] != base["units"]
    assert changed >= 6                                                  # the perturbations reach the units
    # a killed run: the last record torn in the middle, the one before missing; the re-run restores the same file
    lines = full.splitlines(keepends=True)
    out.write_text("".join(lines[:-2]) + lines[-1][:20])
    _run(corpus, out, "--copies", "2", "--degrade", "0.5")
    assert sorted(out.read_text().splitlines()) == sorted(full.splitlines())
    _run(corpus, out, "--copies", "2", "--degrade", "0.5")               # nothing left to do: unchanged
    assert len(out.read_text().splitlines()) == len(full.splitlines())


def test_refuses_perturbed_units_as_input_and_a_bad_speed_range(corpus, tmp_path):
    bad = tmp_path / "units.jsonl"
    bad.write_text(json.dumps({"id": "u0~p0", "audio": "a.wav", "units": [1], "duration": [1]}) + "\n")
    with pytest.raises(SystemExit):
        ru.main(["--encoder", str(corpus / "encoder"), "--units", str(bad), "-o", str(tmp_path / "o.jsonl")])
    with pytest.raises(SystemExit):
        _run(corpus, tmp_path / "o.jsonl", "--speed", "1.3,0.9")
