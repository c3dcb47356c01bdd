"""Building the transformers causal LM of a unit LM: TWIST warm start from a text LM, and cold start of the same
architecture. :meth:`UnitLM.warm_start <speechkit.ulm.model.UnitLM.warm_start>` and
:meth:`UnitLM.cold_start <speechkit.ulm.model.UnitLM.cold_start>` wrap what these functions build (this module does
not know :class:`~speechkit.ulm.model.UnitLM`).

**Warm start** (TWIST, Hassid et al. 2023) loads a pretrained HF causal LM, keeps every transformer weight
(attention, MLP, norms, position embeddings, OPT's ``project_in/out``) bit for bit, and swaps the text vocabulary
for the unit vocabulary (:meth:`UnitVocab.speechkit`: pad 0, BOS = EOS = 1, unit ``u`` -> ``u + 2``). The new rows
are initialised by ``embedding_init``:

- ``"text_stats"`` (default): every row drawn i.i.d. from ``N(mean, diag(std**2))``, where ``mean`` and ``std``
  are the per-dimension mean and standard deviation of the text LM's rows, so the kept layers receive inputs
  at the scale they were trained on; an untied LM head gets its rows the same way from the text LM's head (and a
  zero bias if it has one); a tied head stays tied to the new embedding.
- ``"text_rows"``: rows ``0 .. V-1`` of the text matrices, which is what transformers'
  ``resize_token_embeddings`` (and so slamkit's ``twist_init``) leaves behind; rows past the text vocabulary
  fall back to ``"text_stats"``.

**Cold start** builds the same architecture from its config with transformers' own random initialisation.
"""

from __future__ import annotations

import copy
import os

import torch

from speechkit.ulm.config import UnitLMError, UnitVocab

__all__ = ["EMBEDDING_INITS", "warm_start_model", "cold_start_model", "replace_vocabulary", "set_special_tokens"]

EMBEDDING_INITS = ("text_stats", "text_rows")


def _rows_like(old: torch.Tensor, n: int, generator: torch.Generator, init: str) -> torch.Tensor:
    """``(n, dim)`` new rows for a text matrix ``old`` ``(V_text, dim)`` following ``init``."""
    w = old.detach().float()
    mean, std = w.mean(0), w.std(0)
    rows = torch.randn(n, w.shape[1], generator=generator) * std + mean
    if init == "text_rows":
        k = min(n, w.shape[0])
        rows[:k] = w[:k]
    return rows.to(old.dtype)


def set_special_tokens(model, vocab: UnitVocab) -> None:
    """Writes the layout's pad/BOS/EOS ids into the HF config and generation config."""
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is None:
            continue
        cfg.pad_token_id = vocab.pad_id
        cfg.bos_token_id = vocab.bos_id
        cfg.eos_token_id = vocab.eos_id


def replace_vocabulary(model, vocab: UnitVocab, *, embedding_init: str = "text_stats", seed: int = 0) -> None:
    """Replaces the token embeddings and LM head of an HF causal LM by ``vocab.min_vocab_size`` new rows, in place.

    Every other parameter is left untouched. See the module docstring for ``embedding_init``.

    Args:
        model: a transformers causal LM.
        vocab: the unit layout.
        embedding_init: ``"text_stats"`` or ``"text_rows"``.
        seed: seed of the new rows.
    """
    if embedding_init not in EMBEDDING_INITS:
        raise UnitLMError(f"embedding_init must be one of {EMBEDDING_INITS}. Found {embedding_init!r}")
    size = vocab.min_vocab_size
    gen = torch.Generator().manual_seed(seed)
    emb_in, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head is not None and head.weight is emb_in.weight
    old_in = emb_in.weight.detach().clone()
    old_out = None if head is None or tied else head.weight.detach().clone()

    model.resize_token_embeddings(size, mean_resizing=False)
    emb_in, head = model.get_input_embeddings(), model.get_output_embeddings()
    with torch.no_grad():
        emb_in.weight.copy_(_rows_like(old_in, size, gen, embedding_init))
        if old_out is not None:
            head.weight.copy_(_rows_like(old_out, size, gen, embedding_init))
            if getattr(head, "bias", None) is not None:
                head.bias.zero_()
    model.config.vocab_size = size
    set_special_tokens(model, vocab)


def warm_start_model(text_lm_dir: str | os.PathLike, num_units: int, *, embedding_init: str = "text_stats",
                     seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple:
    """TWIST initialisation: the text LM of ``text_lm_dir`` with its vocabulary replaced by the unit vocabulary
    (:meth:`UnitVocab.speechkit`).

    Args:
        text_lm_dir: HF causal LM folder (OPT, Llama, Qwen2, GPT-2, ...).
        num_units: unit vocabulary size K.
        embedding_init: ``"text_stats"`` (default) or ``"text_rows"``; see the module docstring.
        seed: seed of the new embedding rows.
        dtype: parameter dtype (float32 for training; the text LM's own dtype is not kept).

    Returns:
        ``(model, vocab)``: the transformers causal LM and its :class:`UnitVocab`.

    Raises:
        UnitLMError: ``text_lm_dir`` is not a causal LM folder.
    """
    from transformers import AutoModelForCausalLM

    from speechkit.ulm.interop import check_causal_lm

    check_causal_lm(text_lm_dir)
    vocab = UnitVocab.speechkit(num_units)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(text_lm_dir), dtype=dtype)
    except (OSError, ValueError) as e:
        raise UnitLMError(f"{text_lm_dir}: could not load the text LM ({str(e)[:300]})") from None
    replace_vocabulary(model, vocab, embedding_init=embedding_init, seed=seed)
    return model, vocab


def cold_start_model(architecture, num_units: int, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple:
    """A causal LM of a given architecture over the unit vocabulary (:meth:`UnitVocab.speechkit`), randomly
    initialised (transformers' own init).

    Args:
        architecture: an HF causal LM folder (only its ``config.json`` is read) or a ``PretrainedConfig``.
        num_units: unit vocabulary size K.
        seed: seed of the random initialisation (the global RNG state is restored afterwards).
        dtype: parameter dtype.

    Returns:
        ``(model, vocab)``: the transformers causal LM and its :class:`UnitVocab`.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

    from speechkit.ulm.interop import check_causal_lm

    if isinstance(architecture, PretrainedConfig):
        config = copy.deepcopy(architecture)
        check_causal_lm(type(architecture).__name__, {"model_type": config.model_type,
                                                      "architectures": config.architectures})
    else:
        check_causal_lm(architecture)
        config = AutoConfig.from_pretrained(str(architecture))
    vocab = UnitVocab.speechkit(num_units)
    config.vocab_size = vocab.min_vocab_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config).to(dtype)
    set_special_tokens(model, vocab)
    return model, vocab
