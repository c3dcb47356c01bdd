"""recipes/own_data/run.sh end to end with the debug preset on two corpora made here from plain espeak-ng voices
(none of them the default bundle's): a folder of mixed rates, channels and formats without transcripts, and a
LibriSpeech-layout folder with transcripts. Each run's bundle must load through both pipelines and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("prepare", "hubert", "kmeans", "units", "decoder", "melvoc", "ulm", "bundle", "eval")


def make_corpus(out: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "data_prep" / "espeak_corpus.py"), str(out), "--speakers", "2",
                    "--per-speaker", "5", *args], check=True, capture_output=True, timeout=120)


def run_recipe(audio: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPEECHKIT": f"{sys.executable} -m speechkit.cli.main", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(ROOT / "recipes" / "own_data" / "run.sh"), "--audio", str(audio), "--out",
                           str(out), "--preset", "debug", "--jobs", "1", *extra], capture_output=True, text=True,
                          timeout=600, env=env, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["folder", "librispeech"])
def test_own_data_recipe_debug_builds_a_bundle_that_speaks(tmp_path, layout):
    from speechkit import Resynthesizer, SpeechContinuation
    from speechkit.audio import io
    from speechkit.vocoders import UnitMelVocoder, VocosVocoder

    audio = tmp_path / "audio"
    make_corpus(audio, *(["--layout", "folder", "--mixed"] if layout == "folder" else ["--layout", "librispeech"]))
    if layout == "folder":  # the mixed fixture really is mixed
        infos = [sf.info(str(p)) for p in audio.rglob("*.*")]
        assert len({i.samplerate for i in infos}) >= 3 and {i.channels for i in infos} == {1, 2}
        assert {p.suffix for p in audio.rglob("*.*")} == {".wav", ".flac", ".ogg"}
    out = tmp_path / "run"
    # the folder corpus trains its own HuBERT (--encoder scratch); the LibriSpeech one runs every trainer as two
    # torchrun processes (gloo on the CPU)
    proc = run_recipe(audio, out, *(["--encoder", "scratch"] if layout == "folder" else ["--nproc", "2"]))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in STAGES:
        assert f"== {stage}" in proc.stdout
    summary = json.loads((out / "data" / "summary.json").read_text())
    assert summary["layout"] == layout and summary["utterances"] == 10 and summary["speakers"] == 2
    assert summary["transcribed"] == (layout == "librispeech")

    # the unit LM saw train-split units only, from a cold start (no text LM given)
    train = set((out / "data" / "splits" / "train.txt").read_text().split())
    test = set((out / "data" / "splits" / "test.txt").read_text().split())
    seen = {Path(json.loads(line)["id"]).stem for line in (out / "exp" / "ulm_data" / "train.jsonl").open()}
    assert seen and seen <= train and not seen & test
    header = json.loads((out / "exp" / "ulm" / "log.jsonl").open().readline())
    assert header["world_size"] == (2 if layout == "librispeech" else 1)
    if layout == "folder":  # the encoder is the HuBERT trained here, second iteration
        assert (out / "exp" / "hubert" / "it2" / "model").is_dir()
        assert "exp/hubert/it2/model" in (out / "exp" / "encoder.sh").read_text()

    bundle = out / "bundle"
    rs = Resynthesizer.from_pretrained(bundle)
    speakers = sorted({p.parent.name for p in (out / "data" / "wav").rglob("*.wav")})
    assert rs.vocoder.speakers == speakers and rs.encoder.vocab_size == 16
    assert isinstance(rs.vocoder, UnitMelVocoder) and isinstance(rs.vocoder.mel_vocoder, VocosVocoder)
    sample = sorted((bundle / "samples").glob("*.wav"))
    assert len(sample) == 2 and {p.stem for p in sample} <= test
    wav, sr = io.load(sample[0])
    y = rs(wav, sr, speaker=speakers[1])
    assert y.ndim == 1 and torch.isfinite(y).all() and abs(len(y) - len(wav)) < 0.25 * len(wav)
    sc = SpeechContinuation.from_pretrained(bundle)
    assert sc.lm.num_units == 16 and sc.lm.info["init"] == "cold"
    cont = sc(wav, sr, seconds=0.5, seed=0, include_prompt=False, stop_on_eos=False)
    assert cont.ndim == 1 and torch.isfinite(cont).all() and len(cont) > 0
    card = (bundle / "README.md").read_text()
    assert f"{layout} layout" in card and "cold start" in card and "K=16" in card

    # the CLI takes the bundle by --model
    cli = subprocess.run([sys.executable, "-m", "speechkit.cli.main", "resynth", str(sample[0]), "--model", str(bundle),
                          "-o", str(tmp_path / "cli.wav")], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert sf.info(str(tmp_path / "cli.wav")).frames > 0

    # evaluation: originals beside the resynthesis where there are transcripts; agreement with the ASR otherwise
    report = json.loads((out / "eval" / "summary.json").read_text())
    assert report["files"] == 2 and report["transcribed"] == (layout == "librispeech")
    assert ("originals" in report) == (layout == "librispeech")
    assert 0.0 <= report["resynthesis"]["wer"] and -1.0 <= report["resynthesis"]["speaker_sim"] <= 1.0
    assert "| resynthesis |" in (out / "eval" / "summary.md").read_text()


@pytest.mark.slow
def test_own_data_recipe_refuses_bad_input_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_recipe(tmp_path / "empty", tmp_path / "run", "--stop-stage", "prepare")
    assert proc.returncode != 0 and f"{tmp_path / 'empty'}: no audio files" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_recipe(tmp_path / "empty", tmp_path / "run", "--preset", "large")
    assert proc.returncode == 2 and "--preset must be debug, small or base" in proc.stderr
    make_corpus(tmp_path / "ls", "--layout", "librispeech")
    proc = run_recipe(tmp_path / "ls", tmp_path / "run2", "--stop-stage", "hubert", "--encoder", "no-such-encoder")
    assert proc.returncode != 0 and "--encoder 'no-such-encoder' is neither a path nor a model card" in proc.stderr
    assert "Traceback" not in proc.stderr
