"""Tiny random text LMs saved as Hugging Face folders (no download): OPT (tied, with project_in/out), Llama
(untied) and Qwen2 (tied)."""

from __future__ import annotations

import pytest
import torch


def tiny_config(arch: str, vocab_size: int = 300, **overrides):
    from transformers import GPT2Config, LlamaConfig, OPTConfig, Qwen2Config

    if arch == "opt":  # word_embed_proj_dim != hidden_size exercises OPT-350m's project_in / project_out
        cfg = OPTConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, ffn_dim=64, num_attention_heads=4,
                        max_position_embeddings=128, word_embed_proj_dim=16, pad_token_id=1, bos_token_id=2,
                        eos_token_id=2)
    elif arch == "llama":
        cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          tie_word_embeddings=False)
    elif arch == "qwen2":
        cfg = Qwen2Config(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          tie_word_embeddings=True)
    elif arch == "gpt2":
        cfg = GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=128)
    else:
        raise ValueError(arch)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def save_tiny_lm(folder, arch: str, seed: int = 0, **overrides):
    """Builds a random tiny causal LM, saves it with save_pretrained, returns the model."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, **overrides))
    with torch.no_grad():  # non-trivial norms and biases so "kept bit for bit" means something
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module", params=["opt", "llama", "qwen2"])
def text_lm(request, tmp_path_factory):
    """(arch, folder) of a tiny random text LM."""
    folder = tmp_path_factory.mktemp(f"textlm_{request.param}")
    save_tiny_lm(folder, request.param)
    return request.param, folder
