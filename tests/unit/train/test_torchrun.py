"""The trainers recipes/own_data calls, under ``torchrun`` with two gloo processes on the CPU: the global batch is
split across the processes, DDP averages the gradients, rank 0 alone logs and saves, and where every loss is a mean
over the batch the two-process run ends with the weights of the one-process run (up to summation order)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def _run(args: list[str], nproc: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    launch = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  f"--nproc_per_node={nproc}"]
    return subprocess.run([*launch, "-m", "speechkit.cli.main", "train", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def _one_and_two(tmp_path: Path, args, out_key: str = "out") -> tuple[Path, Path]:
    for n, name in ((1, "one"), (2, "two")):
        proc = _run([*args, f"{out_key}={tmp_path / name}"], n)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / "one", tmp_path / "two"


def _assert_same_weights(a: Path, b: Path, atol: float) -> None:
    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert x.keys() == y.keys()
    for k in x:
        assert torch.allclose(x[k], y[k], atol=atol), f"{k}: max diff {(x[k] - y[k]).abs().max():.2e}"


def _log_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_unit_mel_two_processes_match_one(tmp_path):
    from tests.unit.vocoders.test_training import make_corpus

    units = make_corpus(tmp_path / "data", n=8)
    one, two = _one_and_two(tmp_path, ["unit_mel", "preset=debug", f"data.units={units}",
                                       f"data.audio_root={tmp_path / 'data'}", "data.speaker=expresso",
                                       "data.style=expresso", "model.num_units=20", "model.dropout=0",
                                       "optim.duration_weight=0", "optim.batch_size=4", "optim.max_steps=3"])
    _assert_same_weights(one / "model", two / "model", atol=1e-5)
    assert _log_steps(one) == _log_steps(two)  # rank 0 writes the log, once per step


def test_vocos_two_processes_match_one(tmp_path):
    from speechkit.audio import io

    audio = tmp_path / "audio"
    rng = np.random.default_rng(0)
    for i in range(4):
        t = np.arange(16000) / 16000
        io.save(audio / f"u{i}.wav", (0.3 * np.sin(2 * np.pi * (120 + 30 * i) * t) + 0.01 * rng.normal(size=t.size))
                .astype(np.float32), 16000)
    # the multi-resolution STFT loss's spectral convergence is a norm over the whole batch, not a mean: off here
    one, two = _one_and_two(tmp_path, ["vocos", "preset=debug", f"data.audio={audio}", "optim.batch_size=4",
                                       "loss.stft=0", "optim.max_steps=4"])
    _assert_same_weights(one / "model", two / "model", atol=1e-5)
    assert _log_steps(one) == _log_steps(two)


def test_hubert_runs_as_two_processes(tmp_path):
    """HuBERT (fairseq's convention: data.batch_size per process) trains as two ranks that stay in step: one
    history, one export, and it trained."""
    from speechkit.audio import io
    from speechkit.data.manifest import ManifestEntry, UnitRecord, write_tsv, write_units_jsonl
    from speechkit.units.hubert.model import HubertModel

    rng = np.random.default_rng(0)
    for i in range(6):
        io.save(tmp_path / f"u{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    write_tsv(tmp_path / "m.tsv", tmp_path, [ManifestEntry(f"u{i}.wav", 16000) for i in range(6)])
    write_units_jsonl(tmp_path / "l.jsonl", [UnitRecord(f"u{i}", f"u{i}.wav", [(f // 4 + i) % 5 for f in range(50)])
                                             for i in range(6)])
    proc = _run(["hubert", "preset=debug", f"data.train={tmp_path / 'm.tsv'}",
                 f"data.train_labels={tmp_path / 'l.jsonl'}", "data.batch_size=2", "pretrain.num_classes=5",
                 "optim.max_steps=4", "train.log_every=1", f"out={tmp_path / 'two'}"], 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = json.loads((tmp_path / "two" / "history.json").read_text())
    assert [r["step"] for r in history] == [1, 2, 3, 4]
    model = HubertModel.from_pretrained(tmp_path / "two" / "model")
    assert sum(p.numel() for p in model.parameters()) > 0
    assert proc.stderr.count("exported") == 1  # rank 0 alone exports
