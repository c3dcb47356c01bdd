"""speechkit train mel_vocoder: the debug preset trains, exports a HiFi-GAN that VDTTS accepts, and resumes."""

from __future__ import annotations

import json

import torch

from speechkit.audio import io as audio_io
from speechkit.cli.train import compose
from speechkit.train import mel_vocoder
from tests.conftest import sine
from tests.unit.test_vdtts import tiny_config


def test_debug_preset_trains_exports_and_resumes(tmp_path):
    for i, f in enumerate((150, 220, 330)):
        audio_io.save(tmp_path / "audio" / f"a{i}.wav", sine(f, 0.5, sample_rate=48000), 48000)
    out = tmp_path / "run"
    cfg = compose("mel_vocoder", ["preset=debug", f"data.audio={tmp_path / 'audio'}", f"out={out}"])
    assert mel_vocoder.run(cfg) == 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and "loss_d" in rows[1] and "loss_d" not in rows[0]
    assert all(r["valid_mel_l1"] > 0 for r in rows)

    from speechkit.vdtts.vocoding import load_vocoder

    voc = load_vocoder(tiny_config(), "hifigan", out / "model")
    assert voc.output_sample_rate == 16000 and voc(torch.zeros(80, 5)).shape == (800,)
    # resume: a longer schedule continues from step 4
    cfg = compose("mel_vocoder", ["preset=debug", f"data.audio={tmp_path / 'audio'}", f"out={out}",
                                  "optim.max_steps=6"])
    mel_vocoder.run(cfg)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
