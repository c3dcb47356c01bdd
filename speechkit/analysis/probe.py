"""The PAPA experiment: a linear probe on frozen encoder features with 0 / some / all attention heads constant."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from speechkit.analysis.papa import (
    head_distances,
    probed_copy,
    record_average_attention,
    select_heads,
    set_constant_heads,
)
from speechkit.units.hubert.model import HubertModel

__all__ = ["pooled_features", "probe_accuracy", "papa_probe"]


def pooled_features(model: HubertModel, wavs: Sequence[torch.Tensor], output_layer: int | None = None
                    ) -> np.ndarray:
    """``(N, 2 * dim)``: mean and standard deviation over frames of the encoder output (or ``output_layer``)."""
    out = []
    with torch.inference_mode():
        for w in wavs:
            x, _ = model(w.reshape(1, -1), output_layer=output_layer)
            out.append(torch.cat([x[0].mean(0), x[0].std(0, unbiased=False)]).double().numpy())
    return np.stack(out)


def probe_accuracy(train_x: np.ndarray, train_y: Sequence[int], test_x: np.ndarray, test_y: Sequence[int], *,
                   c: float = 1.0) -> float:
    """Accuracy of a standardised multinomial logistic regression (scikit-learn, L2 ``1/c``) fit on the train
    features."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = train_x.mean(0), train_x.std(0)
    scale[scale < 1e-8] = 1.0
    clf = LogisticRegression(C=c, max_iter=3000).fit((train_x - mean) / scale, list(train_y))
    return float((clf.predict((test_x - mean) / scale) == np.asarray(test_y)).mean())


def papa_probe(model: HubertModel, train: Sequence[dict], evaluation: Sequence[dict], *,
               tasks: Sequence[str] = ("style", "speaker"), fractions: Sequence[float] = (0.0, 0.5, 1.0),
               max_len: int = 256, calibration: int = 64, output_layer: int | None = None) -> dict:
    """Runs PAPA: averages attention over ``calibration`` train utterances, ranks heads by distance to constant,
    and for each fraction of constant heads fits a probe per task on frozen features.

    Args:
        model: the encoder (not modified; a probed copy is used).
        train: dicts with ``wav`` and one label key per task (:func:`speechkit.adaptive.data.read_utterances`).
        evaluation: the same, scored.
        tasks: label keys.
        fractions: fractions of heads replaced (0 = the normal model).
        max_len: side of the average-attention grid, frames.
        calibration: train utterances used for averages and the criterion.
        output_layer: probe this layer's output (``None``: the full encoder).

    Returns:
        ``{"heads": total, "distances": (layers, H) list, "rows": [{"fraction", "heads_replaced", task: acc,
        task + "_relative_drop": drop, ...}]}`` with drop = ``(acc_0 - acc) / acc_0`` against fraction 0.
    """
    if not fractions or fractions[0] != 0:
        raise ValueError(f"fractions must start with 0 (the reference of the relative drops). Found {fractions}")
    probed, blocks = probed_copy(model, max_len)
    calib = [u["wav"] for u in train[:calibration]]
    record_average_attention(probed, blocks, calib)
    dist = head_distances(probed, blocks, calib)
    labels = {t: sorted({u[t] for u in train}) for t in tasks}
    rows, base = [], {}
    for f in fractions:
        mask = select_heads(dist, f)
        set_constant_heads(blocks, mask)
        tx = pooled_features(probed, [u["wav"] for u in train], output_layer)
        ex = pooled_features(probed, [u["wav"] for u in evaluation], output_layer)
        row = {"fraction": float(f), "heads_replaced": int(mask.sum())}
        for t in tasks:
            acc = probe_accuracy(tx, [labels[t].index(u[t]) for u in train], ex,
                                 [labels[t].index(u[t]) for u in evaluation])
            base.setdefault(t, acc)
            row[t] = acc
            row[f"{t}_relative_drop"] = (base[t] - acc) / base[t] if base[t] > 0 else float("nan")
        rows.append(row)
    set_constant_heads(blocks, torch.zeros_like(dist, dtype=torch.bool))
    return {"heads": int(dist.numel()), "distances": dist.tolist(), "rows": rows}
