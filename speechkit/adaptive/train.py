"""Training and threshold sweeps of early-exit classifiers (plain loops: the models are small)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import torch

from speechkit.adaptive.model import EarlyExitClassifier

__all__ = ["crop_batch", "train_early_exit", "exit_probabilities", "threshold_sweep"]

log = logging.getLogger(__name__)


def crop_batch(wavs: Sequence[torch.Tensor], crop_samples: int, rng: random.Random
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of random ``crop_samples`` windows (whole utterance when shorter).

    Returns:
        ``(wav (B, samples), lengths (B,))``.
    """
    crops = []
    for w in wavs:
        start = rng.randint(0, max(0, len(w) - crop_samples))
        crops.append(w[start: start + crop_samples])
    lengths = torch.tensor([len(c) for c in crops])
    batch = torch.zeros(len(crops), int(lengths.max()))
    for i, c in enumerate(crops):
        batch[i, : len(c)] = c
    return batch, lengths


def train_early_exit(model: EarlyExitClassifier, wavs: Sequence[torch.Tensor], labels: Sequence[int], *,
                     steps: int = 300, batch_size: int = 16, lr: float = 1e-3, crop_samples: int = 32000,
                     seed: int = 0, log_every: int = 50) -> list[float]:
    """Trains every exit with the summed cross-entropy (AdamW, linear decay); the mode decides what each loss
    updates.

    Args:
        model: the classifier (trained in place).
        wavs: ``(samples,)`` utterances at the encoder's rate.
        labels: class index per utterance.
        steps: optimiser steps.
        batch_size: utterances per step (sampled with replacement).
        lr: peak learning rate.
        crop_samples: random window per utterance and step.
        seed: sampling seed.
        log_every: log the loss every this many steps.

    Returns:
        the loss of each step.
    """
    if len(wavs) != len(labels) or not wavs:
        raise ValueError(f"need as many labels as utterances (>= 1). Found {len(wavs)} and {len(labels)}")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * (1 - s / max(steps, 1)))
    y_all = torch.as_tensor(list(labels))
    model.train()
    losses = []
    for step in range(steps):
        idx = [rng.randrange(len(wavs)) for _ in range(batch_size)]
        wav, lengths = crop_batch([wavs[i] for i in idx], crop_samples, rng)
        loss = model.loss(model(wav, lengths), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log_every and (step + 1) % log_every == 0:
            log.info("step %d loss %.4f", step + 1, sum(losses[-log_every:]) / log_every)
    model.eval()
    return losses


@torch.inference_mode()
def exit_probabilities(model: EarlyExitClassifier, wavs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Softmax of every exit for every utterance (one utterance at a time, so no padding enters).

    Returns:
        ``(N, num_exits, num_classes)``.
    """
    model.eval()
    return torch.stack([torch.stack([lg[0].float().softmax(-1) for lg in model(w.reshape(1, -1))]) for w in wavs])


def threshold_sweep(probs: torch.Tensor, labels: Sequence[int], costs: Sequence[int],
                    thresholds: Sequence[float]) -> list[dict]:
    """Accuracy and mean cost of threshold inference, computed from all exits' probabilities.

    The same decision rule as :meth:`EarlyExitClassifier.infer`: the first exit whose maximum probability is
    ``>= threshold`` answers, else the last.

    Args:
        probs: ``(N, E, C)`` from :func:`exit_probabilities`.
        labels: ``(N,)`` true classes.
        costs: ``(E,)`` layers run to reach each exit (:meth:`EarlyExitClassifier.exit_costs`).
        thresholds: values to try.

    Returns:
        one dict per threshold: ``threshold``, ``accuracy``, ``avg_layers``, ``exit_fractions`` (share of
        utterances answered by each exit).
    """
    y = torch.as_tensor(list(labels))
    conf, pred = probs.max(-1)  # (N, E)
    E = probs.shape[1]
    rows = []
    for t in thresholds:
        ok = conf >= t
        ok[:, -1] = True
        first = ok.float().argmax(1)  # (N,) first confident exit
        chosen = pred.gather(1, first[:, None])[:, 0]
        cost = torch.as_tensor(list(costs), dtype=torch.float64)[first]
        rows.append({"threshold": float(t), "accuracy": float((chosen == y).double().mean()),
                     "avg_layers": float(cost.mean()),
                     "exit_fractions": [float((first == k).double().mean()) for k in range(E)]})
    return rows
