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
    from speechkit.data.corpora.talking_face import render_face

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
    assert not (tmp_path / "o.mp4").exists()
