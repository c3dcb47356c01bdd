"""Foreign HuBERT checkpoints -> (:class:`HubertConfig`, speechkit state dict). Foreign formats stop here.

fairseq ``.pt`` files (hubert_base_ls960, hubert_large_ll60k, mhubert-base-25hz, ...):

- ``cfg`` is a plain dict with ``model`` and ``task`` parts (older files: an ``argparse.Namespace`` in ``args``);
  the waveform ``normalize`` flag and ``sample_rate`` live in the *task* part;
- ``conv_feature_layers`` is a Python expression string, e.g. ``"[(512,10,5)] + [(512,3,2)] * 4"``: parsed here
  with :mod:`ast` (lists, tuples, integers, ``+`` and ``*`` only), never ``eval``-ed;
- the positional convolution is stored with legacy weight norm (``weight_g`` (1, 1, K), ``weight_v``): folded here
  into a plain weight, ``w = g * v / ||v||`` with the norm over every dimension but the last;
- ``task_state`` holds pickled ``fairseq.data.dictionary.Dictionary`` objects: read through the restricted
  unpickler of :mod:`speechkit.utils.safe_pickle`.

HF transformers folders (``config.json`` with ``model_type`` ``hubert`` or ``wav2vec2`` + ``model.safetensors`` or
``pytorch_model.bin``): the same architecture under other names; ``do_normalize`` comes from
``preprocessor_config.json`` (HF's formula: eps 1e-7 inside the square root).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import torch

from speechkit.units.hubert.config import HubertConfig
from speechkit.utils.checkpoint import CheckpointError
from speechkit.utils.files import read_json, read_safetensors

__all__ = ["parse_conv_layers", "load_fairseq_hubert", "load_hf_hubert", "fold_weight_norm"]

DEFAULT_CONV_FEATURE_LAYERS = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"


def parse_conv_layers(expr: str) -> list[tuple[int, int, int]]:
    """Parses fairseq's ``conv_feature_layers`` string without ``eval``.

    Example:
        >>> parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 2")
        [(512, 10, 5), (512, 3, 2), (512, 3, 2)]
    """

    def value(node: ast.AST):
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Tuple):
            return tuple(value(e) for e in node.elts)
        if isinstance(node, ast.List):
            return [value(e) for e in node.elts]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = value(node.left), value(node.right)
            if isinstance(left, list) and isinstance(right, list):
                return left + right
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            left, right = value(node.left), value(node.right)
            if isinstance(left, list) and isinstance(right, int):
                return left * _repeat(right)
            if isinstance(right, list) and isinstance(left, int):
                return right * _repeat(left)
        raise ValueError(f"unsupported element {ast.dump(node)[:80]}")

    def _repeat(n: int) -> int:
        if not 0 <= n <= 1000:
            raise ValueError(f"a repeat count must be in 0..1000, found {n}")
        return n

    if not isinstance(expr, str) or len(expr) > 10_000:
        raise CheckpointError(f"conv_feature_layers must be a string of at most 10000 characters. Found "
                              f"{str(expr)[:80]!r}")
    try:
        layers = value(ast.parse(expr.strip(), mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise CheckpointError(f"conv_feature_layers must be a list expression of (dim, kernel, stride) tuples. "
                              f"Found {expr[:200]!r} ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(layers, list) or not layers or not all(
            isinstance(t, tuple) and len(t) == 3 and all(isinstance(v, int) and 0 < v <= 1 << 16 for v in t)
            for t in layers):
        raise CheckpointError(f"conv_feature_layers must give a non-empty list of (dim, kernel, stride) with "
                              f"values in 1..65536. Found {expr[:200]!r}")
    return [tuple(int(v) for v in t) for t in layers]


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Weight of a weight-normed layer: ``g * v / ||v||``, the norm over all dims of ``v`` where ``g`` has size 1."""
    dims = [d for d in range(v.dim()) if g.shape[d] == 1]
    return g * v / v.norm(dim=dims, keepdim=True)


# fairseq key -> speechkit key; group 1 is a layer index where present. None = not needed for features.
_FAIRSEQ_KEYS: list[tuple[str, str | None]] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.layers.\1.norm.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", r"feature_extractor.layers.\1.norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.\1"),
    (r"mask_emb", r"mask_emb"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.attention_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc(1|2)\.(weight|bias)", r"encoder.layers.\1.fc\2.\3"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.ffn_norm.\2"),
    # pretraining heads (HuBERT: label embeddings, projection; wav2vec 2.0: quantizer and its projections)
    (r"(label_embs_concat|final_proj\..*|target_glu\..*|label_embs\..*|quantizer\..*|project_q\..*|"
     r"project_inp\..*)", None),
]


