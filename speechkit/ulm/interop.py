"""Foreign unit-LM and text-LM folders: HF causal LM checks, TWIST releases and slamkit models.

Everything that knows about another toolkit's files lives here, so :mod:`speechkit.ulm.model` only ever sees a
transformers causal LM plus a :class:`~speechkit.ulm.config.UnitVocab`.

- **HF causal LM folder** (a text LM to warm-start from, or a TWIST release): ``config.json`` whose
  ``architectures`` name a ``...ForCausalLM`` / ``...LMHeadModel`` class (or, without ``architectures``, whose
  ``model_type`` has a causal-LM class in transformers), plus weights.
- **TWIST** (textlesslib ``examples/twist``): an HF causal LM folder whose ``config.json`` carries ``offset``;
  unit ``u`` is token ``u + offset``; no BOS is added (textlesslib feeds ``offset + units`` straight to the model).
- **slamkit** (``slamkit.model.unit_lm.UnitLM.save_pretrained``): ``config.json`` with
  ``model_type: "speech_language_model"``, the wrapped LM's config under ``base_config`` and the unit vocabulary
  size under ``vocab_size``; weights prefixed ``lm.`` (``lm.lm_head.weight`` absent when tied); tokens: pad 0,
  ``<S>`` 1 as both BOS and EOS, unit ``u`` -> ``u + 2`` (``UnitTokeniser``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from speechkit.ulm.config import UnitLMError, UnitVocab

__all__ = ["read_hf_config", "check_causal_lm", "detect_format", "load_twist", "load_slamkit", "load_state_dict"]

SLAMKIT_MODEL_TYPE = "speech_language_model"


def read_hf_config(folder: str | os.PathLike) -> dict:
    """``config.json`` of an HF model folder as a dict.

    Raises:
        UnitLMError: not a folder, no ``config.json``, or not valid JSON.
    """
    d = Path(folder)
    if not d.is_dir():
        raise UnitLMError(f"{d}: not a directory (expected a Hugging Face model folder with config.json)")
    path = d / "config.json"
    if not path.is_file():
        raise UnitLMError(f"{d}: no config.json; a Hugging Face model folder holds config.json and its weights")
    from speechkit.utils.files import read_json

    return read_json(path, UnitLMError)


def check_causal_lm(folder: str | os.PathLike, config: dict | None = None) -> dict:
    """Checks that ``folder`` holds a decoder-only causal LM that transformers can build; returns its config.

    Raises:
        UnitLMError: naming the folder, the rule, and the model type / architectures found.
    """
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = read_hf_config(folder) if config is None else config
    model_type = config.get("model_type")
    archs = config.get("architectures") or []
    if model_type == SLAMKIT_MODEL_TYPE:
        raise UnitLMError(f"{folder}: is a slamkit unit LM, not a text LM; load it with UnitLM.from_pretrained")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise UnitLMError(f"{folder}: not a causal language model: model_type {model_type!r} has no causal-LM "
                          "class in transformers (expected e.g. opt, llama, qwen2, gpt2)")
    if config.get("is_encoder_decoder"):
        raise UnitLMError(f"{folder}: model_type {model_type!r} is an encoder-decoder; a decoder-only causal LM "
                          "is required")
    if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        raise UnitLMError(f"{folder}: not a causal language model: architectures {archs} (expected a "
                          "...ForCausalLM or ...LMHeadModel class)")
    return config


def detect_format(folder: str | os.PathLike) -> str:
    """``"speechkit"``, ``"slamkit"`` or ``"twist"``; see the module docstring for the rules.

    Raises:
        UnitLMError: a plain text LM folder (no unit metadata) or not a model folder at all.
    """
    d = Path(folder)
    if (d / "unit_lm.json").is_file():
        return "speechkit"
    config = read_hf_config(d)
    if config.get("model_type") == SLAMKIT_MODEL_TYPE:
        return "slamkit"
    if "offset" in config:
        return "twist"
    check_causal_lm(d, config)
    raise UnitLMError(f"{d}: a causal LM without unit metadata (no unit_lm.json, no TWIST 'offset' in config.json, "
                      "not a slamkit model); to make a unit LM from a text LM use UnitLM.warm_start(dir, num_units), "
                      "for a TWIST checkpoint whose config lost its offset use load_twist(dir, offset=...)")


def _twist_vocab(config: dict, folder, offset: int | None, num_units: int | None) -> UnitVocab:
    offset = config.get("offset") if offset is None else offset
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise UnitLMError(f"{folder}/config.json: TWIST 'offset' must be a non-negative integer. Found {offset!r}")
    vocab_size = int(config.get("vocab_size", 0))
    if num_units is None:
        num_units = vocab_size - offset
    if num_units < 1 or offset + num_units > vocab_size:
        raise UnitLMError(f"{folder}: offset {offset} + num_units {num_units} exceeds vocab_size {vocab_size}")
    eos = config.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) and eos else eos
    if not isinstance(eos, int) or offset <= eos < offset + num_units:
        eos = None  # an end-of-sentence id inside the unit range would be a unit
    pad = config.get("pad_token_id")
    pad = pad if isinstance(pad, int) and 0 <= pad < vocab_size else 0
    vocab = UnitVocab(num_units=num_units, unit_offset=offset, bos_id=None, eos_id=eos, pad_id=pad,
                      layout="twist", append_eos=False)
    vocab.validate()
    return vocab


def load_twist(folder: str | os.PathLike, *, offset: int | None = None, num_units: int | None = None,
               dtype: torch.dtype | None = None):
    """Loads a TWIST release (textlesslib ``examples/twist``) as ``(hf_model, vocab)``.

    Args:
        folder: the unzipped ``TWIST-350M`` / ``TWIST-1.3B`` / ``TWIST-7B`` folder (HF format).
        offset: token id of unit 0; default ``config.offset``, as textlesslib's ``generate_with_offset`` reads it.
        num_units: unit vocabulary size; default ``vocab_size - offset``.
        dtype: weights dtype (default float32).

    Raises:
        UnitLMError: not a causal LM folder, or no usable offset.
    """
    from transformers import AutoModelForCausalLM

    config = check_causal_lm(folder)
    if offset is None and "offset" not in config:
        raise UnitLMError(f"{folder}/config.json: no 'offset' key; TWIST checkpoints store the unit offset there "
                          "(pass offset=... if it was lost)")
    vocab = _twist_vocab(config, folder, offset, num_units)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype or torch.float32)
    return model, vocab


def load_state_dict(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All weights of an HF-style folder: ``model.safetensors``, a sharded safetensors index, or
    ``pytorch_model.bin`` (read with ``weights_only=True``; no foreign code runs).

    Raises:
        UnitLMError: no weights file, or an unreadable one.
    """
    from safetensors.torch import load_file

    d = Path(folder)
    try:
        if (d / "model.safetensors").is_file():
            return load_file(str(d / "model.safetensors"))
        if (d / "model.safetensors.index.json").is_file():
            index = json.loads((d / "model.safetensors.index.json").read_text())
            state = {}
            for shard in sorted(set(index["weight_map"].values())):
                state.update(load_file(str(d / shard)))
            return state
        if (d / "pytorch_model.bin").is_file():
            return torch.load(d / "pytorch_model.bin", map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read weights is a bad folder for the user
        raise UnitLMError(f"{d}: unreadable weights ({type(e).__name__}: {str(e)[:300]})") from None
    raise UnitLMError(f"{d}: no weights (model.safetensors, model.safetensors.index.json or pytorch_model.bin)")


def load_slamkit(folder: str | os.PathLike, *, dtype: torch.dtype | None = None):
    """Loads a slamkit unit LM folder (e.g. a ``slprl/slam_scaled`` download) as ``(hf_model, vocab)``.

    The wrapped LM is rebuilt from ``base_config`` with the unit ``vocab_size``; weights lose their ``lm.``
    prefix; a missing ``lm_head.weight`` is re-tied when ``tie_word_embeddings`` is set.

    Raises:
        UnitLMError: not a slamkit folder, or weights that do not match the config (names the keys).
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    d = Path(folder)
    config = read_hf_config(d)
    if config.get("model_type") != SLAMKIT_MODEL_TYPE or not isinstance(config.get("base_config"), dict):
        raise UnitLMError(f"{d}/config.json: not a slamkit unit LM (expected model_type "
                          f"{SLAMKIT_MODEL_TYPE!r} and a 'base_config' object)")
    base = dict(config["base_config"])
    model_type = base.pop("model_type", None)
    check_causal_lm(d, {"model_type": model_type, "architectures": base.get("architectures")})
    vocab_size = int(config.get("vocab_size", base.get("vocab_size", 0)))
    for key in ("torch_dtype", "dtype", "transformers_version", "_name_or_path"):
        base.pop(key, None)
    base["vocab_size"] = vocab_size
    hf_config = AutoConfig.for_model(model_type, **base)

    # slamkit's defaults (pad 0, <S> 1) unless the base config or a saved tokeniser_config.json say otherwise
    tok = {"pad_token_id": base.get("pad_token_id"), "bos_eos_token_id": base.get("bos_token_id")}
    if (d / "tokeniser_config.json").is_file():
        tok.update(json.loads((d / "tokeniser_config.json").read_text()))
    pad = 0 if tok["pad_token_id"] is None else int(tok["pad_token_id"])
    bos = 1 if tok["bos_eos_token_id"] is None else int(tok["bos_eos_token_id"])
    offset = max(pad, bos) + 1  # slamkit places units right after its special tokens
    num_units = int(tok.get("num_units", vocab_size - offset))
    vocab = UnitVocab(num_units=num_units, unit_offset=offset, bos_id=bos, eos_id=bos, pad_id=pad,
                      layout="slamkit", append_eos=True)
    vocab.validate()
    if vocab.min_vocab_size > vocab_size:
        raise UnitLMError(f"{d}: {num_units} units at offset {offset} do not fit vocab_size {vocab_size}")

    state = load_state_dict(d)
    if not all(k.startswith("lm.") for k in state):
        bad = next(k for k in state if not k.startswith("lm."))
        raise UnitLMError(f"{d}: slamkit weights are prefixed 'lm.'; found key {bad!r}")
    state = {k[3:]: v for k, v in state.items()}
    model = AutoModelForCausalLM.from_config(hf_config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = getattr(hf_config, "tie_word_embeddings", False)
    missing = [k for k in missing if not (tied and k == "lm_head.weight")]
    if missing or unexpected:
        raise UnitLMError(f"{d}: weights do not match the {model_type} config: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}")
    if tied:
        model.tie_weights()
    model.to(dtype or torch.float32)
    return model, vocab
