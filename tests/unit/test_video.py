"""speechkit.audio.video: frames and audio in and out of mp4, mouth crops, dubbing without re-encoding."""

from __future__ import annotations

import numpy as np
import pytest

from speechkit.audio import io as audio_io
from speechkit.audio import video
from speechkit.errors import SpeechkitError
from tests.conftest import sine


def moving_square(frames: int = 20, h: int = 48, w: int = 64) -> np.ndarray:
    out = np.zeros((frames, h, w, 3), dtype=np.uint8)
    for t in range(frames):
        out[t, 10:30, 2 * t : 2 * t + 16] = (250, 40, 40)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    video.write_video(path, moving_square(), 25, audio=sine(300, 0.8), sample_rate=16000)
    return path


def test_write_then_read_keeps_frames_fps_and_audio(clip):
    v = video.read_video(clip)
    assert v.frames.shape == (20, 48, 64, 3) and v.fps == 25.0
    # H.264 is lossy: the square is still where it was drawn
    assert v.frames[5, 20, 10:26, 0].mean() > 180 and v.frames[5, 20, 40:, 0].mean() < 60
    assert v.sample_rate == 16000 and abs(len(v.audio) / 16000 - 0.8) < 0.1
    assert np.abs(v.audio).max() > 0.3
    i = video.info(clip)
    assert (i.num_frames, i.width, i.height, i.has_audio) == (20, 64, 48, True) and i.duration == pytest.approx(0.8)


def test_replace_audio_copies_every_frame_bit_exact(clip, tmp_path):
    out = video.replace_audio(clip, tmp_path / "dub.mp4", sine(600, 0.8, amplitude=0.2), 16000)
    a, b = video.read_video(clip), video.read_video(out)
    assert b.frames.shape == a.frames.shape and b.fps == a.fps
    assert np.array_equal(a.frames, b.frames)
    spec = np.abs(np.fft.rfft(b.audio[2000:10000]))
    assert abs(np.argmax(spec) * 16000 / 8000 - 600) < 10  # the new track, not the old 300 Hz one


def test_mouth_crops_cut_the_box_and_resize():
    frames = np.zeros((3, 100, 200, 3), dtype=np.uint8)
    frames[:, 50:90, 50:150] = 255  # exactly the default box (0.25..0.75, 0.5..0.9)
    crops = video.mouth_crops(frames, size=16)
    assert crops.shape == (3, 16, 16) and crops.dtype == np.uint8
    assert crops.min() > 240
    with pytest.raises(ValueError, match="box must be"):
        video.mouth_crops(frames, box=(0.5, 0.5, 0.4, 0.9))


def test_errors_name_the_file_and_the_rule(tmp_path):
    with pytest.raises(video.VideoError, match="no such file"):
        video.info(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    with pytest.raises(video.VideoError, match="junk.mp4: not a readable video"):
        video.read_video(junk)
    wav = tmp_path / "speech.wav"
    audio_io.save(wav, sine(), 16000)
    with pytest.raises(video.VideoError, match="speech.wav: has no video stream"):
        video.read_video(wav)
    assert issubclass(video.VideoError, SpeechkitError)


def test_zero_frame_video_is_rejected(tmp_path):
    import av

    empty = tmp_path / "empty.avi"  # a video stream without a single frame (AVI keeps the stream header)
    with av.open(str(empty), mode="w", format="avi") as out:
        s = out.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        out.start_encoding()
    with pytest.raises(video.VideoError, match="empty.avi: has zero video frames"):
        video.info(empty)
    with pytest.raises(video.VideoError, match="zero video frames"):
        video.replace_audio(empty, tmp_path / "o.mp4", sine(), 16000)
    assert not (tmp_path / "o.mp4").exists()
