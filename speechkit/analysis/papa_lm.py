"""PAPA for unit LMs (transformers causal LMs that route attention through ``ALL_ATTENTION_FUNCTIONS``, e.g.
Llama, Qwen2, Mistral): constant causal attention heads and a next-unit linear probe on frozen hidden states.

A custom attention function (``"papa"``, registered in transformers' attention and mask interfaces when
:func:`papa_lm_copy` is first called) computes eager attention, records it, or replaces chosen heads' attention
by their average. Sequences are processed one at a time and cropped to their first ``max_len`` tokens, so the
average is over the sequences long enough to reach each entry (as for HuBERT, see :mod:`.papa`) and a constant
``T x T`` matrix is the top-left block of the average; the average of causal matrices is causal, and its rows are
renormalised to sum to 1. Heads are replaced in order of increasing total-variation distance to constant.

The probe: multinomial logistic regression (full-batch L-BFGS, L2) from the last hidden state at position ``t`` to
the token at ``t + 1``, fit on frozen features of training sequences; reported as cross-entropy (nats) and accuracy
on held-out sequences.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["papa_lm_copy", "lm_record_average", "lm_head_distances", "lm_set_constant_heads", "lm_papa_probe"]

IMPL = "papa"


class _HeadState:
    def __init__(self, num_heads: int, max_len: int):
        self.mode, self.max_len = "normal", max_len
        self.constant = torch.zeros(num_heads, max_len, max_len)
        self.constant_heads = torch.zeros(num_heads, dtype=torch.bool)
        self.sum = torch.zeros(num_heads, max_len, max_len, dtype=torch.float64)
        self.count = torch.zeros(max_len, max_len)
        self.dist_sum, self.dist_n = torch.zeros(num_heads, dtype=torch.float64), 0

    def constant_for(self, T: int) -> torch.Tensor:
        c = self.constant[:, :T, :T]
        return c / c.sum(-1, keepdim=True).clamp(min=1e-30)


def _papa_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """``query`` ``(B, H, T, d)``; ``key``/``value`` ``(B, H_kv, T, d)`` -> ``((B, T, H, d), probs)``."""
    from transformers.models.llama.modeling_llama import eager_attention_forward, repeat_kv

    state: _HeadState = module.papa_state
    if state.mode == "normal" and not bool(state.constant_heads.any()):
        return eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout)
    T = query.shape[-2]
    if T > state.max_len:
        raise ValueError(f"papa attention: sequence of {T} tokens is longer than max_len {state.max_len}")
    if state.mode == "normal" and bool(state.constant_heads.all()):
        probs = state.constant_for(T)[None].expand(query.shape[0], -1, -1, -1).to(query.dtype)
    else:
        _, probs = eager_attention_forward(module, query, key, value, attention_mask, scaling, 0.0)
        if state.mode == "record":
            state.sum[:, :T, :T] += probs.detach()[0].double()
            state.count[:T, :T] += 1
        elif state.mode == "distance":
            state.dist_sum += 0.5 * (probs.detach()[0] - state.constant_for(T)).abs().sum(-1).mean(-1).double()
            state.dist_n += 1
        else:
            const = state.constant_for(T)[None].to(probs.dtype)
            probs = torch.where(state.constant_heads[None, :, None, None], const, probs)
    v = repeat_kv(value, module.num_key_value_groups)
    return (probs @ v).transpose(1, 2).contiguous(), probs


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(IMPL, _papa_attention)
    AttentionMaskInterface.register(IMPL, ALL_MASK_ATTENTION_FUNCTIONS["eager"])


def papa_lm_copy(model, max_len: int = 128):
    """A deep copy of an HF causal LM (eval mode) whose attention layers carry PAPA state.

    Returns:
        ``(copy, states in layer order)``.
    """
    _register()
    m = copy.deepcopy(model).eval()
    m.config._attn_implementation = IMPL
    states = []
    for layer in m.model.layers:
        attn = layer.self_attn
        attn.config._attn_implementation = IMPL
        attn.papa_state = _HeadState(m.config.num_attention_heads, max_len)
        states.append(attn.papa_state)
    return m, states


def _hidden(model, seqs: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    out = []
    with torch.inference_mode():
        for s in seqs:
            h = model(torch.tensor([list(s)]), output_hidden_states=True).hidden_states[-1][0]  # (T, dim)
            out.append(h.float())
    return out


def lm_record_average(model, states, seqs) -> None:
    """Averages every head's attention over ``seqs`` and stores it as the constant matrices."""
    for s in states:
        s.mode, s.sum, s.count = "record", torch.zeros_like(s.sum), torch.zeros_like(s.count)
    _hidden(model, seqs)
    for s in states:
        s.constant = (s.sum / s.count.clamp(min=1)).float()
        s.mode = "normal"


