"""Early-exit classifiers over a HuBERT-style encoder: SWEET, shared early exit and multi-model.

An utterance goes through the encoder's front end (convolutions, feature projection, positional convolution),
then transformer layers; after each exit layer a small head (masked mean and standard deviation over frames, layer
norm, linear) gives class logits. The three modes differ only in which weights an exit's loss may update:

* ``sweet`` (Separating Weights in Early Exit Transformers): the layers between exit ``k-1`` and exit ``k`` form
  segment ``k``; the hidden state entering a segment is detached, so exit ``k``'s loss updates segment ``k`` and
  head ``k`` only (segment 1 includes the front end). At inference the state simply flows on.
* ``early_exit``: one shared backbone; the exits' losses are summed and each reaches all layers below it.
* ``multi_model``: an independent encoder per exit, exit ``k``'s of depth ``exit_layers[k]``; running exit ``k``
  after exit ``k-1`` was not confident costs its full depth again.

Cost is counted in transformer layers run (the front end is the same for every exit and counted once per encoder
call in wall time only): exit ``k`` costs ``exit_layers[k]`` layers for ``sweet``/``early_exit`` and
``sum(exit_layers[:k+1])`` for ``multi_model``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from speechkit.units.hubert.model import HubertModel

__all__ = ["ExitHead", "EarlyExitClassifier", "EarlyExitResult", "encoder_prelude"]


def encoder_prelude(model: HubertModel, wav: torch.Tensor, lengths: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The input of the first transformer layer, exactly as :meth:`HubertModel.forward` computes it.

    Args:
        model: the encoder.
        wav: ``(B, samples)``.
        lengths: ``(B,)`` valid samples, or ``None``.

    Returns:
        ``(x (B, frames, dim), padding_mask (B, frames) True on padding or None, frame_lengths (B,) or None)``.
    """
    x, padding_mask, frame_lengths = model.embed(wav, lengths)
    return model.encoder.prepare(x, padding_mask), padding_mask, frame_lengths


