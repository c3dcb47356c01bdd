"""data_prep/unit_mel_probe.py: per-unit mean frames on known cases."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "unit_mel_probe", Path(__file__).resolve().parents[2] / "data_prep" / "unit_mel_probe.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def test_units_that_determine_the_frame_score_zero_and_random_units_score_the_global_mean():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 4))
    def utt(n):
        u = rng.integers(0, 5, n)
        return u, centres[u]
    train, test = [utt(50) for _ in range(4)], [utt(30) for _ in range(2)]
    l1, l1_global = probe.unit_mean_l1(train, test, 5)
    assert l1 == pytest.approx(0.0, abs=1e-12) and l1_global > 0.5
    # labels unrelated to the frames: no better than one global mean
    shuffled = [(rng.integers(0, 5, len(u)), m) for u, m in train + test]
    l1, l1_global = probe.unit_mean_l1(shuffled[:4], shuffled[4:], 5)
    assert l1 == pytest.approx(l1_global, rel=0.1)


def test_units_unseen_in_training_predict_the_global_mean():
    train = [(np.array([0, 0, 1, 1]), np.array([[0.0], [0.0], [2.0], [2.0]]))]
    test = [(np.array([2, 2]), np.array([[1.0], [1.0]]))]  # unit 2 never seen: the global mean (1.0) is exact
    assert probe.unit_mean_l1(train, test, 3) == (0.0, 0.0)