def _map_keys(sd: dict[str, torch.Tensor], table: list[tuple[str, str | None]], source: Path) -> dict:
    out, unknown = {}, []
    for key, value in sd.items():
        for pattern, target in table:
            if re.fullmatch(pattern, key):
                if target is not None:
                    out[re.sub(pattern, target, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"{source}: unexpected weights {unknown[:8]}{'...' if len(unknown) > 8 else ''}; "
                              "not a HuBERT/wav2vec 2.0 encoder checkpoint speechkit can read")
    return out


def _pos_conv(sd: dict[str, torch.Tensor], bn_prefix: str, conv_prefix: str, batch_norm: bool, source: Path) -> dict:
    """Positional-convolution weights -> speechkit names, weight norm folded. Keys are popped from ``sd``."""
    out = {}
    if batch_norm:
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            if f"{bn_prefix}{name}" in sd:
                out[f"encoder.pos_conv.batch_norm.{name}"] = sd.pop(f"{bn_prefix}{name}")
    if f"{conv_prefix}weight_g" in sd:
        g, v = sd.pop(f"{conv_prefix}weight_g"), sd.pop(f"{conv_prefix}weight_v")
        out["encoder.pos_conv.conv.weight"] = fold_weight_norm(g, v)
    elif f"{conv_prefix}parametrizations.weight.original0" in sd:
        g = sd.pop(f"{conv_prefix}parametrizations.weight.original0")
        v = sd.pop(f"{conv_prefix}parametrizations.weight.original1")
        out["encoder.pos_conv.conv.weight"] = fold_weight_norm(g, v)
    elif f"{conv_prefix}weight" in sd:
        out["encoder.pos_conv.conv.weight"] = sd.pop(f"{conv_prefix}weight")
    else:
        raise CheckpointError(f"{source}: no positional convolution weights under {conv_prefix!r}")
    out["encoder.pos_conv.conv.bias"] = sd.pop(f"{conv_prefix}bias")
    return out


def _get(cfg, key, default):
    if isinstance(cfg, dict):
        value = cfg.get(key, default)
    else:
        value = getattr(cfg, key, default)
    return default if value is None else value


def load_fairseq_hubert(path: str | os.PathLike) -> tuple[HubertConfig, dict[str, torch.Tensor]]:
    """Reads a fairseq HuBERT (or wav2vec 2.0) pretraining checkpoint without fairseq.

    Returns:
        ``(config, state_dict)`` in speechkit's names; pretraining heads are dropped.

    Raises:
        CheckpointError: not a fairseq encoder checkpoint, or an unsupported variant (the message says which).
        UnsafePickleError: the file needs a pickled global off the allowlist.
    """
    from speechkit.utils.safe_pickle import load_torch_checkpoint

    p = Path(path)
    state = load_torch_checkpoint(p)
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{p}: not a fairseq checkpoint (no 'model' weights)")
    if state.get("cfg") is not None:
        model_cfg, task_cfg = state["cfg"].get("model", {}), state["cfg"].get("task", {})
    elif state.get("args") is not None:
        model_cfg = task_cfg = state["args"]
    else:
        raise CheckpointError(f"{p}: fairseq checkpoint without 'cfg' or 'args'; cannot tell its architecture")
    sd = dict(state["model"])
    if any(k.startswith("w2v_encoder.") for k in sd):
        raise CheckpointError(f"{p}: a fine-tuned (CTC) checkpoint; give the pretrained encoder checkpoint instead")
    if _get(model_cfg, "layer_type", "transformer") != "transformer":
        raise CheckpointError(f"{p}: layer_type={_get(model_cfg, 'layer_type', '')!r} is not supported "
                              "(only 'transformer')")
    if int(_get(model_cfg, "pos_conv_depth", 1)) != 1:
        raise CheckpointError(f"{p}: pos_conv_depth > 1 (data2vec 2.0) is not supported")
    try:
        conv_layers = parse_conv_layers(str(_get(model_cfg, "conv_feature_layers", DEFAULT_CONV_FEATURE_LAYERS)))
    except ValueError as e:
        raise CheckpointError(f"{p}: {e}") from None
    extractor_mode = str(_get(model_cfg, "extractor_mode", "default"))
    extractor_mode = extractor_mode.split(".")[-1].lower()  # tolerate an Enum's str()
    config = HubertConfig(
        conv_layers=conv_layers,
        extractor_mode=extractor_mode,
        conv_bias=bool(_get(model_cfg, "conv_bias", False)),
        embed_dim=int(_get(model_cfg, "encoder_embed_dim", 768)),
        num_layers=int(_get(model_cfg, "encoder_layers", 12)),
        num_heads=int(_get(model_cfg, "encoder_attention_heads", 12)),
        ffn_dim=int(_get(model_cfg, "encoder_ffn_embed_dim", 3072)),
        activation=str(_get(model_cfg, "activation_fn", "gelu")),
        layer_norm_first=bool(_get(model_cfg, "layer_norm_first", False)),
        conv_pos=int(_get(model_cfg, "conv_pos", 128)),
        conv_pos_groups=int(_get(model_cfg, "conv_pos_groups", 16)),
        conv_pos_batch_norm=bool(_get(model_cfg, "conv_pos_batch_norm", False)),
        normalize=bool(_get(task_cfg, "normalize", False)),
        sample_rate=int(_get(task_cfg, "sample_rate", 16000)),
    )
    try:
        config.validate()
    except ValueError as e:
        raise CheckpointError(f"{p}: {e}") from None
    conv_prefix = "encoder.pos_conv.1." if config.conv_pos_batch_norm else "encoder.pos_conv.0."
    out = _pos_conv(sd, "encoder.pos_conv.0.", conv_prefix, config.conv_pos_batch_norm, p)
    out.update(_map_keys(sd, _FAIRSEQ_KEYS, p))
    return config, out


_HF_KEYS: list[tuple[str, str | None]] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.(weight|bias)", r"feature_extractor.layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(weight|bias)", r"feature_extractor.layers.\1.norm.\2"),
    (r"feature_projection\.layer_norm\.(weight|bias)", r"feature_norm.\1"),
    (r"feature_projection\.projection\.(weight|bias)", r"feature_projection.\1"),
    (r"masked_spec_embed", r"mask_emb"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.attention\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.layer_norm\.(weight|bias)", r"encoder.layers.\1.attention_norm.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.(weight|bias)", r"encoder.layers.\1.fc1.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.output_dense\.(weight|bias)", r"encoder.layers.\1.fc2.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.ffn_norm.\2"),
    (r"(quantizer\..*|project_q\..*|project_hid\..*|final_proj\..*|label_embeddings_concat|lm_head\..*)", None),
]


def load_hf_hubert(folder: str | os.PathLike) -> tuple[HubertConfig, dict[str, torch.Tensor]]:
    """Reads a transformers HuBERT / wav2vec 2.0 folder (``config.json`` + weights).

    Raises:
        CheckpointError: missing files, another model type, or an unsupported variant.
    """
    d = Path(folder)
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{d}: no config.json (expected a transformers HuBERT/wav2vec2 folder)")
    hf = read_json(cfg_path, CheckpointError)
    if hf.get("model_type") not in ("hubert", "wav2vec2"):
        raise CheckpointError(f"{cfg_path}: model_type must be 'hubert' or 'wav2vec2'. Found {hf.get('model_type')!r}")
    if hf.get("feat_proj_layer_norm", True) is False:
        raise CheckpointError(f"{cfg_path}: feat_proj_layer_norm=false is not supported")
    if int(hf.get("num_conv_pos_embedding_layers", 1)) != 1 or hf.get("position_embeddings_type", "conv") != "conv":
        raise CheckpointError(f"{cfg_path}: only one convolutional positional embedding is supported")
    normalize = False
    pre = d / "preprocessor_config.json"
    if pre.is_file():
        normalize = bool(read_json(pre, CheckpointError).get("do_normalize", False))
    config = HubertConfig(
        conv_layers=list(zip(hf["conv_dim"], hf["conv_kernel"], hf["conv_stride"], strict=True)),
        extractor_mode="layer_norm" if hf.get("feat_extract_norm", "group") == "layer" else "default",
        conv_bias=bool(hf.get("conv_bias", False)),
        embed_dim=int(hf["hidden_size"]),
        num_layers=int(hf["num_hidden_layers"]),
        num_heads=int(hf["num_attention_heads"]),
        ffn_dim=int(hf["intermediate_size"]),
        activation={"gelu_new": "gelu_accurate"}.get(hf.get("hidden_act", "gelu"), hf.get("hidden_act", "gelu")),
        layer_norm_first=bool(hf.get("do_stable_layer_norm", False)),
        conv_pos=int(hf.get("num_conv_pos_embeddings", 128)),
        conv_pos_groups=int(hf.get("num_conv_pos_embedding_groups", 16)),
        conv_pos_batch_norm=bool(hf.get("conv_pos_batch_norm", False)),
        normalize=normalize,
        normalize_eps=1e-7,
        sample_rate=16000,
        layer_norm_eps=float(hf.get("layer_norm_eps", 1e-5)),
    )
    try:
        config.validate()
    except ValueError as e:
        raise CheckpointError(f"{cfg_path}: {e}") from None
    sd = _read_hf_weights(d)
    prefix = next((p for p in ("hubert.", "wav2vec2.") if any(k.startswith(p) for k in sd)), "")
    sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    out = _pos_conv(sd, "encoder.pos_conv_embed.batch_norm.", "encoder.pos_conv_embed.conv.",
                    config.conv_pos_batch_norm, d)
    out.update(_map_keys(sd, _HF_KEYS, d))
    return config, out


def _read_hf_weights(d: Path) -> dict[str, torch.Tensor]:
    if (d / "model.safetensors").is_file():
        return read_safetensors(d / "model.safetensors", CheckpointError)
    if (d / "pytorch_model.bin").is_file():
        from speechkit.utils.safe_pickle import load_torch_checkpoint

        return load_torch_checkpoint(d / "pytorch_model.bin")
    raise CheckpointError(f"{d}: no model.safetensors or pytorch_model.bin")


def to_fairseq_state_dict(state_dict: dict[str, torch.Tensor], config: HubertConfig) -> dict[str, torch.Tensor]:
    """speechkit HuBERT weights -> fairseq's names (the inverse of :func:`load_fairseq_hubert`'s key map).

    The positional convolution is stored the fairseq way: ``weight_g`` / ``weight_v`` (weight norm over the
    kernel dimension) or, for batch-norm models, ``pos_conv.0`` = batch norm and ``pos_conv.1`` = convolution.
    Useful to hand our models to fairseq-format tooling (torchaudio's importer, textlesslib users).
    """
    out = {}
    for key, value in state_dict.items():
        m = re.fullmatch(r"feature_extractor\.layers\.(\d+)\.(conv|norm)\.(weight|bias)", key)
        if m:
            i, part, name = m.groups()
            if part == "conv":
                out[f"feature_extractor.conv_layers.{i}.0.{name}"] = value
            elif config.extractor_mode == "layer_norm":
                out[f"feature_extractor.conv_layers.{i}.2.1.{name}"] = value
            else:
                out[f"feature_extractor.conv_layers.{i}.2.{name}"] = value
            continue
        m = re.fullmatch(r"encoder\.pos_conv\.(conv|batch_norm)\.(\w+)", key)
        if m:
            part, name = m.groups()
            if part == "batch_norm":
                out[f"encoder.pos_conv.0.{name}"] = value
            elif config.conv_pos_batch_norm:
                out[f"encoder.pos_conv.1.{name}"] = value
            elif name == "weight":
                out["encoder.pos_conv.0.weight_g"] = value.norm(dim=(0, 1), keepdim=True)
                out["encoder.pos_conv.0.weight_v"] = value
            else:
                out[f"encoder.pos_conv.0.{name}"] = value
            continue
        for pattern, target in (
            (r"feature_norm\.(weight|bias)", r"layer_norm.\1"),
            (r"feature_projection\.(weight|bias)", r"post_extract_proj.\1"),
            (r"encoder\.layers\.(\d+)\.attention\.(q|k|v|out)_proj\.(\w+)", r"encoder.layers.\1.self_attn.\2_proj.\3"),
            (r"encoder\.layers\.(\d+)\.attention_norm\.(\w+)", r"encoder.layers.\1.self_attn_layer_norm.\2"),
            (r"encoder\.layers\.(\d+)\.ffn_norm\.(\w+)", r"encoder.layers.\1.final_layer_norm.\2"),
            (r"(.*)", r"\1"),
        ):
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, target, key)] = value
                break
    return out
