"""PAPA (probing with constant attention) for HuBERT-style encoders.

Each self-attention block of a copy of the encoder is replaced by a :class:`ProbedAttention` that shares its
projections and can (1) record attention probabilities, (2) replace chosen heads' input-dependent attention
matrices by constant ones: the average attention over a set of inputs. A probe trained on frozen features then
shows how much the input-dependent attention matters.

Variable lengths (frames): averages live on a fixed ``max_len x max_len`` grid. An input of ``T`` valid frames
adds its ``min(T, max_len)`` top-left block to the sum and increments the count of those entries, so entry
``(i, j)`` is the mean over the inputs long enough to have it (inputs longer than ``max_len`` are cropped to
their first ``max_len`` queries and keys for averaging). At use time an input of ``T`` frames gets the top-left
``T x T`` block when ``T <= max_len``, else the whole grid resized to ``T x T`` by bilinear interpolation; padded
keys are zeroed and each row is renormalised to sum to 1 (a cropped row no longer does). Entries never observed
count as 0 (a row with no observed entry becomes uniform over the valid keys).

Head-replacement criterion (partial replacement): for each head, the mean total-variation distance between its
input-specific attention rows and the constant rows, over the calibration inputs; the heads with the *smallest*
distance (those already closest to constant) are replaced first.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from speechkit.units.hubert.model import HubertModel, SelfAttention

__all__ = ["ProbedAttention", "probed_copy", "record_average_attention", "head_distances", "select_heads",
           "set_constant_heads"]


class ProbedAttention(nn.Module):
    """Self-attention with the projections of a :class:`SelfAttention` that can record its attention and replace
    heads by constant matrices.

    Args:
        attention: the block whose ``q_proj``/``k_proj``/``v_proj``/``out_proj`` (and head count) it uses.
        max_len: side of the grid that holds the average attention matrices (frames).
    """

    def __init__(self, attention: SelfAttention, max_len: int):
        super().__init__()
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1. Found {max_len}")
        self.num_heads, self.max_len = attention.num_heads, max_len
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (attention.q_proj, attention.k_proj,
                                                                attention.v_proj, attention.out_proj)
        self.register_buffer("constant", torch.zeros(self.num_heads, max_len, max_len))  # (H, L, L)
        self.register_buffer("constant_heads", torch.zeros(self.num_heads, dtype=torch.bool))  # (H,)
        self.mode = "normal"  # "record": accumulate sums; "distance": accumulate distance to the constant
        self.reset_stats()

    def reset_stats(self) -> None:
        L = self.max_len
        self.sum, self.count = torch.zeros(self.num_heads, L, L, dtype=torch.float64), torch.zeros(L, L)
        self.dist_sum, self.dist_n = torch.zeros(self.num_heads, dtype=torch.float64), 0

    def average(self) -> torch.Tensor:
        """``(H, max_len, max_len)``: recorded mean attention (0 where no input reached an entry)."""
        return (self.sum / self.count.clamp(min=1)).float()

    def constant_for(self, T: int, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """The constant attention for ``T`` frames: ``(B or 1, H, T, T)``, rows summing to 1 over valid keys."""
        c = self.constant
        if T <= self.max_len:
            c = c[:, :T, :T]
        else:
            c = F.interpolate(c[None], size=(T, T), mode="bilinear", align_corners=True)[0]
        c = c[None]  # (1, H, T, T)
        valid = None if padding_mask is None else (~padding_mask)[:, None, None, :].to(c.dtype)  # (B, 1, 1, T)
        if valid is not None:
            c = c * valid
        s = c.sum(-1, keepdim=True)
        uniform = (valid if valid is not None else torch.ones_like(c[..., :1, :])).expand_as(c)
        uniform = uniform / uniform.sum(-1, keepdim=True).clamp(min=1)
        return torch.where(s > 0, c / s.clamp(min=1e-30), uniform)

    def _probs(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        h = self.num_heads
        q, k = (p(x).view(B, T, h, C // h).transpose(1, 2) for p in (self.q_proj, self.k_proj))  # (B, h, T, d)
        scores = q @ k.transpose(-1, -2) / math.sqrt(C // h)  # (B, h, T, T)
        if padding_mask is not None:
            scores = scores.masked_fill(padding_mask[:, None, None, :], float("-inf"))
        return scores.softmax(-1)

    def _record(self, probs: torch.Tensor, padding_mask: torch.Tensor | None) -> None:
        T = probs.shape[-1]
        lengths = [T] * len(probs) if padding_mask is None else (~padding_mask).sum(1).tolist()
        for b, n in enumerate(lengths):
            n = min(int(n), self.max_len)
            if self.mode == "record":
                self.sum[:, :n, :n] += probs[b, :, :n, :n].double()
                self.count[:n, :n] += 1
            else:  # distance of the input's rows to the constant rows (valid queries only)
                full = int(lengths[b])
                const = self.constant_for(full, None)[0]  # (H, full, full)
                tv = 0.5 * (probs[b, :, :full, :full] - const).abs().sum(-1).mean(-1)  # (H,)
                self.dist_sum += tv.double()
                self.dist_n += 1

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, T, C)`` -> ``(B, T, C)``; constant heads never compute queries or keys."""
        B, T, C = x.shape
        h = self.num_heads
        v = self.v_proj(x).view(B, T, h, C // h).transpose(1, 2)  # (B, h, T, d)
        if self.mode == "normal" and not bool(self.constant_heads.any()):
            q, k = (p(x).view(B, T, h, C // h).transpose(1, 2) for p in (self.q_proj, self.k_proj))
            mask = None if padding_mask is None else ~padding_mask[:, None, None, :]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            if self.mode == "normal" and bool(self.constant_heads.all()):
                probs = self.constant_for(T, padding_mask).expand(B, h, T, T)
            else:
                probs = self._probs(x, padding_mask)
                if self.mode != "normal":
                    self._record(probs.detach(), padding_mask)
                if self.mode == "normal":
                    const = self.constant_for(T, padding_mask).expand(B, h, T, T)
                    probs = torch.where(self.constant_heads[None, :, None, None], const, probs)
            y = probs @ v
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))


def probed_copy(model: HubertModel, max_len: int = 256) -> tuple[HubertModel, list[ProbedAttention]]:
    """A deep copy of ``model`` (eval mode) whose attention blocks are :class:`ProbedAttention` s; the original is
    untouched. Returns ``(copy, blocks in layer order)``."""
    m = copy.deepcopy(model).eval()
    blocks = []
    for layer in m.encoder.layers:
        layer.attention = ProbedAttention(layer.attention, max_len)
        blocks.append(layer.attention)
    return m, blocks


def _run(model: HubertModel, wavs: Sequence[torch.Tensor], output_layer: int | None) -> None:
    with torch.inference_mode():
        for w in wavs:
            model(w.reshape(1, -1), output_layer=output_layer)


def record_average_attention(model: HubertModel, blocks: Sequence[ProbedAttention], wavs: Sequence[torch.Tensor]
                             ) -> torch.Tensor:
    """Records every block's attention over ``wavs`` (one at a time) and stores the averages as the constant
    matrices. Returns ``(layers, H, max_len, max_len)``."""
    for b in blocks:
        b.mode = "record"
        b.reset_stats()
    _run(model, wavs, None)
    for b in blocks:
        b.constant.copy_(b.average())
        b.mode = "normal"
    return torch.stack([b.constant for b in blocks])


def head_distances(model: HubertModel, blocks: Sequence[ProbedAttention], wavs: Sequence[torch.Tensor]
                   ) -> torch.Tensor:
    """``(layers, H)``: mean total-variation distance between each head's attention rows and its constant rows
    over ``wavs`` (the replacement criterion: smallest first). Run after :func:`record_average_attention`."""
    saved = [b.constant_heads.clone() for b in blocks]
    for b in blocks:
        b.mode, b.dist_sum, b.dist_n = "distance", torch.zeros(b.num_heads, dtype=torch.float64), 0
        b.constant_heads.zero_()  # distances are measured on the model with normal attention
    _run(model, wavs, None)
    for b, s in zip(blocks, saved, strict=True):
        b.mode = "normal"
        b.constant_heads.copy_(s)
    return torch.stack([(b.dist_sum / max(b.dist_n, 1)).float() for b in blocks])


def select_heads(distances: torch.Tensor, fraction: float) -> torch.Tensor:
    """``(layers, H)`` bool: the ``round(fraction * layers * H)`` heads with the smallest distance.

    Raises:
        ValueError: ``fraction`` outside ``[0, 1]``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction of heads to replace must be in [0, 1]. Found {fraction}")
    n = round(fraction * distances.numel())
    mask = torch.zeros(distances.numel(), dtype=torch.bool)
    mask[torch.argsort(distances.flatten(), stable=True)[:n]] = True
    return mask.view_as(distances)


def set_constant_heads(blocks: Sequence[ProbedAttention], mask: torch.Tensor) -> None:
    """Makes the heads of ``mask`` ``(layers, H)`` constant (and every other head input-dependent)."""
    if mask.shape != (len(blocks), blocks[0].num_heads):
        raise ValueError(f"head mask must be (layers, heads) = {(len(blocks), blocks[0].num_heads)}. "
                         f"Found {tuple(mask.shape)}")
    for b, m in zip(blocks, mask, strict=True):
        b.constant_heads.copy_(m)
