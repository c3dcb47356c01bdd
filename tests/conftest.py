"""Shared fixtures: synthetic audio made at test time, and one small mini-Expresso per test session."""

from __future__ import annotations

import shutil

import numpy as np
import pytest


def sine(freq: float = 220.0, seconds: float = 1.0, sample_rate: int = 16000, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="session")
def mini_expresso(tmp_path_factory):
    """A 2-minute synthetic mini-Expresso (4 MBROLA speakers x 5 styles + 4 dialogues), built once per session."""
    if shutil.which("espeak-ng") is None or shutil.which("mbrola") is None:
        pytest.fail("espeak-ng and mbrola are required: run `make install` (it installs the Debian packages)")
    from speechkit.synth.synthetic import prepare_mini_expresso

    root = tmp_path_factory.mktemp("mini_expresso")
    return prepare_mini_expresso(root, minutes=2.0, jobs=2)
