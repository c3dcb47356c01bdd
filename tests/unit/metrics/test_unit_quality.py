"""Unit-quality measures on synthetic alignments whose answers are known."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from speechkit.data.phones import frame_phones
from speechkit.metrics.unit_quality import abx_error, phone_unit_scores, speaker_leakage, triphone_items

PHONES = ["a", "e", "i", "o", "u", "p", "t", "k"]
SPEAKERS = ["s1", "s2", "s3"]
HOP = 0.02


def corpus(n: int = 60, seed: int = 0):
    """Utterances of random phone strings (4-8 frames a phone, no phone twice in a row, as in speech), every
    speaker saying the same strings."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        phones = ["_"]
        while len(phones) < 9:
            phones.append(rng.choice([p for p in PHONES if p != phones[-1]]))
        phones.append("_")
        t, alignment = 0.0, []
        for p in phones:
            d = rng.randint(4, 8) * HOP
            alignment.append((p, round(t, 4), round(t + d, 4)))
            t += d
        out.append(alignment)
    return out


def frames_of(alignment):
    return frame_phones(alignment, int(round(alignment[-1][2] / HOP)), HOP)


def units(alignment, speaker: str, mode: str, rng: np.random.Generator):
    ids = {p: i for i, p in enumerate(["_", *PHONES])}
    f = frames_of(alignment)
    if mode == "phone":  # the unit is the phone
        return [ids[p] for p in f]
    if mode == "speaker_phone":  # one unit per phone and speaker: perfect within, useless across speakers
        return [ids[p] + 9 * SPEAKERS.index(speaker) for p in f]
    return list(rng.integers(0, 27, len(f)))  # noise


def test_pnmi_and_purity_of_known_assignments():
    perfect = phone_unit_scores([("a", 0)] * 5 + [("b", 1)] * 5)
    assert perfect == {"phone_purity": 1.0, "cluster_purity": 1.0, "pnmi": pytest.approx(1.0)}
    split = phone_unit_scores([("a", 0), ("a", 1), ("b", 2), ("b", 3)])  # two units per phone: still pure
    assert split["phone_purity"] == 1.0 and split["cluster_purity"] == 0.5 and split["pnmi"] == pytest.approx(1.0)
    none = phone_unit_scores([("a", 0), ("b", 0), ("a", 1), ("b", 1)])
    assert none["pnmi"] == pytest.approx(0.0, abs=1e-12) and none["phone_purity"] == 0.5
    # H(phone) = log 2; one unit tells "a" apart, the other is a 1:2 mix -> MI by hand
    mixed = phone_unit_scores([("a", 0), ("a", 1), ("b", 1), ("b", 1)])
    mi = 0.25 * math.log(0.25 / (0.5 * 0.25)) + 0.25 * math.log(0.25 / (0.5 * 0.75)) \
        + 0.5 * math.log(0.5 / (0.5 * 0.75))
    assert mixed["pnmi"] == pytest.approx(mi / math.log(2))


@pytest.fixture(scope="module")
def items():
    rng = np.random.default_rng(0)
    aligns = corpus()
    out = {}
    for mode in ("phone", "speaker_phone", "noise"):
        utts = [(units(a, s, mode, rng), a, s) for a in aligns for s in SPEAKERS]
        out[mode] = triphone_items(utts, HOP)
    return out


def test_abx_tells_phone_units_from_speaker_units_and_noise(items):
    assert abx_error(items["phone"]) == 0.0 and abx_error(items["phone"], across=True) == 0.0
    # speaker-specific units: every within-speaker comparison is right, across speakers A and B tie with X
    assert abx_error(items["speaker_phone"]) == 0.0
    assert abx_error(items["speaker_phone"], across=True) == pytest.approx(0.5, abs=0.02)
    assert 0.4 < abx_error(items["noise"]) < 0.6


def test_abx_needs_shared_contexts():
    with pytest.raises(ValueError, match="no ABX cell"):
        abx_error([(("a", "b"), "i", "s1", np.array([1, 2, 3]))])


def test_speaker_leakage_from_histograms():
    rng = np.random.default_rng(1)
    aligns = corpus(90, seed=2)
    split = 60
    for mode, expect in (("speaker_phone", 1.0), ("phone", None)):
        seqs = [(units(a, SPEAKERS[i % 3], mode, rng), SPEAKERS[i % 3]) for i, a in enumerate(aligns)]
        r = speaker_leakage([s for s, _ in seqs[:split]], [k for _, k in seqs[:split]],
                            [s for s, _ in seqs[split:]], [k for _, k in seqs[split:]], vocab_size=27)
        assert r["chance"] == pytest.approx(1 / 3)
        if expect is not None:
            assert r["accuracy"] == expect
        else:  # phone units say nothing about who speaks
            assert r["accuracy"] < 0.6
