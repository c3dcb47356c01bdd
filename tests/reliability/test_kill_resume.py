"""SIGKILL at random points, then resume: every long job ends as an uninterrupted run would, loses and duplicates
nothing, and never leaves a corrupt checkpoint as the latest.

Covered: unit-LM, DPO, CodeHiFiGAN, unit-to-mel, mel HiFi-GAN, Vocos, VDTTS and HuBERT training, k-means,
``eval folder``, ``prepare own-data`` and bundle export (``data_prep/make_bundle.py``). Training runs are
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
    keys = ("train_loss", "loss_g", "loss_mel", "total", "reward_accuracy")
    return [r["step"] for r in rows if any(k in r for k in keys)]


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


def _straight_then_killed(tmp: Path, argv_for, seed: int, ready, max_delay: float, after_kill=None):
    """Runs ``argv_for(tmp/"ref")`` to the end; then starts ``argv_for(tmp/"killed")`` again and again, SIGKILLing
    it a random delay after ``ready(run_dir)`` (``KILLS`` kills, more tries only while none has landed), calls
    ``after_kill(run_dir)`` after each kill, and lets a last start finish. Returns ``(ref, run, kills)``."""
    ref, run = tmp / "ref", tmp / "killed"
    assert jobs.run(argv_for(ref), tmp / "ref.log") == 0, (tmp / "ref.log").read_text()[-2000:]
    rng, killed = random.Random(seed), 0
    for attempt in range(KILLS + 10):  # extra tries only while no kill has landed before the job ended
        if attempt >= KILLS and killed:
            break
        if jobs.kill_when(argv_for(run), tmp / "killed.log", lambda: ready(run), rng, max_delay):
            killed += 1
            if after_kill is not None:
                after_kill(run)
    assert killed > 0, "every run finished before its kill: the test proves nothing"
    assert jobs.run(argv_for(run), tmp / "killed.log") == 0, (tmp / "killed.log").read_text()[-2000:]
    return ref, run, killed


def _checkpointed(run: Path) -> bool:
    return (run / "checkpoint_last.pt").exists()


def _kill_resume_train(tmp: Path, argv_for, seed: int, what: str):
    """Kills a training run at random points after its first checkpoint, resumes it, compares with a straight run."""
    ref, run, killed = _straight_then_killed(tmp, argv_for, seed, _checkpointed, 1.5, _latest_checkpoint_loads)
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
                f"model.text_lm={ulm_corpus / 'textlm'}", f"out={out}", "optim.max_steps=24",
                "train.save_every=2", "train.valid_every=6"]

    _kill_resume_train(tmp_path, argv, 0, "unit-LM training")


def test_dpo_training(tmp_path):
    from speechkit.ulm import UnitLM
    from speechkit.ulm.dpo import PreferencePair, append_pairs
    from tests.unit.ulm.conftest import tiny_config

    UnitLM.cold_start(tiny_config("llama", max_position_embeddings=256), num_units=20).save_pretrained(tmp_path / "lm")
    rng = np.random.default_rng(0)
    append_pairs(tmp_path / "pairs.jsonl", [PreferencePair(
        id=f"p{i}", prompt=rng.integers(0, 20, 6).tolist(), chosen=rng.integers(0, 10, 5).tolist(),
        rejected=rng.integers(10, 20, 5).tolist()) for i in range(24)])

    def argv(out):
        return ["train", "dpo", "preset=debug", f"data.train={tmp_path / 'pairs.jsonl'}",
                f"data.valid={tmp_path / 'pairs.jsonl'}", f"model.init={tmp_path / 'lm'}", f"out={out}",
                "optim.max_steps=16", "train.save_every=2", "train.valid_every=4"]

    _kill_resume_train(tmp_path, argv, 8, "DPO training")


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


def test_vdtts_training(tmp_path):
    from speechkit.train.vdtts import save_features
    from tests.unit.test_vdtts import tiny_config
    from tests.unit.test_vdtts_train import items

    feats = save_features(tmp_path / "feats.npz", tiny_config(), items(6), items(2, seed=1))  # no video decoding

    def argv(out):
        return ["train", "vdtts", "preset=debug", "data.root=/nonexistent", f"data.cache={feats}", f"out={out}",
                "train.device=cpu", "optim.max_steps=30", "train.save_every=1", "train.log_every=1"]

    _kill_resume_train(tmp_path, argv, 7, "VDTTS training")


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

    def whole(run):  # whatever is there is whole
        from speechkit.units import KMeansQuantizer

        for f in ("kmeans.safetensors", "kmeans_stats.json"):
            if (run / f).exists():
                KMeansQuantizer.from_pretrained(run / f) if f.endswith("safetensors") \
                    else json.loads((run / f).read_text())

    ref, run, killed = _straight_then_killed(tmp_path, argv, 2, Path.exists, 0.4, whole)
    assert (run / "kmeans.safetensors").read_bytes() == (ref / "kmeans.safetensors").read_bytes()
    assert (run / "kmeans_stats.json").read_text() == (ref / "kmeans_stats.json").read_text()
    record_outcome("kill -9 and resume", "k-means", injected=killed, survived=killed)


def test_eval_folder(tmp_path):
    hyp = _tone_folder(tmp_path / "hyp", n=24)
    ref_audio = _tone_folder(tmp_path / "ref_audio", n=24)

    def argv(out):
        return ["eval", "folder", "--hyp", str(hyp), "--ref", str(ref_audio), "--metrics", "f0", "--no-media",
                "-o", str(out)]

    def whole(run):  # never half written
        if (run / "report.json").exists():
            json.loads((run / "report.json").read_text())

    ref, run, killed = _straight_then_killed(tmp_path, argv, 3, lambda run: True, 0.3, whole)
    a, b = (json.loads((d / "report.json").read_text()) for d in (ref, run))
    assert a["rows"] == b["rows"] if "rows" in a else a == b
    record_outcome("kill -9 and resume", "eval folder", injected=killed, survived=killed)


def test_hubert_training(tmp_path):
    """HuBERT masked prediction (recipes/hubert, recipes/own_data --encoder scratch): crops, masks and dropout are
    functions of (seed, epoch, step) or restored, and a resumed epoch skips the batches already trained on."""
    from speechkit.data.manifest import ManifestEntry, UnitRecord, write_tsv, write_units_jsonl

    audio = _tone_folder(tmp_path / "audio", n=6)
    write_tsv(tmp_path / "m.tsv", audio, [ManifestEntry(f"u{i}.wav", 16000) for i in range(6)])
    write_units_jsonl(tmp_path / "l.jsonl", [UnitRecord(f"u{i}", f"u{i}.wav", [(f // 4 + i) % 5 for f in range(50)])
                                             for i in range(6)])

    def argv(out):
        return ["train", "hubert", "preset=debug", f"data.train={tmp_path / 'm.tsv'}",
                f"data.train_labels={tmp_path / 'l.jsonl'}", f"data.valid={tmp_path / 'm.tsv'}",
                f"data.valid_labels={tmp_path / 'l.jsonl'}", "data.crop_seconds=0.5", "data.batch_size=4",
                "pretrain.num_classes=5", "optim.max_steps=9", "train.save_every=1", "train.log_every=1",
                "train.valid_every=4", f"out={out}"]

    ref, run, killed = _straight_then_killed(tmp_path, argv, 7, _checkpointed, 1.5, _latest_checkpoint_loads)
    _same_weights(ref / "model", run / "model")

    def history(d):  # each step once, the same losses (timings aside)
        return [{k: v for k, v in r.items() if k != "sec"} for r in json.loads((d / "history.json").read_text())]

    assert history(run) == history(ref)
    record_outcome("kill -9 and resume", "HuBERT training", injected=killed, survived=killed)


def test_prepare_own_data(tmp_path):
    """``speechkit prepare own-data``: converted files are whole, none is converted twice or lost, the split and
    tables equal an uninterrupted run's."""
    import soundfile as sf

    rng_np = np.random.default_rng(0)
    src = tmp_path / "src"
    for s in range(3):
        (src / f"spk{s}").mkdir(parents=True)
        for i in range(30):  # enough work that a kill a fraction of a second in lands before the end
            sf.write(src / f"spk{s}" / f"{i:02d}.flac", 0.2 * rng_np.standard_normal(44100 * 4).astype("float32"),
                     44100)

    def argv(out):
        return ["prepare", "own-data", str(src), "-o", str(out)]

    def whole(run):  # whatever carries a final name is whole (".name.XXXX.tmp.wav": a write the kill cut short)
        for f in (run / "wav").rglob("*.wav"):
            if f.name.startswith("."):
                continue
            assert sf.info(f).frames == 64000, f"{f} is truncated"

    ref, run, killed = _straight_then_killed(tmp_path, argv, 8, lambda run: (run / "wav").exists(), 0.3, whole)

    def listing(d):
        return sorted(str(p.relative_to(d)) for p in (d / "wav").rglob("*") if p.is_file())

    assert listing(run) == listing(ref) and len(listing(ref)) == 90
    for f in listing(ref):
        assert (run / f).read_bytes() == (ref / f).read_bytes()
    for table in ("train.tsv", "dev.tsv", "test.tsv", "splits/train.txt", "splits/dev.txt", "splits/test.txt"):
        assert (run / table).read_text().replace(str(run), "") == (ref / table).read_text().replace(str(ref), "")
    record_outcome("kill -9 and resume", "prepare own-data", injected=killed, survived=killed)


