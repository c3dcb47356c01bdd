"""The talking-face corpus: visemes, rendered faces and the prepared folder layout."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from speechkit.errors import SpeechkitError
from speechkit.metrics.sync import mouth_opening
from speechkit.synth.talking_face import prepare_talking_face, render_face, viseme_track

needs_mbrola = pytest.mark.skipif(shutil.which("mbrola") is None or shutil.which("espeak-ng") is None,
                                  reason="espeak-ng and mbrola are needed (make install)")


def test_viseme_track_opens_on_vowels_and_closes_on_bilabials():
    phonemes = [("_", 0.0, 0.2), ("m", 0.2, 0.4), ("A", 0.4, 0.8), ("p", 0.8, 1.0), ("_", 1.0, 1.2)]
    track = viseme_track(phonemes, 30, fps=25)
    assert track.shape == (30, 2)
    assert track[15, 0] > 0.9  # t = 0.62 s: inside the open vowel
    assert track[7, 0] < 0.05 and track[22, 0] < 0.05  # inside "m" and "p": lips closed
    assert track[2, 1] == pytest.approx(0.95)  # silence: neutral width


def test_rendered_mouth_gets_darker_as_it_opens():
    box = (0.25, 0.5, 0.75, 0.9)
    for style in ("pale", "dark", "round"):
        frames = np.stack([render_face(style, o, 1.0) for o in (0.0, 0.5, 1.0)])
        assert frames.shape == (3, 128, 128, 3)
        opening = mouth_opening(frames, box)
        assert opening[0] < opening[1] < opening[2], style


@needs_mbrola
def test_prepare_talking_face_layout_and_rerun(tmp_path):
    from speechkit.audio import io as audio_io
    from speechkit.audio import video

    root = prepare_talking_face(tmp_path / "tf", minutes=0.2, speakers=("us1", "us2"))
    rows = [json.loads(line) for name in ("train", "valid", "test")
            for line in (root / f"{name}.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and len((root / "test.jsonl").read_text().splitlines()) == 1
    assert {r["speaker"] for r in rows} == {"us1", "us2"}
    r = rows[0]
    assert "," not in r["text"]  # pauses live in the timing, not in the transcript
    info = video.info(root / r["video"])
    assert info.num_frames == r["num_frames"] and info.fps == 25 and info.has_audio
    assert audio_io.info(root / r["audio"]).num_frames == r["num_frames"] * 640
    assert r["phonemes"][0][0] == "_" and r["phonemes"][-1][2] <= r["num_frames"] / 25 + 1e-6
    # re-running with the same settings returns at once; other settings in the same folder are refused
    stamp = (root / r["video"]).stat().st_mtime_ns
    prepare_talking_face(tmp_path / "tf", minutes=0.2, speakers=("us1", "us2"))
    assert (root / r["video"]).stat().st_mtime_ns == stamp
    with pytest.raises(SpeechkitError, match="other settings"):
        prepare_talking_face(tmp_path / "tf", minutes=0.3, speakers=("us1", "us2"))
