"""Corpus encoding: batching never changes units, shards partition, bad files are logged, resume is exact."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from speechkit.audio import io
from speechkit.errors import SpeechkitError
from speechkit.units.corpus import encode_corpus
from tests.unit.units import fairseq_format as ff


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    audio = root / "audio"
    for i in range(24):
        n = int(rng.integers(4000, 30000))
        t = np.arange(n) / 16000
        wav = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.05 * rng.standard_normal(n)
        sr = 16000 if i % 3 else 48000  # mixed rates: resampled at the boundary
        if sr == 48000:
            wav = np.repeat(wav, 3)
        io.save(audio / f"spk{i % 2}" / f"utt{i:02d}.wav", wav.astype(np.float32), sr)
    (audio / "spk0" / "broken.wav").write_bytes(b"not audio" * 50)
    io.save(audio / "spk1" / "tiny.wav", np.zeros(100, np.float32), 16000)  # too short for one frame
    enc = ff.tiny_speech_encoder(root / "hubert.pt", 7, 16, rng)
    enc.save_pretrained(root / "encoder")
    return root, enc


def read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_records_match_one_at_a_time_encoding(tmp_path, corpus):
    root, enc = corpus
    stats = encode_corpus(enc, root / "audio", tmp_path / "u.jsonl", progress=False)
    assert (stats.encoded, stats.failed) == (24, 2)
    recs = {r["id"]: r for r in read(tmp_path / "u.jsonl")}
    assert len(recs) == 24
    wav, sr = io.load(root / "audio" / "spk0" / "utt00.wav", sample_rate=16000)
    single = enc(wav)
    assert recs["spk0/utt00"]["units"] == single["units"].tolist()
    assert recs["spk0/utt00"]["duration"] == single["durations"].tolist()
    errors = (tmp_path / "u.jsonl.errors.tsv").read_text().splitlines()
    reasons = {line.split("\t")[0]: line.split("\t")[2] for line in errors}
    assert "not a readable audio file" in reasons["spk0/broken"]
    assert "too short" in reasons["spk1/tiny"]


def test_batch_size_and_loader_do_not_change_the_output(tmp_path, corpus):
    root, enc = corpus
    encode_corpus(enc, root / "audio", tmp_path / "batched.jsonl", batch_seconds=30, progress=False)
    encode_corpus(enc, root / "audio", tmp_path / "single.jsonl", batch_seconds=0, progress=False)
    encode_corpus(enc, root / "audio", tmp_path / "torch.jsonl", loader="torch", workers=0, progress=False)
    batched = (tmp_path / "batched.jsonl").read_text()
    assert batched == (tmp_path / "single.jsonl").read_text() == (tmp_path / "torch.jsonl").read_text()


def test_shards_partition_the_corpus(tmp_path, corpus):
    root, enc = corpus
    ids = []
    for i in range(3):
        encode_corpus(enc, root / "audio", tmp_path / f"u{i}.jsonl", shard=(i, 3), progress=False)
        ids.append({r["id"] for r in read(tmp_path / f"u{i}.jsonl")})
    assert sum(len(s) for s in ids) == len(set().union(*ids)) == 24
    with pytest.raises(ValueError, match="shard must be i/n"):
        encode_corpus(enc, root / "audio", tmp_path / "x.jsonl", shard=(3, 3))


def test_resume_after_a_torn_write_gives_the_same_file(tmp_path, corpus):
    root, enc = corpus
    encode_corpus(enc, root / "audio", tmp_path / "full.jsonl", progress=False)
    full = (tmp_path / "full.jsonl").read_bytes()
    cut = full.index(b"\n", len(full) // 3) + 25  # 1/3 done, then killed in the middle of a record
    (tmp_path / "part.jsonl").write_bytes(full[:cut])
    with pytest.raises(SpeechkitError, match="already exists; pass --resume"):
        encode_corpus(enc, root / "audio", tmp_path / "part.jsonl", progress=False)
    stats = encode_corpus(enc, root / "audio", tmp_path / "part.jsonl", resume=True, progress=False)
    assert (tmp_path / "part.jsonl").read_bytes() == full
    assert stats.skipped + stats.encoded + stats.failed == 26 and stats.skipped > 0
    again = encode_corpus(enc, root / "audio", tmp_path / "part.jsonl", resume=True, progress=False)
    assert again.encoded == 0 and (tmp_path / "part.jsonl").read_bytes() == full  # nothing duplicated


@pytest.mark.slow
def test_sigkill_then_resume_via_cli(tmp_path, corpus):
    root, _ = corpus
    speechkit = str(Path(sys.executable).parent / "speechkit")
    args = [speechkit, "encode", str(root / "audio"), "--encoder", str(root / "encoder"), "--batch-seconds", "0",
            "--threads", "1"]
    subprocess.run([*args, "-o", str(tmp_path / "ref.jsonl")], check=True, capture_output=True, timeout=300)
    ref = (tmp_path / "ref.jsonl").read_bytes()
    out = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([*args, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 3):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert out.read_bytes() != ref, "the job finished before it could be killed; the test proves nothing"
    r = subprocess.run([*args, "-o", str(out), "--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ref
