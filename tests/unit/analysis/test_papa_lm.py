"""PAPA on a causal unit LM: the copy matches the model with no constant head, constant heads ignore queries and
keys, averages are causal, the probe runs at 0/50/100%."""

from __future__ import annotations

import pytest
import torch

from speechkit.analysis.papa_lm import (
    lm_head_distances,
    lm_papa_probe,
    lm_record_average,
    lm_set_constant_heads,
    papa_lm_copy,
)


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=12, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def seqs(n: int, length: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 12, (length - i % 3,), generator=g).tolist() for i in range(n)]


def test_lm_copy_matches_then_constant_heads_ignore_queries_and_keys():
    lm = tiny_llama()
    m, states = papa_lm_copy(lm, max_len=16)
    x = torch.tensor([seqs(1)[0]])
    with torch.no_grad():
        assert torch.allclose(m(x).logits, lm(x).logits, atol=1e-5)
    lm_record_average(m, states, seqs(6))
    c = states[0].constant
    assert torch.all(torch.triu(c[:, :8, :8], diagonal=1) == 0)  # the average of causal attention is causal
    assert torch.allclose(states[0].constant_for(8).sum(-1), torch.ones(2, 8))
    lm_set_constant_heads(states, torch.ones(2, 2, dtype=torch.bool))
    with torch.no_grad():
        y = m(x).logits
        for layer in m.model.layers:
            layer.self_attn.q_proj.weight.normal_()
            layer.self_attn.k_proj.weight.normal_()
        assert torch.equal(m(x).logits, y)
        assert not torch.allclose(lm(x).logits, y, atol=1e-4)
    assert lm.config._attn_implementation != "papa"


def test_lm_papa_probe_rows():
    lm = tiny_llama()
    m, states = papa_lm_copy(lm, max_len=16)
    lm_record_average(m, states, seqs(4))
    d = lm_head_distances(m, states, seqs(4))
    assert d.shape == (2, 2) and bool((d > 0).all())
    out = lm_papa_probe(lm, seqs(12), seqs(4, seed=1), vocab_size=12, max_len=16, calibration=4)
    assert [r["heads_replaced"] for r in out["rows"]] == [0, 2, 4]
    assert out["rows"][0]["loss_relative_increase"] == 0.0
    assert all(r["probe_loss"] > 0 for r in out["rows"])
    with pytest.raises(ValueError, match="start with 0"):
        lm_papa_probe(lm, seqs(4), seqs(2), vocab_size=12, fractions=(1.0,))
