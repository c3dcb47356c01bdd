"""PAPA: probed attention equals normal attention when no head is constant, constant heads ignore queries and
keys (only values flow), averages handle variable lengths as documented, head selection at 0/50/100%."""

from __future__ import annotations

import pytest
import torch

from speechkit.analysis import (
    head_distances,
    papa_probe,
    probed_copy,
    record_average_attention,
    select_heads,
    set_constant_heads,
)
from speechkit.analysis.papa import ProbedAttention
from speechkit.units.hubert import HubertConfig, build_hubert
from speechkit.units.hubert.model import SelfAttention

TINY = dict(conv_layers=[(8, 10, 5), (8, 3, 2), (8, 2, 2)], embed_dim=16, num_layers=2, num_heads=2, ffn_dim=32,
            conv_pos=4, conv_pos_groups=2)


def attention(max_len: int = 8):
    torch.manual_seed(0)
    base = SelfAttention(16, 4).eval()
    return base, ProbedAttention(base, max_len).eval()


def test_no_constant_head_matches_self_attention_with_padding():
    base, probed = attention()
    x = torch.randn(2, 6, 16)
    mask = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    assert torch.allclose(probed(x, mask), base(x, mask), atol=1e-6)
    probed.constant_heads[1] = True  # explicit-softmax path, head 1 constant: other heads unchanged
    probed.constant.normal_().abs_()
    y, ref = probed(x, mask), base(x, mask)
    assert not torch.allclose(y, ref, atol=1e-4)


def test_constant_attention_ignores_queries_and_keys_only_values_flow():
    _, probed = attention()
    probed.constant.copy_(torch.rand(4, 8, 8))
    probed.constant_heads.fill_(True)
    x = torch.randn(1, 5, 16)
    y = probed(x)
    with torch.no_grad():
        probed.q_proj.weight.normal_()
        probed.k_proj.weight.normal_()
        probed.q_proj.bias.normal_()
        probed.k_proj.bias.normal_()
    assert torch.equal(probed(x), y)
    c = probed.constant[:, :5, :5]
    c = c / c.sum(-1, keepdim=True)  # (H, T, T)
    v = probed.v_proj(x).view(1, 5, 4, 4).transpose(1, 2)  # (1, H, T, d)
    manual = probed.out_proj((c[None] @ v).transpose(1, 2).reshape(1, 5, 16))
    assert torch.allclose(y, manual, atol=1e-6)
    # a token's own key/query cannot change another token's output: only its value does, by the fixed weight
    x2 = x.clone()
    x2[0, 2] += 1.0
    delta = probed(x2) - y
    dv = probed.v_proj(x2) - probed.v_proj(x)  # only frame 2 differs
    expect = probed.out_proj((c[None] @ dv.view(1, 5, 4, 4).transpose(1, 2)).transpose(1, 2).reshape(1, 5, 16))
    assert torch.allclose(delta, expect - probed.out_proj.bias, atol=1e-5)


def test_constant_rows_are_normalised_cropped_interpolated_and_skip_padding():
    _, probed = attention(max_len=4)
    probed.constant.copy_(torch.rand(4, 4, 4))
    short = probed.constant_for(3, None)
    assert short.shape == (1, 4, 3, 3) and torch.allclose(short.sum(-1), torch.ones(1, 4, 3))
    assert torch.allclose(short[0, 0, 0], probed.constant[0, 0, :3] / probed.constant[0, 0, :3].sum())
    long = probed.constant_for(7, torch.tensor([[False] * 5 + [True] * 2]))
    assert long.shape == (1, 4, 7, 7)
    assert torch.all(long[..., 5:] == 0) and torch.allclose(long.sum(-1), torch.ones(1, 4, 7))


def test_average_attention_counts_each_entry_over_inputs_that_reach_it():
    _, probed = attention(max_len=6)
    probed.mode = "record"
    xs = [torch.randn(1, 4, 16), torch.randn(1, 8, 16)]  # the second is cropped to 6 for averaging
    for x in xs:
        probed(x)
    p = [probed._probs(x, None)[0] for x in xs]
    avg = probed.average()
    assert torch.allclose(avg[:, :4, :4], (p[0] + p[1][:, :4, :4]) / 2, atol=1e-6)
    assert torch.allclose(avg[:, 4:6, 4:6], p[1][:, 4:6, 4:6], atol=1e-6)
    assert probed.count[0, 0] == 2 and probed.count[5, 5] == 1


def test_select_heads_zero_half_all_by_smallest_distance():
    d = torch.tensor([[0.3, 0.1], [0.4, 0.2]])
    assert select_heads(d, 0.0).sum() == 0 and select_heads(d, 1.0).all()
    assert select_heads(d, 0.5).tolist() == [[False, True], [False, True]]
    with pytest.raises(ValueError, match=r"in \[0, 1\]. Found 1.5"):
        select_heads(d, 1.5)


def test_probed_model_fully_constant_ignores_input_attention_and_leaves_original_alone():
    torch.manual_seed(0)
    model = build_hubert(HubertConfig(**TINY)).eval()
    g = torch.Generator().manual_seed(0)
    wavs = [torch.randn(n, generator=g) for n in (1200, 1600, 2000)]
    probed, blocks = probed_copy(model, max_len=32)
    with torch.no_grad():
        assert torch.allclose(probed(wavs[0][None])[0], model(wavs[0][None])[0], atol=1e-5)
    avg = record_average_attention(probed, blocks, wavs)
    assert avg.shape == (2, 2, 32, 32)
    dist = head_distances(probed, blocks, wavs)
    assert dist.shape == (2, 2) and bool((dist > 0).all())
    set_constant_heads(blocks, select_heads(dist, 1.0))
    with torch.no_grad():
        y = probed(wavs[1][None])[0]
        for b in blocks:
            b.q_proj.weight.normal_()
            b.k_proj.weight.normal_()
        assert torch.equal(probed(wavs[1][None])[0], y)
        assert not torch.allclose(model(wavs[1][None])[0], y, atol=1e-4)
    assert all(isinstance(layer.attention, SelfAttention) for layer in model.encoder.layers)


def test_papa_probe_rows_and_relative_drop():
    torch.manual_seed(0)
    model = build_hubert(HubertConfig(**TINY)).eval()
    t = torch.arange(1600) / 16000
    data = [{"wav": 0.5 * torch.sin(2 * torch.pi * f * t) + 0.01 * torch.randn(1600), "style": "lo" if f < 1000
             else "hi"} for f in (200, 250, 300, 1500, 2000, 2500) * 2]
    out = papa_probe(model, data[:6], data[6:], tasks=("style",), max_len=16, calibration=6)
    assert [r["heads_replaced"] for r in out["rows"]] == [0, 2, 4]
    assert out["rows"][0]["style_relative_drop"] == 0.0
    for r in out["rows"]:
        assert r["style_relative_drop"] == pytest.approx((out["rows"][0]["style"] - r["style"])
                                                         / out["rows"][0]["style"])
    with pytest.raises(ValueError, match="start with 0"):
        papa_probe(model, data[:6], data[6:], tasks=("style",), fractions=(0.5,))