def lm_head_distances(model, states, seqs) -> torch.Tensor:
    """``(layers, H)`` mean total-variation distance of each head's rows to its constant rows."""
    for s in states:
        s.mode, s.dist_sum, s.dist_n = "distance", torch.zeros_like(s.dist_sum), 0
    _hidden(model, seqs)
    for s in states:
        s.mode = "normal"
    return torch.stack([(s.dist_sum / max(s.dist_n, 1)).float() for s in states])


def lm_set_constant_heads(states, mask: torch.Tensor) -> None:
    """Makes the heads of ``mask`` ``(layers, H)`` constant."""
    for s, m in zip(states, mask, strict=True):
        s.constant_heads = m.clone()


def _fit_probe(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float = 1e-4, steps: int = 100):
    torch.manual_seed(0)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    w = torch.zeros(x.shape[1], num_classes, requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")
    xs = (x - mean) / std

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xs @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lambda z: ((z - mean) / std) @ w.detach() + b.detach()


def lm_papa_probe(model, train_seqs, eval_seqs, *, vocab_size: int, fractions=(0.0, 0.5, 1.0), max_len: int = 128,
                  calibration: int = 64) -> dict:
    """PAPA on a causal LM: for each fraction of constant heads, a next-token probe on the last hidden states.

    Args:
        model: the HF causal LM (not modified).
        train_seqs: token id sequences (cropped to ``max_len``) for the averages (first ``calibration``) and the
            probe's fit.
        eval_seqs: held-out token id sequences.
        vocab_size: probe classes.
        fractions: fractions of heads replaced; the first must be 0.
        max_len: tokens kept per sequence and side of the average grid.
        calibration: sequences averaged.

    Returns:
        ``{"heads", "distances", "rows": [{"fraction", "heads_replaced", "probe_loss", "probe_acc",
        "loss_relative_increase", "acc_relative_drop"}]}``.
    """
    from speechkit.analysis.papa import select_heads

    if not fractions or fractions[0] != 0:
        raise ValueError(f"fractions must start with 0 (the reference of the relative changes). Found {fractions}")
    train_seqs = [list(s)[:max_len] for s in train_seqs if len(s) >= 2]
    eval_seqs = [list(s)[:max_len] for s in eval_seqs if len(s) >= 2]
    m, states = papa_lm_copy(model, max_len)
    lm_record_average(m, states, train_seqs[:calibration])
    dist = lm_head_distances(m, states, train_seqs[:calibration])

    def xy(seqs):
        hs = _hidden(m, seqs)
        return torch.cat([h[:-1] for h in hs]), torch.cat([torch.tensor(s[1:]) for s in seqs])

    rows = []
    for f in fractions:
        mask = select_heads(dist, f)
        lm_set_constant_heads(states, mask)
        tx, ty = xy(train_seqs)
        ex, ey = xy(eval_seqs)
        probe = _fit_probe(tx, ty, vocab_size)
        logits = probe(ex)
        row = {"fraction": float(f), "heads_replaced": int(mask.sum()),
               "probe_loss": float(F.cross_entropy(logits, ey)),
               "probe_acc": float((logits.argmax(-1) == ey).float().mean())}
        base = rows[0] if rows else row
        row["loss_relative_increase"] = (row["probe_loss"] - base["probe_loss"]) / base["probe_loss"]
        row["acc_relative_drop"] = (base["probe_acc"] - row["probe_acc"]) / max(base["probe_acc"], 1e-12)
        rows.append(row)
    return {"heads": int(dist.numel()), "distances": dist.tolist(), "rows": rows}
