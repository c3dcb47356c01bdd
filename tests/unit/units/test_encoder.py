import numpy as np
import pytest
import torch

from speechkit.audio.io import resample
from speechkit.units import HubertFeatureReader, KMeansQuantizer, SpeechEncoder, deduplicate, regrid
from speechkit.units.hubert import HubertConfig, build_hubert
from tests.unit.units import fairseq_format as ff


def test_deduplicate_is_run_length_encoding():
    units, durations = deduplicate(torch.tensor([5, 5, 2, 2, 2, 5, 7]))
    assert units.tolist() == [5, 2, 5, 7] and durations.tolist() == [2, 3, 1, 1]
    with pytest.raises(ValueError, match="1-D"):
        deduplicate(torch.zeros(2, 2, dtype=torch.long))


def test_regrid_scales_unit_boundaries_and_keeps_the_frame_count():
    units, dur = torch.tensor([3, 1, 4]), torch.tensor([2, 3, 5])

    def grid(u, d, n):
        a, b = regrid(u, d, n)
        return a.tolist(), b.tolist()

    assert grid(units, dur, 10) == ([3, 1, 4], [2, 3, 5])          # same grid: unchanged
    assert grid(units, dur, 20) == ([3, 1, 4], [4, 6, 10])         # a copy twice as fast, back on the slow grid
    assert grid(units, dur, 5) == ([3, 1, 4], [1, 1, 3])           # ends 1, 2.5 -> 2 (half to even), 5
    # a unit left without a frame disappears and its equal neighbours merge: ends 1.5, 1.75, 3 -> 2, 2, 3
    assert grid(torch.tensor([7, 2, 7]), torch.tensor([6, 1, 5]), 3) == ([7], [3])
    # a long random sequence: the frame count holds and no boundary moves by more than half a frame
    g = torch.Generator().manual_seed(0)
    u, d = deduplicate(torch.randint(0, 5, (400,), generator=g))
    for n in (333, 400, 517):
        a, b = regrid(u, d, n)
        assert int(b.sum()) == n and bool((a[1:] != a[:-1]).all())
        want = torch.repeat_interleave(u, d)[(torch.arange(n) + 0.5).mul(400 / n).long()]
        assert (torch.repeat_interleave(a, b) != want).float().mean() < 0.1 * 400 / n
    with pytest.raises(ValueError, match="frames"):
        regrid(units, dur, 0)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("enc") / "hubert.pt"
    ff.write_fairseq_checkpoint(path, "base", seed=2)
    reader = HubertFeatureReader.from_pretrained(path, layer=2)
    feats = reader(torch.randn(32000) * 0.2)
    return SpeechEncoder(reader, KMeansQuantizer.fit(feats.numpy(), 8, seed=0), need_f0=True)


def test_streams_are_consistent(encoder):
    t = torch.arange(16000 * 2) / 16000
    wav = 0.4 * torch.sin(2 * torch.pi * 140 * t) * (t < 1.2)
    out = encoder(wav)
    frames = encoder.reader.config.num_frames(len(wav))
    assert out["dense"].shape == (frames, ff.DIM)
    assert int(out["durations"].sum()) == frames and len(out["units"]) == len(out["durations"])
    assert torch.equal(torch.repeat_interleave(out["units"], out["durations"]), encoder.quantizer(out["dense"]))
    assert out["f0"].shape == out["units"].shape
    voiced = out["f0"][out["f0"] > 0]
    assert len(voiced) > 0 and abs(float(voiced.median()) - 140) < 10  # the tone's pitch, on tone units


def test_resampling_happens_at_the_boundary(encoder):
    wav48 = torch.randn(48000) * 0.1
    a = encoder(wav48, sample_rate=48000)
    b = encoder(resample(wav48, 48000, 16000))
    assert torch.equal(a["units"], b["units"]) and torch.allclose(a["dense"], b["dense"])
    stereo = torch.stack([wav48, wav48 * 0.5])
    c = encoder(stereo, sample_rate=48000)
    assert torch.allclose(c["dense"], encoder(wav48 * 0.75, sample_rate=48000)["dense"], atol=1e-5)


def test_encode_batch_gives_identical_units(encoder):
    g = torch.Generator().manual_seed(4)
    wavs = [torch.randn(n, generator=g) * 0.2 for n in (16000, 7001, 30000)]
    encoder.need_f0 = False
    try:
        for single, batched in zip([encoder(w) for w in wavs], encoder.encode_batch(wavs), strict=True):
            assert torch.equal(single["units"], batched["units"])
            assert torch.equal(single["durations"], batched["durations"])
    finally:
        encoder.need_f0 = True


def test_save_and_from_pretrained(tmp_path, encoder):
    encoder.save_pretrained(tmp_path / "enc")
    loaded = SpeechEncoder.from_pretrained(tmp_path / "enc", need_f0=False)
    wav = torch.randn(12000) * 0.2
    assert torch.equal(loaded(wav)["units"], encoder(wav)["units"])
    assert loaded.vocab_size == 8 and loaded.code_hop_size == 320 and loaded.expected_sample_rate == 16000


def test_quantizer_must_match_reader():
    cfg = HubertConfig(conv_layers=[(8, 10, 5)], embed_dim=16, num_layers=1, num_heads=2, ffn_dim=16, conv_pos=4,
                       conv_pos_groups=2)
    reader = HubertFeatureReader(build_hubert(cfg), cfg, layer=1)
    with pytest.raises(ValueError, match="quantizer dim 3 does not match the reader's feature dim 16"):
        SpeechEncoder(reader, KMeansQuantizer(np.zeros((4, 3))))
