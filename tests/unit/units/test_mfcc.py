import torch

from speechkit.units.hubert import HubertConfig
from speechkit.units.mfcc import MfccFeatureReader


def test_mfcc_frames_align_with_hubert_base_frames():
    reader, cfg = MfccFeatureReader(), HubertConfig()
    for n in (400, 401, 719, 720, 16000, 23456):
        feats = reader(torch.randn(n))
        assert feats.shape == (cfg.num_frames(n), 39)
    t = torch.arange(16000) / 16000
    low, high = reader(torch.sin(2 * torch.pi * 200 * t)), reader(torch.sin(2 * torch.pi * 3000 * t))
    assert (low[:, :13] - high[:, :13]).abs().mean() > 1.0  # the cepstrum tells a low tone from a high one
    assert torch.allclose(reader(torch.zeros(8000) + 0.1)[5:-5, 13:], torch.zeros(1), atol=1e-3)  # no deltas
