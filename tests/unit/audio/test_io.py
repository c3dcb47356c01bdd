import numpy as np
import pytest
import soundfile as sf
import torch

from speechkit.audio import io
from speechkit.audio.io import AudioError
from tests.conftest import sine


def dominant_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


def test_save_load_roundtrip_pcm16(tmp_path):
    x = sine(440, 0.5)
    path = io.save(tmp_path / "a.wav", x, 16000)
    wav, sr = io.load(path)
    assert sr == 16000 and wav.dtype == torch.float32 and wav.shape == (8000,)
    assert np.max(np.abs(wav.numpy() - x)) < 1e-4  # 16-bit quantisation
    meta = io.info(path)
    assert (meta.sample_rate, meta.num_frames, meta.num_channels, meta.subtype) == (16000, 8000, 1, "PCM_16")
    assert meta.duration == pytest.approx(0.5)


def test_save_leaves_no_temporary_files(tmp_path):
    io.save(tmp_path / "a.flac", sine(), 16000)
    assert [p.name for p in tmp_path.iterdir()] == ["a.flac"]


def test_resampling_keeps_pitch_and_length(tmp_path):
    io.save(tmp_path / "a.wav", sine(1000, 1.0, 48000), 48000, subtype="PCM_24")
    wav, sr = io.load(tmp_path / "a.wav", sample_rate=16000)
    assert sr == 16000 and wav.shape == (16000,)
    assert abs(dominant_freq(wav.numpy(), 16000) - 1000) < 2


def test_stereo_mixdown_channel_selection_and_all_channels(tmp_path):
    left, right = sine(300, 0.25), sine(700, 0.25, amplitude=0.25)
    io.save(tmp_path / "s.wav", np.stack([left, right]), 16000, subtype="FLOAT")
    mono, _ = io.load(tmp_path / "s.wav")
    np.testing.assert_allclose(mono.numpy(), (left + right) / 2, atol=1e-6)
    ch1, _ = io.load(tmp_path / "s.wav", channel=1)
    np.testing.assert_allclose(ch1.numpy(), right, atol=1e-6)
    both, _ = io.load(tmp_path / "s.wav", mono=False)
    assert both.shape == (2, 4000)
    with pytest.raises(AudioError, match=r"s\.wav: has 2 channel\(s\) \(0\.\.1\); channel 2 requested"):
        io.load(tmp_path / "s.wav", channel=2)


def test_segment_reading(tmp_path):
    x = np.arange(16000, dtype=np.float32) / 16000
    io.save(tmp_path / "r.wav", x, 16000, subtype="FLOAT")
    seg, _ = io.load(tmp_path / "r.wav", frame_offset=100, num_frames=50)
    np.testing.assert_allclose(seg.numpy(), x[100:150])
    with pytest.raises(AudioError, match="no samples from frame 20000"):
        io.load(tmp_path / "r.wav", frame_offset=20000)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: no such file"):
        io.load(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a directory"):
        io.load(tmp_path)


@pytest.mark.parametrize("payload", [b"", b"this is plain text, not audio\n" * 20, b"RIFF\x00\x01\x02garbage" * 10])
def test_not_audio_or_corrupt(tmp_path, payload):
    path = tmp_path / "bad.wav"
    path.write_bytes(payload)
    with pytest.raises(AudioError, match=r"bad\.wav: not a readable audio file or corrupt"):
        io.load(path)
    with pytest.raises(AudioError, match="not a readable audio file"):
        io.info(path)


def test_truncated_wav_is_reported_not_crashing(tmp_path):
    path = io.save(tmp_path / "t.wav", sine(seconds=1.0), 16000)
    data = path.read_bytes()
    path.write_bytes(data[:40])  # header cut inside the fmt/data chunks
    with pytest.raises(AudioError, match=r"t\.wav"):
        io.load(path)


def test_zero_samples(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0,), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: has zero samples"):
        io.load(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    x = sine(seconds=0.1)
    x[10] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")  # written behind io.save's back: io.save refuses NaN
    with pytest.raises(AudioError, match=r"nan\.wav: contains 1 NaN or infinite samples"):
        io.load(path)


def test_save_refuses_bad_audio(tmp_path):
    x = sine(seconds=0.1)
    x[3] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        io.save(tmp_path / "x.wav", x, 16000)
    with pytest.raises(AudioError, match="zero samples"):
        io.save(tmp_path / "x.wav", np.zeros(0), 16000)
    with pytest.raises(AudioError, match="shape"):
        io.save(tmp_path / "x.wav", np.zeros((1, 2, 3)), 16000)
    with pytest.raises(AudioError, match="unknown audio extension"):
        io.save(tmp_path / "x.xyz", sine(), 16000)
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        io.save(tmp_path / "x.wav", sine(), 0)
    assert not any(tmp_path.iterdir())


def test_audio_error_is_a_value_error_with_path_and_problem(tmp_path):
    with pytest.raises(ValueError) as e:
        io.load(tmp_path / "missing.flac")
    assert e.value.path.endswith("missing.flac") and e.value.problem == "no such file"


def test_resample_rejects_bad_rates():
    with pytest.raises(ValueError, match="orig_sample_rate must be a positive integer. Found -1"):
        io.resample(torch.zeros(10), -1, 16000)
