"""Speaker similarity (resemblyzer) and DNSMOS (speechmos) on the mini-Expresso."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from speechkit.audio import io
from speechkit.data.corpora import expresso
from speechkit.metrics.mos import DNSMOS
from speechkit.metrics.speaker import SpeakerEncoder


@pytest.fixture(scope="module")
def utterances(mini_expresso):
    """Two default-style read files per speaker."""
    stems = sorted(s for s in expresso.read_transcriptions(mini_expresso) if "_default_" in s)
    by_speaker = {}
    for s in stems:
        by_speaker.setdefault(s.split("_")[0], []).append(s)
    return {spk: [io.load(expresso.audio_path(mini_expresso, s))[0] for s in found[:2]]
            for spk, found in by_speaker.items()}


@pytest.mark.slow
def test_same_speaker_pairs_are_more_similar_than_different_speaker_pairs(utterances):
    enc = SpeakerEncoder()
    emb = {spk: [enc.embed(w, 48000) for w in wavs] for spk, wavs in utterances.items()}
    assert all(np.isclose(np.linalg.norm(e), 1.0, atol=1e-4) for es in emb.values() for e in es)
    same = [float(a @ b) for a, b in (es for es in emb.values())]
    different = [float(a[0] @ b[0]) for a, b in itertools.combinations(emb.values(), 2)]
    assert len(same) == 4 and len(different) == 6
    assert np.mean(same) > np.mean(different) + 0.05
    assert min(same) > np.median(different)
    # same audio -> 1, and the rate does not matter (resampled at the boundary)
    w = utterances["us1"][0]
    assert enc.similarity(w, 48000, io.resample(w, 48000, 16000), 16000) > 0.99


@pytest.mark.slow
def test_dnsmos_prefers_clean_speech(utterances):
    mos = DNSMOS()
    clean = utterances["us2"][0]
    noisy = clean + 0.3 * torch.randn(len(clean), generator=torch.Generator().manual_seed(0))
    a, b = mos(clean, 48000), mos(noisy.clamp(-1, 1), 48000)
    assert set(a) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}
    assert all(1.0 <= v <= 5.0 for v in a.values())
    assert a["dnsmos_ovrl"] > b["dnsmos_ovrl"] + 0.3 and a["dnsmos_bak"] > b["dnsmos_bak"]
    with pytest.raises(ValueError, match="empty"):
        mos(torch.zeros(0), 16000)
