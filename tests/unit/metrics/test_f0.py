"""F0 metrics: hand-computed GPE/VDE/FFE, YIN against a plain per-frame implementation, real speech shifted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speechkit.audio import io
from speechkit.data.corpora import expresso
from speechkit.metrics.f0 import F0Track, PitchConfig, compare_f0, f0_errors, track_pitch, yin


def test_errors_on_hand_made_tracks():
    t = np.arange(8) * 0.01
    ref = F0Track(t, np.array([0, 100, 100, 100, 200, 0, 150, 0], float))
    hyp = F0Track(t, np.array([0, 100, 130, 0, 200, 120, 150, 0], float))
    e = f0_errors(ref, hyp)
    # voiced in both: frames 1, 2, 4, 6; frame 2 is off by 30% -> 1 gross error out of 4
    assert e["gpe"] == pytest.approx(0.25)
    # voicing differs at frames 3 and 5, out of 8 reference frames
    assert e["vde"] == pytest.approx(0.25)
    assert e["ffe"] == pytest.approx(3 / 8)
    assert e["f0_rmse"] == pytest.approx(15.0)  # sqrt((0 + 30^2 + 0 + 0) / 4)
    # Pearson of (100, 100, 200, 150) and (100, 130, 200, 150): 5750 / sqrt(6875 * 5300)
    assert e["f0_corr"] == pytest.approx(5750 / math.sqrt(6875 * 5300))
    assert f0_errors(ref, ref) == {"gpe": 0.0, "vde": 0.0, "ffe": 0.0, "f0_rmse": 0.0,
                                   "f0_corr": pytest.approx(1.0)}


def test_hypothesis_is_read_at_the_reference_times():
    ref = F0Track(np.array([0.0, 0.01, 0.02, 0.03, 0.05]), np.array([100.0, 100, 100, 100, 100]))
    hyp = F0Track(np.array([0.0, 0.02, 0.04]), np.array([100.0, 150, 100]))
    # nearest hypothesis frame: 0.01 is a tie -> the earlier (100), 0.03 -> tie -> 0.02 (150), 0.05 is past the end
    e = f0_errors(ref, hyp)
    assert e["vde"] == pytest.approx(1 / 5)
    assert e["gpe"] == pytest.approx(2 / 4)  # frames 0.02 and 0.03 read 150 Hz
    empty = f0_errors(F0Track(np.zeros(0), np.zeros(0)), hyp)
    assert all(math.isnan(v) for v in empty.values())
    unvoiced = f0_errors(F0Track(ref.times, np.zeros(5)), hyp)
    assert math.isnan(unvoiced["gpe"]) and unvoiced["vde"] == pytest.approx(4 / 5)  # hyp reads 100,100,150,150,0


def _yin_by_the_book(x, sr, w=512, hop=256, fmin=100, fmax=500, th=0.1):
    """Independent, slow YIN: explicit sums per lag, the same frame and threshold conventions."""
    tau_min, tau_max = int(sr / fmax), int(sr / fmin)
    out = []
    for start in range(0, len(x) - w, hop):
        f = x[start : start + w].astype(np.float64)
        d = np.array([np.sum((f[: w - tau] - f[tau:]) ** 2) for tau in range(tau_max)])
        cm = np.ones(tau_max)
        running = 0.0
        for tau in range(1, tau_max):
            running += d[tau]
            cm[tau] = d[tau] * tau / running if running > 0 else np.inf
        pitch = 0.0
        for tau in range(tau_min, tau_max):
            if cm[tau] < th:
                while tau + 1 < tau_max and cm[tau + 1] < cm[tau]:
                    tau += 1
                pitch = sr / tau
                break
        out.append(pitch)
    return np.array(out)


def test_yin_matches_a_plain_implementation():
    sr = 16000
    rng = np.random.default_rng(0)
    t = np.arange(int(0.8 * sr)) / sr
    f0 = 140 + 60 * np.sin(2 * np.pi * 1.5 * t)
    voiced = np.sin(2 * np.pi * np.cumsum(f0) / sr) + 0.4 * np.sin(4 * np.pi * np.cumsum(f0) / sr)
    x = np.concatenate([voiced * (t < 0.5), 0.3 * rng.standard_normal(3000), np.zeros(2000)]).astype(np.float32)
    ours = yin(x, sr)
    ref = _yin_by_the_book(x, sr)
    assert len(ours.f0) == len(ref) and np.allclose(ours.f0, ref)
    assert ours.times[1] == pytest.approx(256 / sr)
    assert (ours.f0 > 0).sum() > 10 and (ours.f0 == 0).sum() > 10  # both voiced and unvoiced frames occur
    sine = yin(np.sin(2 * np.pi * 200 * np.arange(sr) / sr), sr).f0
    assert np.all(sine == 200.0)


@pytest.fixture(scope="module")
def speech(mini_expresso):
    stem = next(e.stem for e in expresso.read_splits(mini_expresso)["test"] if e.stem.startswith("us1_default"))
    return io.load(expresso.audio_path(mini_expresso, stem), sample_rate=16000)[0].numpy()


@pytest.mark.parametrize("method", ["yin", "pyin"])
def test_identical_speech_scores_zero_and_shifted_speech_scores_high(speech, method):
    import librosa

    cfg = PitchConfig(method=method)
    same = compare_f0(speech, 16000, speech, 16000, cfg)
    assert same["gpe"] == same["vde"] == same["ffe"] == 0.0 and same["f0_corr"] == pytest.approx(1.0)
    # the same audio at 48 kHz gives the same track (resampled at the boundary)
    at48 = compare_f0(speech, 16000, io.resample(__import__("torch").from_numpy(speech), 16000, 48000), 48000, cfg)
    assert at48["ffe"] < 0.05
    shifted = librosa.effects.pitch_shift(speech, sr=16000, n_steps=5)  # x1.33: beyond the 20% tolerance
    e = compare_f0(speech, 16000, shifted, 16000, cfg)
    assert e["gpe"] > 0.7 and e["ffe"] > 0.5 and e["f0_rmse"] > 40


@pytest.mark.slow
def test_crepe_tracker(speech):
    track = track_pitch(speech, 16000, PitchConfig(method="crepe", hop_length=160))
    reference = track_pitch(speech, 16000, PitchConfig(method="pyin", hop_length=160))
    e = f0_errors(reference, track)
    assert e["gpe"] < 0.1 and e["vde"] < 0.35


def test_bad_pitch_settings():
    with pytest.raises(ValueError, match="method must be"):
        PitchConfig(method="swipe").validate()
    with pytest.raises(ValueError, match="fmin < fmax"):
        PitchConfig(fmin=300, fmax=200).validate()


def test_low_voices_are_tracked_by_default_and_the_fairseq_protocol_stays_selectable(tmp_path):
    """A 70 Hz voice (a low male voice) is voiced for the default "wide" protocol (YIN from 50 Hz) and unvoiced for
    fairseq's 100-500 Hz; the report carries each side's voiced share so a reader sees which happened."""
    from speechkit.metrics.folder import FolderEvalConfig, evaluate_folder

    t = np.arange(16000) / 16000
    voice = (0.4 * np.sign(np.sin(2 * np.pi * 70 * t)) * np.exp(-((t % (1 / 70)) * 300))).astype(np.float32)
    for side in ("ref", "hyp"):
        io.save(tmp_path / side / "a.wav", voice, 16000)
    wide = evaluate_folder(tmp_path / "hyp", ref_dir=tmp_path / "ref", config=FolderEvalConfig(metrics=("f0",)))
    assert FolderEvalConfig().pitch.fmin == 50.0
    assert wide["summary"]["voiced_ref"] > 0.8 and wide["summary"]["gpe"] < 0.05
    fairseq = evaluate_folder(tmp_path / "hyp", ref_dir=tmp_path / "ref",
                              config=FolderEvalConfig(metrics=("f0",), pitch=PitchConfig.protocol("fairseq")))
    assert fairseq["summary"]["voiced_ref"] < 0.2
    assert PitchConfig.protocol("fairseq").fmin == 100.0 and PitchConfig.protocol("wide", fmin=60).fmin == 60
    with pytest.raises(ValueError, match="pitch protocol must be one of"):
        PitchConfig.protocol("nope")
