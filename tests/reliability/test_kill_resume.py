"""SIGKILL at random points, then resume: every long job ends as an uninterrupted run would, loses and duplicates
nothing, and never leaves a corrupt checkpoint as the latest.

Covered: unit-LM, CodeHiFiGAN, unit-to-mel, mel HiFi-GAN and Vocos training, k-means, ``eval folder``. Training runs are
deterministic on a CPU (same seeds, same data order, RNG state in the checkpoint), so the resumed
model must equal the uninterrupted one bit for bit, and the training log must hold each step once. Corpus encoding
has its own kill test (``tests/unit/units/test_corpus.py::test_sigkill_then_resume_via_cli``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.reliability import jobs
from tests.reliability.faults import iterations, record_outcome

KILLS = iterations(3)


def _steps(log: Path) -> list[int]:
    """Training steps in a ``log.jsonl``, in order (header and validation lines excluded)."""
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    return [r["step"] for r in rows if "train_loss" in r or "loss_g" in r or "loss_mel" in r]


def _latest_checkpoint_loads(run_dir: Path) -> None:
    from speechkit.train.checkpoint import LAST, load_training_state

    if (run_dir / LAST).exists():
        load_training_state(run_dir / LAST)  # raises CheckpointError if the kill left it corrupt


def _same_weights(a: Path, b: Path) -> None:
    from safetensors.torch import load_file

    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert x.keys() == y.keys()
    for k in x:
        assert torch.equal(x[k], y[k]), f"{k} differs after kill and resume"


def _kill_resume_train(tmp: Path, argv_for, seed: int, what: str):
    """Kills a training run at random points after its first checkpoint, resumes it, compares with a straight run."""
    ref, run = tmp / "ref", tmp / "killed"
    assert jobs.run(argv_for(ref), tmp / "ref.log") == 0, (tmp / "ref.log").read_text()[-2000:]
    rng, killed = random.Random(seed), 0
    for attempt in range(KILLS + 10):  # extra tries only while no kill has landed before the job ended
        if attempt >= KILLS and killed:
            break
        if jobs.kill_when(argv_for(run), tmp / "killed.log", lambda: (run / "checkpoint_last.pt").exists(), rng, 1.5):
            killed += 1
            _latest_checkpoint_loads(run)
    assert killed > 0, "every run finished before its kill: the test proves nothing"
    assert jobs.run(argv_for(run), tmp / "killed.log") == 0, (tmp / "killed.log").read_text()[-2000:]
    _same_weights(ref / "model", run / "model")
    assert _steps(run / "log.jsonl") == _steps(ref / "log.jsonl"), "steps lost or logged twice"
    record_outcome("kill -9 and resume", what, injected=killed, survived=killed)


@pytest.fixture(scope="module")
def ulm_corpus(tmp_path_factory):
    from speechkit.data.manifest import UnitRecord, write_units_jsonl
    from tests.unit.ulm.conftest import save_tiny_lm

    d = tmp_path_factory.mktemp("ulm_corpus")
    rng = np.random.default_rng(0)
    for split, n in (("train", 120), ("valid", 20)):
        records = [UnitRecord(f"{split}{i}", "", [int(u) for u in rng.integers(0, 20, 12)]) for i in range(n)]
        write_units_jsonl(d / f"{split}.jsonl", records)
    save_tiny_lm(d / "textlm", "llama")
    return d


def test_unit_lm_training(tmp_path, ulm_corpus):
    def argv(out):
        return ["train", "ulm", "preset=debug", f"data.train={ulm_corpus / 'train.jsonl'}",
                f"data.valid={ulm_corpus / 'valid.jsonl'}", "data.num_units=20",
                f"model.text_lm={ulm_corpus / 'textlm'}", f"train.out_dir={out}", "optim.max_steps=24",
                "train.save_every=2", "train.eval_every=6"]

    _kill_resume_train(tmp_path, argv, 0, "unit-LM training")


@pytest.mark.parametrize("task,seed,what", [("vocoder", 1, "vocoder training"),
                                           ("unit_mel", 4, "unit-to-mel training")])
def test_unit_vocoder_training(tmp_path, task, seed, what):
    from tests.unit.vocoders.test_training import make_corpus

    units = make_corpus(tmp_path / "data", n=8)

    def argv(out):
        return ["train", task, "preset=debug", f"data.units={units}", f"data.audio_root={tmp_path / 'data'}",
                "data.speaker=expresso", "data.style=expresso", "model.num_units=20", f"out={out}",
                "optim.max_steps=10", "train.save_every=1", "train.valid_every=5"]

    _kill_resume_train(tmp_path, argv, seed, what)


def test_mel_hifigan_training(tmp_path):
    audio = _tone_folder(tmp_path / "audio", n=4)

    def argv(out):
        return ["train", "mel_vocoder", "preset=debug", f"data.audio={audio}", f"out={out}", "data.sample_rate=16000",
                "optim.max_steps=8", "train.save_every=1", "train.log_every=1"]

    _kill_resume_train(tmp_path, argv, 5, "mel HiFi-GAN training")


def test_vocos_training(tmp_path):
    audio = _tone_folder(tmp_path / "audio", n=4)

    def argv(out):
        return ["train", "vocos", "preset=debug", f"data.audio={audio}", f"out={out}", "optim.max_steps=8",
                "train.save_every=1", "train.log_every=1", "train.discriminator_start=3"]

    _kill_resume_train(tmp_path, argv, 6, "Vocos training")


def _tone_folder(d: Path, n: int = 6, seconds: float = 1.0) -> Path:
    from speechkit.audio import io

    rng = np.random.default_rng(0)
    for i in range(n):
        t = np.arange(int(16000 * seconds)) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (120 + 20 * i) * t * (1 + 0.1 * t)) + 0.01 * rng.normal(size=t.size)
        io.save(d / f"u{i}.wav", wav.astype(np.float32), 16000)
    return d


def test_kmeans(tmp_path):
    data = _tone_folder(tmp_path / "audio")

    def argv(out):
        return ["train", "kmeans", "preset=debug", f"data={data}", f"out={out}", "k=8"]

    ref, run = tmp_path / "ref", tmp_path / "killed"
    assert jobs.run(argv(ref), tmp_path / "ref.log") == 0
    rng, killed = random.Random(2), 0
    for attempt in range(KILLS + 10):  # extra tries only while no kill has landed before the job ended
        if attempt >= KILLS and killed:
            break
        if jobs.kill_when(argv(run), tmp_path / "killed.log", lambda: run.exists(), rng, 0.4):
            killed += 1
            for f in ("kmeans.safetensors", "kmeans_stats.json"):  # whatever is there is whole
                if (run / f).exists():
                    from speechkit.units import KMeansQuantizer

                    KMeansQuantizer.load(run / f) if f.endswith("safetensors") else json.loads((run / f).read_text())
    assert killed > 0, "every run finished before its kill: the test proves nothing"
    assert jobs.run(argv(run), tmp_path / "killed.log") == 0
    assert (run / "kmeans.safetensors").read_bytes() == (ref / "kmeans.safetensors").read_bytes()
    assert (run / "kmeans_stats.json").read_text() == (ref / "kmeans_stats.json").read_text()
    record_outcome("kill -9 and resume", "k-means", injected=killed, survived=killed)


def test_eval_folder(tmp_path):
    hyp = _tone_folder(tmp_path / "hyp", n=24)
    ref_audio = _tone_folder(tmp_path / "ref_audio", n=24)

    def argv(out):
        return ["eval", "folder", "--hyp", str(hyp), "--ref", str(ref_audio), "--metrics", "f0", "--no-media",
                "-o", str(out)]

    ref, run = tmp_path / "ref", tmp_path / "killed"
    assert jobs.run(argv(ref), tmp_path / "ref.log") == 0
    rng, killed = random.Random(3), 0
    for attempt in range(KILLS + 10):  # extra tries only while no kill has landed before the job ended
        if attempt >= KILLS and killed:
            break
        if jobs.kill_when(argv(run), tmp_path / "killed.log", lambda: True, rng, 0.3):
            killed += 1
            if (run / "report.json").exists():  # never half written
                json.loads((run / "report.json").read_text())
    assert killed > 0, "every run finished before its kill: the test proves nothing"
    assert jobs.run(argv(run), tmp_path / "killed.log") == 0
    a, b = (json.loads((d / "report.json").read_text()) for d in (ref, run))
    assert a["rows"] == b["rows"] if "rows" in a else a == b
    record_outcome("kill -9 and resume", "eval folder", injected=killed, survived=killed)
