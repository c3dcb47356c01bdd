"""data_prep/phone_probe.py: frame phone labels from phone timings, purity and PNMI on known cases."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "phone_probe", Path(__file__).resolve().parents[2] / "data_prep" / "phone_probe.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def test_frame_phones_take_the_phone_at_each_frame_centre():
    phones = [("h", 0.0, 0.03), ("@", 0.03, 0.08), ("l", 0.10, 0.12)]
    # centres 0.01 0.03 0.05 0.07 0.09 0.11 0.13: a gap at 0.09, nothing after 0.12
    assert probe.frame_phones(phones, 7, 0.02) == ["h", "@", "@", "@", "_", "l", "_"]


def test_scores_of_a_one_to_one_mapping_and_of_independent_labels():
    perfect = [("a", 0)] * 5 + [("b", 1)] * 3 + [("c", 2)] * 2
    s = probe.scores(perfect)
    assert s["phone_purity"] == s["cluster_purity"] == pytest.approx(1.0) and s["pnmi"] == pytest.approx(1.0)
    independent = [(ph, u) for ph in "ab" for u in (0, 1, 2)]  # every unit equally often with every phone
    s = probe.scores(independent)
    assert s["pnmi"] == pytest.approx(0.0, abs=1e-12) and s["phone_purity"] == pytest.approx(0.5)
    # two units for one phone: phone purity stays 1, cluster purity halves for that phone
    split = [("a", 0)] * 2 + [("a", 1)] * 2 + [("b", 2)] * 4
    s = probe.scores(split)
    assert s["phone_purity"] == pytest.approx(1.0) and s["cluster_purity"] == pytest.approx(0.75)
    assert s["pnmi"] == pytest.approx(1.0)


def test_real_items_are_labelled_by_forced_alignment_and_unalignable_ones_left_out(tmp_path):
    from speechkit.audio import io
    from speechkit.synth.tts import MBROLA_VOICES, synthesize

    syn = synthesize("open the door please", MBROLA_VOICES["us1"])
    io.save(tmp_path / "a.wav", syn.wav, syn.sample_rate)
    (tmp_path / "items.tsv").write_text("id\tpath\ttext\na\ta.wav\tOpen the door, please.\n"
                                        "b\ta.wav\tthe xqzzv of florbs\n")
    items = probe._real_items(tmp_path)
    assert len(items) == 1 and items[0].sample_rate == 16000
    phones = [p for p, _, _ in items[0].phonemes]
    assert {"OW", "DH", "D", "AO", "P", "L", "IY", "Z"} <= set(phones) and not set(phones) & {"@", "D@"}
    frames = probe.frame_phones(items[0].phonemes, int(len(items[0].wav) / 320), 0.02)
    assert frames.count("_") < len(frames) // 2
