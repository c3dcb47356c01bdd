"""Tiny random HuBERT checkpoints in fairseq's on-disk format, written without fairseq.

The layout follows fairseq's ``HubertModel`` / ``TransformerEncoder`` state-dict names and ``save_checkpoint``'s
top-level keys (cfg as a plain dict, task_state holding pickled ``fairseq.data.dictionary.Dictionary`` objects).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch

VARIANTS = {
    # base: group norm on the first conv, post-LN, no conv bias, no waveform normalisation
    "base": dict(extractor_mode="default", conv_bias=False, layer_norm_first=False, normalize=False,
                 conv_pos_batch_norm=False, conv="[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2"),
    # large: layer norm after every conv, conv bias, pre-LN, normalised waveform
    "large": dict(extractor_mode="layer_norm", conv_bias=True, layer_norm_first=True, normalize=True,
                  conv_pos_batch_norm=False, conv="[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2"),
    # mHuBERT-25Hz: one more stride-2 conv (640 samples a frame), batch-norm positional conv
    "25hz": dict(extractor_mode="default", conv_bias=False, layer_norm_first=False, normalize=False,
                 conv_pos_batch_norm=True, conv="[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2 + [(16,2,2)]"),
}
DIM, FFN, LAYERS, HEADS, CONV_POS, CONV_POS_GROUPS = 32, 64, 3, 4, 16, 4


class Dictionary:  # pickled under fairseq's name, as real checkpoints carry it
    def __init__(self, symbols):
        self.symbols, self.count = list(symbols), [1] * len(symbols)
        self.indices = {s: i for i, s in enumerate(symbols)}
        self.bos_index, self.pad_index, self.eos_index, self.unk_index = 0, 1, 2, 3


Dictionary.__module__ = "fairseq.data.dictionary"
Dictionary.__qualname__ = "Dictionary"


def _conv_layers(expr: str) -> list[tuple[int, int, int]]:
    layers = []
    for part in expr.split("+"):
        part = part.strip()
        mult = 1
        if "*" in part:
            part, m = part.rsplit("*", 1)
            mult = int(m)
        tuples = [tuple(int(v) for v in t.strip("() ").split(",")) for t in part.strip()[1:-1].split("),")]
        layers += tuples * mult
    return layers


def fairseq_state_dict(variant: str, seed: int = 0) -> dict[str, torch.Tensor]:
    v = VARIANTS[variant]
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape, s=0.2: torch.randn(*shape, generator=g) * s  # noqa: E731
    affine = lambda n: (1 + rnd(n, s=0.1), rnd(n, s=0.1))  # noqa: E731
    sd, in_dim = {}, 1
    for i, (dim, k, _) in enumerate(_conv_layers(v["conv"])):
        sd[f"feature_extractor.conv_layers.{i}.0.weight"] = rnd(dim, in_dim, k, s=(2 / (in_dim * k)) ** 0.5)
        if v["conv_bias"]:
            sd[f"feature_extractor.conv_layers.{i}.0.bias"] = rnd(dim, s=0.05)
        if v["extractor_mode"] == "layer_norm":
            sd[f"feature_extractor.conv_layers.{i}.2.1.weight"], sd[f"feature_extractor.conv_layers.{i}.2.1.bias"] = (
                affine(dim))
        elif i == 0:
            sd["feature_extractor.conv_layers.0.2.weight"], sd["feature_extractor.conv_layers.0.2.bias"] = affine(dim)
        in_dim = dim
    sd["layer_norm.weight"], sd["layer_norm.bias"] = affine(in_dim)
    sd["post_extract_proj.weight"], sd["post_extract_proj.bias"] = rnd(DIM, in_dim), rnd(DIM, s=0.05)
    sd["mask_emb"] = rnd(DIM)
    k = CONV_POS
    if v["conv_pos_batch_norm"]:
        sd["encoder.pos_conv.0.weight"], sd["encoder.pos_conv.0.bias"] = affine(DIM)
        sd["encoder.pos_conv.0.running_mean"] = rnd(DIM, s=0.3)
        sd["encoder.pos_conv.0.running_var"] = 0.5 + torch.rand(DIM, generator=g)
        sd["encoder.pos_conv.0.num_batches_tracked"] = torch.tensor(1000)
        sd["encoder.pos_conv.1.weight"] = rnd(DIM, DIM // CONV_POS_GROUPS, k, s=0.05)
        sd["encoder.pos_conv.1.bias"] = rnd(DIM, s=0.05)
    else:
        sd["encoder.pos_conv.0.bias"] = rnd(DIM, s=0.05)
        sd["encoder.pos_conv.0.weight_g"] = 0.5 + torch.rand(1, 1, k, generator=g)
        sd["encoder.pos_conv.0.weight_v"] = rnd(DIM, DIM // CONV_POS_GROUPS, k)
    sd["encoder.layer_norm.weight"], sd["encoder.layer_norm.bias"] = affine(DIM)
    for i in range(LAYERS):
        p = f"encoder.layers.{i}."
        for proj in ("q", "k", "v", "out"):
            sd[f"{p}self_attn.{proj}_proj.weight"] = rnd(DIM, DIM, s=DIM**-0.5)
            sd[f"{p}self_attn.{proj}_proj.bias"] = rnd(DIM, s=0.05)
        sd[f"{p}self_attn_layer_norm.weight"], sd[f"{p}self_attn_layer_norm.bias"] = affine(DIM)
        sd[f"{p}fc1.weight"], sd[f"{p}fc1.bias"] = rnd(FFN, DIM, s=DIM**-0.5), rnd(FFN, s=0.05)
        sd[f"{p}fc2.weight"], sd[f"{p}fc2.bias"] = rnd(DIM, FFN, s=FFN**-0.5), rnd(DIM, s=0.05)
        sd[f"{p}final_layer_norm.weight"], sd[f"{p}final_layer_norm.bias"] = affine(DIM)
    sd["label_embs_concat"] = rnd(7, 8)
    sd["final_proj.weight"], sd["final_proj.bias"] = rnd(8, DIM), rnd(8)
    return sd


def fairseq_cfg(variant: str) -> dict:
    v = VARIANTS[variant]
    model = {
        "_name": "hubert", "label_rate": 50.0, "extractor_mode": v["extractor_mode"], "encoder_layers": LAYERS,
        "encoder_embed_dim": DIM, "encoder_ffn_embed_dim": FFN, "encoder_attention_heads": HEADS,
        "activation_fn": "gelu", "layer_type": "transformer", "dropout": 0.1, "attention_dropout": 0.1,
        "activation_dropout": 0.0, "encoder_layerdrop": 0.05, "dropout_input": 0.1, "dropout_features": 0.1,
        "final_dim": 8, "untie_final_proj": False, "layer_norm_first": v["layer_norm_first"],
        "conv_feature_layers": v["conv"], "conv_bias": v["conv_bias"], "logit_temp": 0.1, "target_glu": False,
        "feature_grad_mult": 0.1, "mask_length": 10, "mask_prob": 0.8, "conv_pos": CONV_POS,
        "conv_pos_groups": CONV_POS_GROUPS, "conv_pos_batch_norm": v["conv_pos_batch_norm"],
        "latent_temp": [2.0, 0.5, 0.999995], "skip_masked": False, "skip_nomask": False,
        "checkpoint_activations": False, "required_seq_len_multiple": 2,
    }
    task = {"_name": "hubert_pretraining", "data": "/checkpoint/data", "fine_tuning": False, "labels": ["km"],
            "label_dir": "/checkpoint/labels", "label_rate": 50.0, "sample_rate": 16000,
            "normalize": v["normalize"], "enable_padding": False, "max_sample_size": 250000}
    return {"_name": None, "common": {"fp16": True, "seed": 1}, "model": model, "task": task,
            "criterion": {"_name": "hubert", "pred_masked_weight": 1.0}}


def write_fairseq_checkpoint(path, variant: str, seed: int = 0, sd: dict | None = None) -> dict[str, torch.Tensor]:
    """Writes ``path`` like fairseq's ``save_checkpoint`` would; returns the (fairseq-named) weights."""
    sd = fairseq_state_dict(variant, seed) if sd is None else sd
    state = {
        "args": None, "cfg": fairseq_cfg(variant), "model": sd,
        "criterion": None, "optimizer_history": [{"criterion_name": "HubertCriterion", "optimizer_name": "FairseqAdam",
                                                  "lr_scheduler_state": {"best": None}, "num_updates": 400000}],
        "task_state": {"dictionaries": [Dictionary(["<s>", "<pad>", "</s>", "<unk>", "0", "1", "2"])]},
        "extra_state": {"metrics": {}, "previous_training_time": np.float64(12345.6),
                        "train_iterator": {"epoch": 3, "iterations_in_epoch": 0, "shuffle": True}},
        "last_optimizer_state": None,
    }
    pkg = {name: types.ModuleType(name) for name in ("fairseq", "fairseq.data", "fairseq.data.dictionary")}
    pkg["fairseq.data.dictionary"].Dictionary = Dictionary
    saved = {name: sys.modules.get(name) for name in pkg}
    sys.modules.update(pkg)
    try:
        torch.save(state, path)
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
    return sd


def tiny_speech_encoder(path, seed: int, k: int, rng: np.random.Generator, layer: int = 2):
    """A speech encoder on a random fairseq HuBERT written to ``path``: layer ``layer``, k-means with ``k`` centres
    fitted on its features of three seconds of ``rng``'s noise."""
    from speechkit.units import HubertFeatureReader, KMeansQuantizer, SpeechEncoder

    write_fairseq_checkpoint(path, "base", seed=seed)
    reader = HubertFeatureReader.from_pretrained(path, layer=layer)
    feats = torch.cat([reader(torch.from_numpy(rng.standard_normal(16000).astype(np.float32) * 0.2))
                       for _ in range(3)])
    return SpeechEncoder(reader, KMeansQuantizer.fit(feats.numpy(), k, seed=0))
