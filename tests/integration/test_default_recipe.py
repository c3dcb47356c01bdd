"""recipes/default/run.sh end to end on CPU with the debug preset: corpus → HuBERT (two iterations) → phone labels →
English read by 16 foreign MBROLA voices → HuBERT on phone targets → k-means per K → units → tokenizer benchmark →
unit-to-mel decoders (on clean units and units of perturbed copies) → Vocos mel vocoder → style classifier → K sweep
table → text LM → TWIST unit LM → bundle, then the bundle loads through the public API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_default_recipe_debug_builds_a_loadable_bundle(tmp_path):
    env = {**os.environ, "SPEECHKIT": f"{sys.executable} -m speechkit.cli.main", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1"}
    cmd = ["bash", str(ROOT / "recipes" / "default" / "run.sh"), "--preset", "debug", "--minutes", "3", "--ks", "8 16",
           "--k", "16", "--exp", str(tmp_path / "exp"), "--data", str(tmp_path / "data"), "--out",
           str(tmp_path / "bundle"), "--sweep-limit", "4", "--jobs", "1", "--robust", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in ("corpus", "hubert", "phones", "voices", "phone_hubert", "kmeans", "units", "probe", "decoder",
                  "melvoc", "style", "sweep", "textlm", "ulm", "bundle"):
        assert f"== {stage}" in proc.stdout
    exp = tmp_path / "exp"
    # the phone-target HuBERT starts from the self-supervised iteration 2 and learns the synthesiser's phones
    assert "warm start of the encoder from" in proc.stderr
    phones = (exp / "phones" / "phones.txt").read_text().split()
    assert phones[0] == "_" and len(phones) > 20
    # ... on the corpus and on English read by MBROLA voices of other languages, labelled in the same phones
    resolved = json.loads((exp / "phone_hubert" / "config.resolved.json").read_text())
    assert resolved["data"]["train"] == str(exp / "voices" / "merged.tsv")
    merged = (exp / "voices" / "merged.tsv").read_text().splitlines()
    corpus_rows = len((exp / "hubert" / "train.tsv").read_text().splitlines()) - 1
    voice_rows = [r for r in merged[1:] if r.startswith("audio/")]
    assert len(merged) - 1 - len(voice_rows) == corpus_rows and len(voice_rows) >= 8
    history = json.loads((exp / "phone_hubert" / "history.json").read_text())
    assert any("valid_acc_unmasked" in h for h in history)
    # the K trade-off: one row per K, scored on the same utterances, with the originals as the reference row
    table = (exp / "k_tradeoff.md").read_text().splitlines()
    rows = [line.split("|")[1].strip() for line in table if line.startswith("| ") and "---" not in line]
    assert rows[1:] == ["8", "16", "originals"]
    numbers = json.loads((exp / "k_tradeoff.json").read_text())
    assert numbers["k8"]["num_files"] == numbers["k16"]["num_files"] == numbers["originals"]["num_files"] == 4
    assert numbers["k8"]["bitrate_nominal"] == pytest.approx(50 * 3)  # 50 Hz x log2(8)
    assert numbers["k16"]["bitrate_nominal"] == pytest.approx(50 * 4)
    # each decoder learned from its clean units and the units of one perturbed copy of every training utterance,
    # paired with the clean audio (--robust 1; off by default)
    for K in (8, 16):
        dec = json.loads((exp / f"k{K}" / "decoder" / "config.resolved.json").read_text())
        assert dec["data"]["units"] == str(exp / f"k{K}" / "units_robust.jsonl")
        clean = [json.loads(line) for line in (exp / f"k{K}" / "units.jsonl").read_text().splitlines()]
        robust = [json.loads(line) for line in (exp / f"k{K}" / "units_robust.jsonl").read_text().splitlines()]
        train_stems = {line.split()[0] for line in (tmp_path / "data" / "splits" / "train.txt").read_text()
                       .splitlines() if line.strip() and not line.startswith("#")}
        train = [r for r in clean if Path(r["audio"]).stem in train_stems]
        assert robust[: len(clean)] == clean and len(robust) == len(clean) + len(train) > len(clean)
        by_id = {r["id"]: r for r in clean}
        for r in robust[len(clean):]:
            base = by_id[r["id"].removesuffix("~p0")]
            assert r["audio"] == base["audio"] and sum(r["duration"]) == sum(base["duration"])
    probe = json.loads((exp / "tokenizer_benchmark.json").read_text())
    assert sorted(r["K"] for r in probe["rows"]) == [8, 16] and all(0 <= r["pnmi"] <= 1 for r in probe["rows"])
    # the unit LM saw the train split only
    train_ids = {json.loads(line)["id"] for line in (exp / "ulm_data" / "train.jsonl").read_text().splitlines()}
    test_stems = {line.split()[0] for line in (tmp_path / "data" / "splits" / "test.txt").read_text().splitlines()
                  if line.strip() and not line.startswith("#")}
    assert train_ids and not {Path(i).name for i in train_ids} & test_stems
    # the bundle: K=16 parts that load together, samples with transcripts, a model card with the licence note
    bundle = tmp_path / "bundle"
    from speechkit import Resynthesizer, SpeechContinuation
    from speechkit.audio import io
    from speechkit.vocoders import UnitMelVocoder, VocosVocoder

    rs = Resynthesizer.from_pretrained(bundle)
    assert rs.encoder.vocab_size == 16 and rs.vocoder.speakers == ["en1", "us1", "us2", "us3"]
    assert isinstance(rs.vocoder, UnitMelVocoder) and rs.vocoder.speaker_table.names == rs.vocoder.speakers
    assert isinstance(rs.vocoder.mel_vocoder, VocosVocoder)   # the melvoc stage's Vocos, not Griffin-Lim
    # ... the phase fine-tune's, which started from the first Vocos run with the phase losses on
    assert (bundle / "vocoder" / "mel_vocoder" / "model.safetensors").read_bytes() == \
        (exp / "vocos_phase" / "model" / "model.safetensors").read_bytes()
    tuned = json.loads((exp / "vocos_phase" / "config.resolved.json").read_text())
    assert tuned["train"]["init"] == str(exp / "vocos" / "model") and tuned["loss"]["phase"] == 30.0
    assert "loss_phase" in (exp / "vocos_phase" / "log.jsonl").read_text()
    samples = sorted((bundle / "samples").glob("*.wav"))
    assert len(samples) == 4 and len((bundle / "samples" / "transcripts.txt").read_text().splitlines()) == 4
    wav, sr = io.load(samples[0])
    out = rs(wav, sr, speaker="us2", style="whisper")
    assert out.ndim == 1 and torch.isfinite(out).all() and len(out) > 0.5 * len(wav)
    sc = SpeechContinuation.from_pretrained(bundle)
    assert sc.lm.num_units == 16
    # the bundled unit LM is the run's best-validation model, not merely its last one
    assert (bundle / "ulm" / "valid_loss.json").read_text() == (exp / "ulm" / "best" / "valid_loss.json").read_text()
    best = exp / "ulm" / "best" / "model.safetensors"
    assert (bundle / "ulm" / "model.safetensors").read_bytes() == best.read_bytes()
    card = (bundle / "README.md").read_text()
    assert "non-commercial" in card and "K=16" in card and "phone labels" in card and "unit-to-mel" in card
    assert not (bundle.parent / "bundle.partial").exists()
    # the demo on that bundle: every output it announces exists, and the figures come from its own files
    from speechkit.cli.main import main

    assert main(["demo", "--model", str(bundle), "-o", str(tmp_path / "demo")]) == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert sorted(p.name for p in (tmp_path / "demo" / "resynthesis").glob("*.wav")) == [p.name for p in samples]
    assert len(list((tmp_path / "demo" / "conversion").glob("*.wav"))) == 4 * 5 == summary["conversions"]
    assert Path(summary["continuation"]).is_file() and Path(summary["report"]).is_file()
    report = json.loads((tmp_path / "demo" / "report" / "report.json").read_text())
    assert summary["resynthesis_wer"] == report["summary"]["wer"] and 0 <= summary["originals_wer"] < 1
    # the continuation: its new part is scored with the bundle's GenPPL text LM, given the prompt's transcript
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.genppl import TextLMScorer

    assert json.loads((bundle / "textlm" / "text_lm.json").read_text())["normalize"] == "asr"
    generated = Path(summary["continuation_generated"])
    assert summary["continuation_asr"] == PocketSphinxASR().transcribe_file(generated)
    prompt_text = (bundle / "samples" / "transcripts.txt").read_text().splitlines()[0].split("\t")[1]
    expect = TextLMScorer.from_pretrained(bundle / "textlm").genppl([summary["continuation_asr"]], [prompt_text])[0]
    if summary["continuation_asr"]:
        assert summary["continuation_genppl"] == pytest.approx(expect, rel=1e-4)
    page = (tmp_path / "demo" / "report" / "report.html").read_text()
    assert "<h2>Continuation" in page and f"continuation_{generated.stem}.hyp.wav" in page
    # the report shows the 20 conversions with players, and the originals' figures beside the resynthesis
    assert "<h2>Conversion grid" in page and page.count('src="../conversion/') == summary["conversions"]
    assert "<h2>Resynthesis beside the originals" in page and "originals (the samples themselves)" in page
    assert summary["continuation_has_speech"] in (0.0, 1.0)


@pytest.mark.slow
def test_default_recipe_phone_tokenizer_skips_the_hubert_stages_and_trains_on_pocketsphinx_phones(tmp_path):
    env = {**os.environ, "SPEECHKIT": f"{sys.executable} -m speechkit.cli.main", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1"}
    exp, data = tmp_path / "exp", tmp_path / "data"
    cmd = ["bash", str(ROOT / "recipes" / "default" / "run.sh"), "--preset", "debug", "--minutes", "2",
           "--tokenizer", "phones", "--stage", "sources", "--stop-stage", "decoder", "--exp", str(exp), "--data",
           str(data), "--jobs", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (exp / "hubert").exists() and not (exp / "phone_hubert").exists()   # nothing of HuBERT trained
    assert proc.stdout.count("== kmeans") == 1
    from speechkit.units import SpeechEncoder
    from speechkit.units.phones import PhoneEncoder

    assert json.loads((exp / "k42" / "encoder" / "encoder.json").read_text())["kind"] == "pocketsphinx-phones"
    assert isinstance(SpeechEncoder.from_pretrained(exp / "k42" / "encoder"), PhoneEncoder)
    rows = [json.loads(line) for line in (exp / "k42" / "units.jsonl").read_text().splitlines()]
    assert rows and all(0 <= u < 42 for r in rows for u in r["units"])
    assert len({u for r in rows for u in r["units"]}) > 20                          # most phones occur
    assert json.loads((exp / "k42" / "decoder" / "config.resolved.json").read_text())["model"]["num_units"] == 42
    probe = json.loads((exp / "tokenizer_benchmark.json").read_text())
    assert [r["K"] for r in probe["rows"]] == [42] and 0 < probe["rows"][0]["pnmi"] <= 1
    bad = subprocess.run(cmd[:2] + ["--tokenizer", "words"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert bad.returncode == 2 and "--tokenizer" in bad.stderr