class ExitHead(nn.Module):
    """Utterance classifier on frame features: masked mean and standard deviation over frames, layer norm, linear.

    Args:
        dim: feature width.
        num_classes: output classes.
    """

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.norm = nn.LayerNorm(2 * dim)
        self.proj = nn.Linear(2 * dim, num_classes)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, T, dim)`` -> logits ``(B, num_classes)``; padded frames are left out of the statistics."""
        valid = x.new_ones(x.shape[:2]) if padding_mask is None else (~padding_mask).to(x.dtype)  # (B, T)
        n = valid.sum(1, keepdim=True).clamp(min=1)[..., None]  # (B, 1, 1)
        mean = (x * valid[..., None]).sum(1, keepdim=True) / n  # (B, 1, dim)
        var = (((x - mean) ** 2) * valid[..., None]).sum(1, keepdim=True) / n
        pooled = torch.cat([mean, (var + 1e-6).sqrt()], dim=-1)[:, 0]  # (B, 2 * dim)
        return self.proj(self.norm(pooled))


@dataclass
class EarlyExitResult:
    """What threshold inference did for one utterance.

    Attributes:
        prediction: the class index of the exit that answered.
        exit_index: 0-based index of that exit.
        layers_run: transformer layers run (see the module docstring for the cost of each mode).
        confidence: its maximum softmax probability.
        probs: ``(num_classes,)`` its softmax.
    """

    prediction: int
    exit_index: int
    layers_run: int
    confidence: float
    probs: torch.Tensor


class EarlyExitClassifier(nn.Module):
    """Classifier with exits after chosen layers of a HuBERT-style encoder.

    Args:
        encoder: the backbone (copied; for ``multi_model`` one truncated copy per exit). Layers above the last exit
            are dropped.
        exit_layers: 1-based layers after which an exit sits, strictly increasing.
        num_classes: output classes of every exit.
        mode: ``"sweet"``, ``"early_exit"`` or ``"multi_model"``.

    Example:
        >>> clf = EarlyExitClassifier(build_hubert(cfg), [1, 2, 4], num_classes=5, mode="sweet")
        >>> logits = clf(wav, lengths)          # list of (B, 5), one per exit
        >>> clf.infer(wav[0], threshold=0.9)   # EarlyExitResult(prediction=.., exit_index=.., layers_run=..)
    """

    def __init__(self, encoder: HubertModel, exit_layers: Sequence[int], num_classes: int, *, mode: str):
        super().__init__()
        from speechkit.adaptive.config import MODES

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}. Found {mode!r}")
        self.exit_layers, self.mode = [int(e) for e in exit_layers], mode
        depth = len(encoder.encoder.layers)
        if not self.exit_layers or self.exit_layers[0] < 1 or self.exit_layers[-1] > depth or any(
                b <= a for a, b in zip(self.exit_layers, self.exit_layers[1:], strict=False)):
            raise ValueError(f"exit_layers must be strictly increasing in [1, {depth}]. Found {self.exit_layers}")
        copies = len(self.exit_layers) if mode == "multi_model" else 1
        backbones = []
        for k in range(copies):
            m = copy.deepcopy(encoder)
            keep = self.exit_layers[k] if mode == "multi_model" else self.exit_layers[-1]
            m.encoder.layers = m.encoder.layers[:keep]
            backbones.append(m)
        self.backbones = nn.ModuleList(backbones)
        dim = encoder.encoder.layer_norm.normalized_shape[0]
        self.heads = nn.ModuleList(ExitHead(dim, num_classes) for _ in self.exit_layers)

    @property
    def num_exits(self) -> int:
        return len(self.exit_layers)

    def exit_costs(self) -> list[int]:
        """Transformer layers run to reach each exit (cumulative over models for ``multi_model``)."""
        if self.mode == "multi_model":
            return [sum(self.exit_layers[: k + 1]) for k in range(self.num_exits)]
        return list(self.exit_layers)

    def segments(self) -> list[list[nn.Module]]:
        """The modules each exit's loss may update: for ``sweet`` the front end goes with exit 0 and the layers
        ``(exit_layers[k-1], exit_layers[k]]`` with exit ``k``; for ``multi_model`` each exit's whole encoder."""
        if self.mode == "multi_model":
            return [[b, h] for b, h in zip(self.backbones, self.heads, strict=False)]
        enc = self.backbones[0]
        out, lo = [], 0
        for k, hi in enumerate(self.exit_layers):
            mods = [m for n, m in enc.named_children() if n != "encoder"] + [enc.encoder.pos_conv,
                                                                            enc.encoder.layer_norm] if k == 0 else []
            out.append(mods + list(enc.encoder.layers[lo:hi]) + [self.heads[k]])
            lo = hi
        return out

    def _exits(self, wav: torch.Tensor, lengths: torch.Tensor | None, upto: int):
        """Yields ``(k, logits (B, C))`` for exits ``0..upto`` in order, running only the layers needed."""
        if self.mode == "multi_model":
            for k in range(upto + 1):
                enc = self.backbones[k]
                x, mask, _ = encoder_prelude(enc, wav, lengths)
                for layer in enc.encoder.layers:
                    x = layer(x, mask)
                yield k, self.heads[k](x, mask)
            return
        enc = self.backbones[0]
        x, mask, _ = encoder_prelude(enc, wav, lengths)
        lo = 0
        for k in range(upto + 1):
            if self.mode == "sweet" and k > 0 and self.training:
                x = x.detach()  # SWEET: later exits' losses stop here, earlier segments are theirs alone
            for layer in enc.encoder.layers[lo: self.exit_layers[k]]:
                x = layer(x, mask)
            lo = self.exit_layers[k]
            yield k, self.heads[k](x, mask)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Logits of every exit.

        Args:
            wav: ``(B, samples)`` at the encoder's sample rate.
            lengths: ``(B,)`` valid samples, or ``None`` when no row is padded.

        Returns:
            one ``(B, num_classes)`` tensor per exit, shallowest first.
        """
        return [logits for _, logits in self._exits(wav, lengths, self.num_exits - 1)]

    @staticmethod
    def loss(logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Sum over exits of the cross-entropy of ``(B, C)`` logits against ``(B,)`` labels (every mode; what an
        exit's loss may update is set by the mode's gradient stops / separate backbones)."""
        return sum(nn.functional.cross_entropy(lg, labels) for lg in logits)

    @torch.inference_mode()
    def infer(self, wav: torch.Tensor, threshold: float) -> EarlyExitResult:
        """Threshold inference on one utterance: runs exits in order and stops at the first whose maximum softmax
        probability is ``>= threshold`` (the last exit answers otherwise).

        Args:
            wav: ``(samples,)`` at the encoder's sample rate.
            threshold: confidence in ``[0, 1]``; 0 always stops at the first exit, above 1 always runs all.

        Returns:
            an :class:`EarlyExitResult`.
        """
        costs = self.exit_costs()
        for k, logits in self._exits(wav.reshape(1, -1), None, self.num_exits - 1):
            probs = logits[0].float().softmax(-1)
            conf = float(probs.max())
            if conf >= threshold or k == self.num_exits - 1:
                return EarlyExitResult(int(probs.argmax()), k, costs[k], conf, probs)
        raise AssertionError("unreachable: the last exit always answers")
