"""Sampling from a unit LM: temperature, top-k, top-p, restricted to unit tokens, seeded.

The loop is written out (rather than calling ``model.generate``) so that only unit tokens (and the end token)
can ever be drawn, and so that a seed reproduces a sample exactly on any machine: sampling draws from a CPU
``torch.Generator``.
"""

from __future__ import annotations

import torch

from speechkit.ulm.config import UnitLMError, UnitVocab

__all__ = ["check_sampling", "filter_logits", "sample_units"]


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raises :class:`UnitLMError` for out-of-range sampling arguments."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise UnitLMError(f"max_new_tokens must be an integer >= 0. Found {max_new_tokens!r}")
    if temperature < 0:
        raise UnitLMError(f"temperature must be >= 0 (0 means greedy). Found {temperature}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise UnitLMError(f"top_k must be None or an integer >= 1. Found {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise UnitLMError(f"top_p must be None or in (0, 1]. Found {top_p}")


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Sets to ``-inf`` the logits outside the top-k and outside the nucleus of mass ``top_p``.

    Args:
        logits: ``(vocab,)`` already divided by the temperature.
        top_k: keep the k largest (ties at the k-th value are kept).
        top_p: keep the smallest set of largest-probability tokens whose mass reaches ``top_p`` (always >= 1).

    Returns:
        ``(vocab,)`` filtered logits.
    """
    logits = logits.clone()
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits[logits < kth] = float("-inf")
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = sorted_logits.softmax(-1)
        mass_before = probs.cumsum(-1) - probs  # probability mass strictly above each token
        drop = mass_before >= top_p
        logits[order[drop]] = float("-inf")
    return logits


@torch.inference_mode()
def sample_units(model, vocab: UnitVocab, prompt_ids: list[int], *, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 stop_on_eos: bool = True) -> torch.Tensor:
    """Continues ``prompt_ids`` with unit tokens, one token at a time, using the model's KV cache.

    Args:
        model: HF causal LM (eval mode).
        vocab: unit layout; only its unit tokens (and ``eos_id`` when ``stop_on_eos``) can be drawn.
        prompt_ids: token ids (specials included), at least one.
        max_new_tokens: upper bound on the generated units.
        temperature: softmax temperature; 0 picks the most likely unit (greedy).
        top_k, top_p: see :func:`filter_logits`.
        seed: seed of the CPU generator that draws samples (``None``: torch's global generator).
        stop_on_eos: stop when the end token is drawn (it is not returned).

    Returns:
        ``(new_units,)`` int64 unit ids in ``[0, vocab.num_units)`` (the prompt is not included).
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    size = model.get_output_embeddings().weight.shape[0]
    allowed = torch.zeros(size, dtype=torch.bool)
    allowed[vocab.unit_offset:vocab.unit_offset + vocab.num_units] = True
    eos = vocab.eos_id if stop_on_eos else None
    if eos is not None:
        allowed[eos] = True

    new: list[int] = []
    past = None
    step_ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    for _ in range(max_new_tokens):
        out = model(input_ids=step_ids, past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[0, -1].float().cpu()
        logits[~allowed] = float("-inf")
        if temperature == 0:
            token = int(logits.argmax())
        else:
            probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)
            token = int(torch.multinomial(probs, 1, generator=gen))
        if token == eos:
            break
        new.append(token - vocab.unit_offset)
        step_ids = torch.tensor([[token]], dtype=torch.long, device=device)
    return torch.tensor(new, dtype=torch.long)
