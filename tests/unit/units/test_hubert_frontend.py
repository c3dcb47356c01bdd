"""The tiled front end (feature extraction without autograd) gives the numbers of the plain one."""

from __future__ import annotations

import pytest
import torch

from speechkit.units.hubert.config import conv_frames
from speechkit.units.hubert.model import ConvFeatureExtractor, _strided_conv, pack_conv_weight
from tests.unit.units import fairseq_format as ff


def _extractor(variant: str, seed: int = 0) -> ConvFeatureExtractor:
    torch.manual_seed(seed)
    v = ff.VARIANTS[variant]
    fe = ConvFeatureExtractor(ff._conv_layers(v["conv"]), mode=v["extractor_mode"], bias=v["conv_bias"])
    for p in fe.parameters():  # norm affine parameters away from their 1 / 0 init, so a wrong fold shows
        p.data.add_(torch.randn_like(p) * 0.3)
    return fe.eval()


@pytest.mark.parametrize("kernel,stride", [(10, 5), (3, 2), (2, 2), (4, 2), (5, 3), (1, 1), (7, 2)])
def test_strided_conv_matches_conv1d(kernel, stride):
    torch.manual_seed(kernel * 10 + stride)
    conv = torch.nn.Conv1d(6, 5, kernel, stride=stride, bias=True)
    x = torch.randn(41, 6)
    ref = conv(x.T[None])[0].T
    ours = _strided_conv(x, pack_conv_weight(conv.weight.detach()), conv.bias, kernel, stride)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() <= 1e-5


@pytest.mark.parametrize("variant", ["base", "large", "25hz"])
@pytest.mark.parametrize("tile", [1, 3, 128])
def test_tiled_front_end_equals_plain_on_padded_batches(variant, tile):
    fe = _extractor(variant)
    fe.tile_frames = tile
    lengths = torch.tensor([16000, 9001, 5123, 399, 7])  # the last two are shorter than one frame's receptive
    # field, the very last even than the first convolution's kernel
    wav = torch.randn(5, 16000) * 0.2 + 0.05  # a DC offset: the folded group norm must remove the mean
    with torch.enable_grad():  # the plain path (training)
        ref, ref_len = fe(wav, lengths)
    with torch.inference_mode():
        ours, our_len = fe(wav, lengths)
        alone = {i: fe(wav[i: i + 1, : int(n)])[0][0] for i, n in enumerate(lengths) if n >= 10}
    assert our_len.tolist() == ref_len.tolist() == [conv_frames(fe.conv_layers, int(n)) for n in lengths]
    assert our_len[-1] == our_len[-2] == 0
    for i, n in enumerate(our_len.tolist()):
        if n:
            assert (ours[i, :n] - ref[i, :n]).abs().max() <= 1e-5 * ref[i, :n].abs().max()
        if i in alone:
            assert torch.equal(ours[i, :n], alone[i])  # a batch never changes an utterance's numbers
        assert not ours[i, n:].any()  # padded frames are zero


def test_tiled_front_end_unpadded_and_group_norm_fold():
    fe = _extractor("base", seed=3)
    wav = torch.randn(2, 7777) * 3.0
    with torch.enable_grad():
        ref, none = fe(wav)
    with torch.inference_mode():
        ours, still_none = fe(wav)
    assert none is None and still_none is None
    assert (ours - ref).abs().max() <= 1e-5 * ref.abs().max()
