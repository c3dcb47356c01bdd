"""`speechkit eval folder` and `speechkit eval resynthesis` end to end on the mini-Expresso, with figures checked
against independent computations, and the HTML report rendered in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import unicodedata

import numpy as np
import pytest
import torch

from speechkit.audio import io
from speechkit.cli.main import main
from speechkit.data.corpora import expresso
from speechkit.metrics.report import decode_png


@pytest.fixture(scope="module")
def test_read(mini_expresso):
    texts = expresso.read_transcriptions(mini_expresso)
    stems = [e.stem for e in expresso.read_splits(mini_expresso)["test"] if e.stem in texts]
    return stems, texts


@pytest.fixture(scope="module")
def folders(mini_expresso, test_read, tmp_path_factory):
    """hyp: the test read files, half at 16 kHz, half at 48 kHz; ref: the originals; a transcripts file."""
    stems, texts = test_read
    root = tmp_path_factory.mktemp("evalfolder")
    for stem in stems:
        wav, sr = io.load(expresso.audio_path(mini_expresso, stem))
        io.save(root / "ref" / f"{stem}.wav", wav, sr)
        rate = 16000 if len(list((root / "hyp").glob("*"))) % 2 else sr
        io.save(root / "hyp" / f"{stem}.flac", io.resample(wav, sr, rate), rate)
    (root / "texts.tsv").write_text("".join(f"{s}\t{texts[s]}\n" for s in stems))
    return root


def _independent_wer(paths, refs) -> float:
    """pocketsphinx's Decoder and jiwer used directly (librosa resampling, lower case, punctuation removed)."""
    import jiwer
    import librosa
    from pocketsphinx import Decoder

    hyps = []
    for p in paths:  # a fresh decoder per file: no feature state carried over from other files
        dec = Decoder(samprate=16000, loglevel="FATAL")
        x, _ = librosa.load(p, sr=16000)
        dec.start_utt()
        dec.process_raw((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
        dec.end_utt()
        hyps.append(dec.hyp().hypstr if dec.hyp() else "")

    def norm(t: str) -> str:
        t = unicodedata.normalize("NFKC", t).lower()
        return " ".join(re.sub(r"[^\w' ]|_", " ", t).split())

    return jiwer.wer([norm(r) for r in refs], [norm(h) for h in hyps])


@pytest.mark.slow
def test_eval_folder_wer_matches_an_independent_figure(folders, test_read, capsys):
    stems, texts = test_read
    out = folders / "report_wer"
    assert main(["eval", "folder", "--hyp", str(folders / "hyp"), "--transcripts", str(folders / "texts.tsv"),
                 "--metrics", "wer,cer", "--jobs", "2", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    expected = _independent_wer([folders / "hyp" / f"{s}.flac" for s in sorted(stems)],
                                [texts[s] for s in sorted(stems)])
    assert report["summary"]["wer"] == pytest.approx(expected, abs=0.02)  # librosa vs torchaudio resampling
    assert report["summary"]["num_files"] == len(stems) and 0 < report["summary"]["cer"] < report["summary"]["wer"]
    assert [r["id"] for r in report["per_file"]] == sorted(stems)
    assert (out / "report.csv").read_text().splitlines()[0].startswith("id,")
    assert "wer" in capsys.readouterr().out


@pytest.mark.slow
def test_eval_folder_f0_zero_for_identical_and_high_for_shifted(mini_expresso, tmp_path):
    import librosa

    stems = [s for s in expresso.read_transcriptions(mini_expresso) if s.startswith("us1_default")][:2]
    for stem in stems:
        wav, sr = io.load(expresso.audio_path(mini_expresso, stem), sample_rate=16000)
        io.save(tmp_path / "ref" / f"{stem}.wav", wav, sr)
        io.save(tmp_path / "same" / f"{stem}.wav", io.resample(wav, 16000, 22050), 22050)
        io.save(tmp_path / "up" / f"{stem}.wav", librosa.effects.pitch_shift(wav.numpy(), sr=sr, n_steps=5), sr)
    summaries = {}
    for name in ("same", "up"):
        assert main(["eval", "folder", "--hyp", str(tmp_path / name), "--ref", str(tmp_path / "ref"), "--metrics",
                     "f0,speaker", "-o", str(tmp_path / f"r_{name}")]) == 0
        summaries[name] = json.loads((tmp_path / f"r_{name}" / "report.json").read_text())["summary"]
    assert summaries["same"]["gpe"] < 0.02 and summaries["same"]["ffe"] < 0.05
    assert summaries["up"]["gpe"] > 0.7 and summaries["up"]["ffe"] > 0.5
    assert summaries["same"]["speaker_sim"] > summaries["up"]["speaker_sim"]


def test_eval_folder_bad_inputs(tmp_path, capsys):
    def run(*args) -> str:
        assert main(["eval", "folder", *args, "-o", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("speechkit: error:")
        return err

    (tmp_path / "empty").mkdir()
    assert "no audio files" in run("--hyp", str(tmp_path / "empty"), "--transcripts", "x")
    io.save(tmp_path / "hyp" / "a.wav", torch.randn(8000) * 0.1, 16000)
    io.save(tmp_path / "hyp" / "b.wav", torch.randn(8000) * 0.1, 16000)
    io.save(tmp_path / "ref" / "a.wav", torch.randn(8000) * 0.1, 16000)
    assert "1 hypothesis file(s) have no match in --ref" in run("--hyp", str(tmp_path / "hyp"), "--ref",
                                                                str(tmp_path / "ref"), "--metrics", "f0")
    (tmp_path / "t.tsv").write_text("a\thello\n")
    assert "no match in --transcripts" in run("--hyp", str(tmp_path / "hyp"), "--transcripts", str(tmp_path / "t.tsv"))
    assert "give --ref DIR" in run("--hyp", str(tmp_path / "hyp"), "--metrics", "f0")
    assert "metrics must be" in run("--hyp", str(tmp_path / "hyp"), "--metrics", "bleu")
    (tmp_path / "hyp" / "b.wav").write_bytes(b"not audio at all")
    io.save(tmp_path / "ref" / "b.wav", torch.randn(8000) * 0.1, 16000)
    assert "unreadable" in run("--hyp", str(tmp_path / "hyp"), "--ref", str(tmp_path / "ref"), "--metrics", "f0")


def _chromium(*args: str, tmp) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is required for the report test: run `make install` (data_prep/system_deps.sh)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp}"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(folders, tmp_path):
    out = tmp_path / "report"
    assert main(["eval", "folder", "--hyp", str(folders / "hyp"), "--ref", str(folders / "ref"), "--transcripts",
                 str(folders / "texts.tsv"), "--metrics", "wer,f0", "-o", str(out)]) == 0
    page = (out / "report.html").as_uri()
    shot = tmp_path / "shot.png"
    _chromium("--window-size=1280,1000", f"--screenshot={shot}", page, tmp=tmp_path / "profile1")
    pixels = decode_png(shot.read_bytes())[..., :3].astype(int)
    assert pixels.shape[:2] == (1000, 1280)
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert pixels.std() > 20 and colours > 200, (pixels.std(), colours)  # text, tables, spectrograms: not blank
    dom = _chromium("--dump-dom", page, tmp=tmp_path / "profile2").stdout
    n = len(json.loads((out / "report.json").read_text())["per_file"])
    assert dom.count("<audio") == 2 * n and dom.count('class="spec"') == 2 * n
    assert dom.count("<svg") >= n // 2 and dom.count("<svg") + dom.count("no voiced frames") == n  # F0 contours
    for src in re.findall(r'<audio[^>]*src="([^"]+)"', dom):
        assert (out / src).is_file() and io.info(out / src).sample_rate == 16000


@pytest.mark.slow
def test_eval_resynthesis_end_to_end(mini_expresso, tmp_path):
    from tests.unit.test_pipeline import K, tiny_encoder, tiny_vocoder

    tiny_encoder().save_pretrained(tmp_path / "enc")
    tiny_vocoder().save_pretrained(tmp_path / "voc")
    out = tmp_path / "bench"
    assert main(["eval", "resynthesis", "--data", str(mini_expresso), "--split", "test", "--encoder",
                 str(tmp_path / "enc"), "--vocoder", str(tmp_path / "voc"), "--target-speaker", "b", "--limit", "6",
                 "--metrics", "wer,f0,speaker", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    s = report["summary"]
    assert s["num_files"] == 6 and 0 <= s["wer"] and s["ffe"] is not None
    assert s["bitrate_nominal"] == pytest.approx(50 * np.log2(K))
    assert 0 < s["bitrate_entropy_dedup"] < s["bitrate_entropy"] <= s["bitrate_nominal"] + 1e-9
    assert {r["condition"] for r in report["per_file"]} == {"same", "converted"}
    same = [r for r in report["per_file"] if r["condition"] == "same"]
    assert all((out / "audio" / "same" / f"{r['id']}.wav").is_file() for r in same)
    assert {g["group"] for g in report["groups"]["By speaker (same voice)"]} == {r["speaker"] for r in same}
    assert "summary_converted" in report and (out / "report.html").is_file() and (out / "segments").is_dir()
    assert all(r["vocoder_speaker"] == "b" for r in report["per_file"] if r["condition"] == "converted")
    media = [v for r in report["per_file"] for k, v in r.get("media", {}).items() if k != "f0"]
    assert len(media) >= 4 * 6 and all((out / m).is_file() for m in media)  # the page's relative links resolve
