"""`speechkit vdtts`, `speechkit vdtts-sync` and `speechkit prepare talking-face` on the command line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechkit.audio import io as audio_io
from speechkit.audio import video
from speechkit.cli.main import main
from speechkit.vdtts.factory import build_vdtts
from speechkit.vdtts.inference import save_model
from tests.unit.test_vdtts import needs_espeak, tiny_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from speechkit.synth.talking_face import render_face

    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    cfg = tiny_config()
    save_model(d / "model", build_vdtts(cfg), cfg)
    frames = np.stack([render_face("pale", abs(np.sin(i / 4)), 1.0) for i in range(30)])
    video.write_video(d / "face.mp4", frames, 25, audio=np.zeros(19200, np.float32), sample_rate=16000)
    return d


def test_help_lists_examples(capsys):
    for argv in (["vdtts", "--help"], ["vdtts-sync", "--help"], ["prepare", "talking-face", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "speechkit vdtts face.mp4 --text" in out and "speechkit prepare talking-face data/talking_face" in out


@needs_espeak
def test_dub_writes_every_frame_with_speech(setup, capsys):
    out = setup / "dubbed.mp4"
    rc = main(["vdtts", str(setup / "face.mp4"), "--text", "Good morning.", "-o", str(out), "--speaker", "us2",
               "--model", str(setup / "model")])
    assert rc == 0 and f"wrote {out}" in capsys.readouterr().out
    v = video.read_video(out)
    assert len(v.frames) == 30 and abs(len(v.audio) / v.sample_rate - 1.2) < 0.1
    assert np.abs(v.audio).max() > 0.1


def test_bad_inputs_exit_1_with_one_line(setup, capsys, tmp_path):
    model = ["--model", str(setup / "model")]
    assert main(["vdtts", str(setup / "face.mp4"), "--text", " ", "-o", str(tmp_path / "o.mp4"), *model]) == 1
    assert capsys.readouterr().err.strip() == "speechkit: error: --text must not be empty"
    wav = tmp_path / "voice.wav"
    audio_io.save(wav, np.zeros(1600, np.float32), 16000)
    assert main(["vdtts", str(wav), "--text", "Hello.", "-o", str(tmp_path / "o.mp4"), *model]) == 1
    err = capsys.readouterr().err
    assert "voice.wav: has no video stream" in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["vdtts", str(setup / "face.mp4"), "--text", "Hi.", "-o", str(tmp_path / "o.mp4"),
                 "--model", str(tmp_path)]) == 1
    assert "missing model.safetensors" in capsys.readouterr().err
    assert main(["vdtts-sync", str(tmp_path), "--model", "novalue"]) == 1
    assert "--model must be NAME=DIR" in capsys.readouterr().err
    assert main(["vdtts-sync", str(tmp_path), "--model", f"m={setup / 'model'}", "--vocoder", "hifigan"]) == 1
    assert "--vocoder must be NAME=DIR. Found 'hifigan'" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


@needs_espeak
def test_shipped_model_dubs_a_new_face_by_default(tmp_path, capsys):
    from speechkit.synth.talking_face import render_face, viseme_track
    from speechkit.vdtts.inference import default_model_dir

    assert (default_model_dir() / "model.safetensors").is_file()
    phonemes = [("_", 0.0, 0.3), ("h", 0.3, 0.4), ("@", 0.4, 0.5), ("l", 0.5, 0.6), ("@U", 0.6, 0.9), ("_", 0.9, 1.3),
                ("w", 1.3, 1.4), ("r=", 1.4, 1.6), ("l", 1.6, 1.7), ("d", 1.7, 1.8), ("_", 1.8, 2.2)]
    track = viseme_track(phonemes, 55, fps=25)
    frames = np.stack([render_face("dark", o, w, offset=(2, -1), size=96) for o, w in track])  # a size never seen
    src = video.write_video(tmp_path / "new_face.mp4", frames, 25)
    out = tmp_path / "dubbed.mp4"
    assert main(["vdtts", str(src), "--text", "Hello world.", "-o", str(out), "--speaker", "us3"]) == 0
    v = video.read_video(out)
    assert np.array_equal(v.frames, video.read_video(src).frames)
    assert abs(len(v.audio) / v.sample_rate - 55 / 25) < 0.1
    env = np.array([np.sqrt(np.mean(v.audio[i * 640 : (i + 1) * 640] ** 2)) for i in range(55)])
    assert env.max() > 0.05  # audible speech
    # louder where the mouth moves than in the silences the video shows
    talking = np.array([any(s != "_" and a <= (i + 0.5) / 25 < b for s, a, b in phonemes) for i in range(55)])
    assert env[talking].mean() > 2 * env[~talking].mean()