def test_bundle_export(tmp_path):
    """data_prep/make_bundle.py over an existing bundle: a kill at any point leaves the old bundle whole or none,
    never a half-written or half-deleted one; the rerun writes the same bundle."""
    import signal
    import subprocess
    import sys
    import time

    import soundfile as sf

    from speechkit.data.corpora.own import prepare_own_data
    from speechkit.ulm import UnitLM
    from tests.unit.test_pipeline import K, tiny_encoder, tiny_vocoder
    from tests.unit.ulm.conftest import tiny_config

    root = Path(__file__).resolve().parents[2]
    rng_np = np.random.default_rng(0)
    src = tmp_path / "src"
    for s in range(2):
        (src / f"spk{s}").mkdir(parents=True)
        for i in range(6):
            sf.write(src / f"spk{s}" / f"{i}.wav", 0.2 * rng_np.standard_normal(16000).astype("float32"), 16000)
    prepare_own_data(src, tmp_path / "prepared", log=lambda _: None)
    tiny_encoder().save_pretrained(tmp_path / "encoder")
    tiny_vocoder().save_pretrained(tmp_path / "vocoder")
    UnitLM.cold_start(tiny_config("llama"), num_units=K, seed=0).save_pretrained(tmp_path / "ulm")
    cmd = [sys.executable, str(root / "data_prep" / "make_bundle.py"), "--encoder", str(tmp_path / "encoder"),
           "--vocoder", str(tmp_path / "vocoder"), "--ulm", str(tmp_path / "ulm"), "--prepared",
           str(tmp_path / "prepared")]

    def export(out):
        return subprocess.run(cmd + ["-o", str(out)], cwd=root, capture_output=True, text=True)

    ref, run = tmp_path / "ref", tmp_path / "bundle"
    t0 = time.monotonic()
    assert export(ref).returncode == 0
    took = time.monotonic() - t0
    assert export(run).returncode == 0  # the old bundle the killed exports replace

    def files(d):
        return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}

    expected = {k: v for k, v in files(ref).items() if k != "README.md"}  # the card names its own folder
    rng, killed = random.Random(9), 0
    for _ in range(KILLS + 10):
        if killed >= KILLS:
            break
        p = subprocess.Popen(cmd + ["-o", str(run)], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 1.0) * took)  # imports come first; copying, samples and the swap after
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.wait()
        if run.exists():  # the old bundle or the new one, whole
            got = {k: v for k, v in files(run).items() if k != "README.md"}
            assert got == expected and (run / "README.md").is_file(), "a kill left a partial bundle"
    assert killed > 0, "every export finished before its kill: the test proves nothing"
    assert export(run).returncode == 0
    assert {k: v for k, v in files(run).items() if k != "README.md"} == expected
    assert not (tmp_path / "bundle.partial").exists() and not (tmp_path / "bundle.old").exists()
    from speechkit.pipeline import Resynthesizer

    assert Resynthesizer.from_pretrained(run).encoder.vocab_size == K
    record_outcome("kill -9 and resume", "bundle export", injected=killed, survived=killed)
