"""The default call on the bundled models with the real-world input a user throws at it first: telephone-rate,
stereo, clipped, a long leading silence, noise or music only, a 0.1 s click, digital silence: audio out (finite,
in range, as long as the input) and no warning; NaN: one clear error."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from speechkit import Resynthesizer
from speechkit.audio import io
from speechkit.pipeline import PipelineError, active_head

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rs():
    return Resynthesizer.from_pretrained()


@pytest.fixture(scope="module")
def speech():
    from speechkit.hub import local_model_dir

    samples = sorted((local_model_dir("checkpoints/default") / "samples").glob("*.wav"))
    return io.load(samples[0], sample_rate=16000)[0]


def _inputs(speech: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
    sr = 16000
    t = torch.arange(2 * sr) / sr
    g = torch.Generator().manual_seed(0)
    click = torch.zeros(int(0.1 * sr))
    click[800:805] = 0.9
    return {"telephone 8 kHz": (io.resample(speech, sr, 8000), 8000),
            "stereo 44.1 kHz": (io.resample(torch.stack([speech, 0.5 * speech]), sr, 44100), 44100),
            "clipped": ((speech * 10).clamp(-1, 1), sr),
            "5 s leading silence": (torch.cat([torch.zeros(5 * sr), speech]), sr),
            "noise only": (0.1 * torch.randn(3 * sr, generator=g), sr),
            "music only": (0.3 * torch.sin(2 * math.pi * 440 * t) + 0.2 * torch.sin(2 * math.pi * 554 * t), sr),
            "0.1 s click": (click, sr),
            "digital silence": (torch.zeros(sr), sr)}


def test_bad_real_world_input_gives_audio_or_one_clear_error(rs, speech):
    sr_out = rs.output_sample_rate
    for name, (x, sr) in _inputs(speech).items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy arithmetic on silence is a failure too
            y = rs(x, sr)
        seconds = x.shape[-1] / sr
        assert y.dim() == 1 and torch.isfinite(y).all() and y.abs().max() <= 1.0, name
        assert abs(len(y) / sr_out - seconds) < 0.1, (name, len(y) / sr_out, seconds)
    with pytest.raises((PipelineError, ValueError), match="NaN"):
        rs(torch.full((16000,), float("nan")), 16000)


def test_the_kept_voice_is_judged_on_sound_not_on_a_leading_silence(rs, speech):
    sr = 16000
    padded = torch.cat([torch.zeros(5 * sr), speech])
    head = active_head(padded, sr, 2.0)
    assert len(head) <= 2 * sr and head[:320].abs().max() > 0.01  # starts with sound: the silence is skipped
    assert torch.equal(active_head(torch.zeros(sr), sr, 2.0), torch.zeros(sr))
    enc = rs.encode(speech, sr)
    assert rs.match_speaker(padded, sr, enc["units"], enc["durations"]) == \
        rs.match_speaker(speech, sr, enc["units"], enc["durations"])
