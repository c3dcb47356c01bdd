"""speechkit.metrics.sync: offsets, DTW boundary errors and activity agreement on signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from speechkit.metrics import sync


def bursts(onsets: list[float], seconds: float = 3.0, sr: int = 16000, dur: float = 0.15) -> np.ndarray:
    rng = np.random.default_rng(0)
    wav = np.zeros(int(seconds * sr), dtype=np.float32)
    for i, t in enumerate(onsets):
        n = int(dur * sr)
        tone = np.sin(2 * np.pi * (200 + 150 * i) * np.arange(n) / sr) + 0.1 * rng.standard_normal(n)
        wav[int(t * sr) : int(t * sr) + n] = 0.5 * tone
    return wav


ONSETS = [0.3, 0.7, 1.2, 1.5, 2.1, 2.5]


def test_av_offset_recovers_a_known_lag():
    fps, n = 25, 75
    opening = np.zeros(n)
    for t in ONSETS:
        opening[int(t * fps) : int((t + 0.15) * fps)] = 1.0
    for shift in (0.0, 0.12, -0.2):
        env = sync.audio_envelope(bursts([t + shift for t in ONSETS]), 16000, fps, n)
        assert sync.av_offset(opening, env, fps) == pytest.approx(shift, abs=0.025)


def test_dtw_boundary_error_is_zero_for_the_reference_and_grows_with_misplacement():
    ref = bursts(ONSETS)
    boundaries = [t for o in ONSETS for t in (o, o + 0.15)]
    assert sync.dtw_boundary_error(ref, ref, 16000, boundaries) < 0.005
    moved = bursts([0.3, 0.9, 1.3, 1.5, 1.9, 2.6])
    assert sync.dtw_boundary_error(ref, moved, 16000, boundaries) > 0.05


def test_activity_agreement_and_speaking_frames():
    phonemes = [["_", 0.0, 0.3], ["A", 0.3, 0.6], ["_", 0.6, 1.0]]
    speaking = sync.speaking_frames(phonemes, 25, 25)
    assert speaking.sum() == 8 and speaking[7] and not speaking[15]
    env = np.where(speaking, -10.0, -60.0)
    assert sync.activity_agreement(env, speaking) == 1.0
    assert sync.activity_agreement(np.full(25, -10.0), speaking) == pytest.approx(8 / 25)


def test_sync_metrics_reference_scores_perfectly():
    from speechkit.synth.talking_face import render_face, viseme_track

    phonemes = [["_", 0.0, 0.3], ["A", 0.3, 0.45], ["_", 0.45, 0.7], ["A", 0.7, 0.85], ["_", 0.85, 1.2],
                ["A", 1.2, 1.35], ["_", 1.35, 2.0]]
    track = viseme_track([tuple(p) for p in phonemes], 50)
    frames = np.stack([render_face("pale", o, w) for o, w in track])
    ref = bursts([0.3, 0.7, 1.2], seconds=2.0)
    m = sync.sync_metrics(frames, 25, ref, 16000, phonemes, ref, (0.25, 0.5, 0.75, 0.9))
    assert m["offset_ms"] < 20 and m["boundary_ms"] < 5 and m["activity"] > 0.9 and m["length_ms"] == 0
    late = np.concatenate([np.zeros(3200, np.float32), ref])  # 200 ms late and 200 ms too long
    m = sync.sync_metrics(frames, 25, late, 16000, phonemes, ref, (0.25, 0.5, 0.75, 0.9))
    assert m["offset_ms"] == pytest.approx(200, abs=30) and m["length_ms"] == pytest.approx(200)
    assert m["boundary_ms"] > 100


def _tiny_corpus_and_model(tmp_path):
    """A 12-second two-voice talking-face corpus and an untrained tiny VDTTS saved at ``tmp_path / "m"``."""
    import torch

    from speechkit.synth.talking_face import prepare_talking_face
    from speechkit.vdtts.factory import build_vdtts
    from speechkit.vdtts.inference import save_model
    from tests.unit.test_vdtts import tiny_config

    corpus = prepare_talking_face(tmp_path / "tf", minutes=0.2, speakers=("us1", "us2"))
    torch.manual_seed(0)
    save_model(tmp_path / "m", build_vdtts(tiny_config()), tiny_config())
    return corpus


@pytest.mark.skipif(__import__("shutil").which("mbrola") is None, reason="mbrola is needed (make install)")
def test_run_benchmark_table_and_json(tmp_path):
    import json

    from speechkit.cli.vdtts import mbrola_baseline

    corpus = _tiny_corpus_and_model(tmp_path)
    table = sync.run_benchmark(corpus, {"tiny": tmp_path / "m"}, split="train", limit=2, asr=True,
                               baselines={"MBROLA TTS (text only)": mbrola_baseline}, output=tmp_path / "sync.md")
    lines = table.splitlines()
    assert lines[0].startswith("| system (2 train videos) |") and lines[0].endswith("| ASR WER ↓ |")
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["reference (corpus speech)", "tiny",
                                                                  "MBROLA TTS (text only)"]
    means = json.loads((tmp_path / "sync.json").read_text())["means"]
    ref, tts = means["reference (corpus speech)"], means["MBROLA TTS (text only)"]
    assert ref["boundary_ms"] < 5 and ref["length_ms"] == 0 and ref["wer"] < 0.8
    assert means["tiny"]["length_ms"] < 1 and tts["length_ms"] > 50  # plain TTS picks its own length
    assert (tmp_path / "sync.md").read_text().strip() == table


def test_synthesize_frames_speaks_one_prediction_through_each_vocoder(tmp_path):
    import torch

    from speechkit.vdtts.factory import build_vdtts
    from speechkit.vdtts.inference import VDTTS
    from speechkit.vdtts.vocoding import load_vocoder, vocode
    from tests.unit.test_vdtts import save_mel_hifigan, tiny_config

    torch.manual_seed(0)
    cfg = tiny_config()
    tts = VDTTS(build_vdtts(cfg), cfg)
    hifi = load_vocoder(cfg, "hifigan", save_mel_hifigan(tmp_path / "hifi"))
    frames = np.random.default_rng(0).integers(0, 255, (30, 64, 64, 3), dtype=np.uint8)
    out = tts.synthesize_frames(frames, 25.0, "Good morning.", "us2", vocoders={"hifi": hifi})
    assert list(out) == ["hifi"] and out["hifi"].shape == (int(30 / 25 * 16000),)
    from speechkit.audio.video import mouth_crops
    from speechkit.vdtts.inference import resample_frames

    crops = mouth_crops(frames[resample_frames(30, 25.0, cfg.fps)], tuple(cfg.mouth_box), cfg.crop_size)
    direct = vocode(hifi, tts.mel(crops, "Good morning.", "us2"), len(out["hifi"]))
    np.testing.assert_allclose(out["hifi"], direct, atol=1e-6)
    assert np.abs(direct).max() > 0  # a random generator still makes sound; the test would notice zeros


@pytest.mark.skipif(__import__("shutil").which("mbrola") is None, reason="mbrola is needed (make install)")
def test_run_benchmark_vocoder_rows_and_copy_synthesis(tmp_path):
    import json

    from tests.unit.test_vdtts import save_mel_hifigan

    corpus = _tiny_corpus_and_model(tmp_path)
    table = sync.run_benchmark(corpus, {"tiny": tmp_path / "m"}, split="train", limit=2,
                               vocoders={"hifi": save_mel_hifigan(tmp_path / "hifi")}, copy_synthesis=True,
                               output=tmp_path / "sync.md")
    names = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert names == ["reference (corpus speech)", "tiny", "tiny + hifi", "reference mel + Griffin-Lim",
                     "reference mel + hifi"]
    saved = json.loads((tmp_path / "sync.json").read_text())
    means = saved["means"]
    assert saved["vocoders"] == {"hifi": str(tmp_path / "hifi")}
    # Griffin-Lim on the reference's own mel keeps its timing: boundaries within a frame or two, same length,
    # where the untrained model's speech does not follow the phonemes at all
    copy = means["reference mel + Griffin-Lim"]
    assert copy["length_ms"] == 0 and copy["boundary_ms"] < 25 < means["tiny"]["boundary_ms"]
    assert abs(copy["activity"] - means["reference (corpus speech)"]["activity"]) < 0.1
    assert means["tiny + hifi"]["length_ms"] == means["tiny"]["length_ms"] == 0


@pytest.mark.skipif(__import__("shutil").which("mbrola") is None, reason="mbrola is needed (make install)")
def test_run_benchmark_true_alignment_row_speaks_the_corpus_timings(tmp_path, monkeypatch):
    from speechkit.vdtts.inference import VDTTS
    from speechkit.vdtts.manifest import alignment_targets, read_manifest
    from speechkit.vdtts.text import phonemize

    corpus = _tiny_corpus_and_model(tmp_path)
    given = []
    real_mel = VDTTS.mel

    def spy(self, crops, text, speaker=None, alignment=None):
        given.append(None if alignment is None else np.asarray(alignment))
        return real_mel(self, crops, text, speaker, alignment)

    monkeypatch.setattr(VDTTS, "mel", spy)
    table = sync.run_benchmark(corpus, {"tiny": tmp_path / "m"}, split="train", limit=1, true_alignment=True)
    names = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert names == ["reference (corpus speech)", "tiny", "tiny, true alignment"]
    row = read_manifest(corpus / "train.jsonl")[0]
    assert given[0] is None  # the model's own row: its aligner's path
    expected = alignment_targets(row["phonemes"], phonemize(row["text"]), row["num_frames"] * 4, 160, 16000)
    assert np.array_equal(given[1], expected) and set(np.unique(expected)) >= {0, 1}
