"""Style (expressive style / emotion) classifier for style accuracy of resynthesised speech.

The classifier of the Expresso paper is a fine-tuned wav2vec2; speechkit's is a probe that trains in seconds on a
CPU: the features of one layer of any HuBERT-style model (:class:`~speechkit.units.HubertFeatureReader`, or MFCCs
via :class:`~speechkit.units.mfcc.MfccFeatureReader`) are pooled over time (mean, standard deviation and mean
frame-to-frame change per dimension), standardised, and classified by multinomial logistic regression
(scikit-learn, L2).

A saved classifier is a folder: ``classifier.safetensors`` (weights, bias, feature mean and scale),
``classifier.json`` (styles, feature kind, layer) and ``hubert/`` (the feature model) for HuBERT features.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from speechkit.errors import SpeechkitError

__all__ = ["StyleClassifier", "pooled_features"]


def pooled_features(reader, wav: torch.Tensor, sample_rate: int) -> np.ndarray:
    """``(3 * dim,)``: mean, standard deviation and mean absolute frame-to-frame change (how fast the features
    move: speaking rate) over frames of ``reader``'s features of ``wav`` (any rate)."""
    from speechkit.audio.io import resample

    x = resample(torch.as_tensor(wav, dtype=torch.float32).reshape(-1), sample_rate, reader.expected_sample_rate)
    with torch.inference_mode():
        feats = reader(x).double()  # (frames, dim)
    if len(feats) < 2:
        zeros = torch.zeros(feats.shape[1], dtype=torch.float64)
        return torch.cat([feats.mean(0), zeros, zeros]).numpy()
    change = (feats[1:] - feats[:-1]).abs().mean(0)
    return torch.cat([feats.mean(0), feats.std(0, unbiased=False), change]).numpy()


class StyleClassifier:
    """Pooled-feature logistic-regression style classifier.

    Args:
        reader: feature reader (``HubertFeatureReader`` or ``MfccFeatureReader``).
        styles: class names, in the order of the weight rows.
        weight: ``(num_styles, 3 * dim)``.
        bias: ``(num_styles,)``.
        mean: ``(3 * dim,)`` feature mean used for standardisation.
        scale: ``(3 * dim,)`` feature scale.

    Example:
        >>> clf = StyleClassifier.train(reader, [(wav, sr, "happy"), (wav2, sr2, "sad"), ...])
        >>> clf.predict(wav, 16000)
        'happy'
        >>> clf.save_pretrained("exp/style"); StyleClassifier.from_pretrained("exp/style")
    """

    def __init__(self, reader, styles: list[str], weight: np.ndarray, bias: np.ndarray, mean: np.ndarray,
                 scale: np.ndarray):
        self.reader, self.styles = reader, list(styles)
        self.weight, self.bias = np.asarray(weight, np.float64), np.asarray(bias, np.float64)
        self.mean, self.scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        if self.weight.shape != (len(self.styles), len(self.mean)) or self.bias.shape != (len(self.styles),):
            raise ValueError(f"weight {self.weight.shape} / bias {self.bias.shape} do not match {len(self.styles)} "
                             f"styles and {len(self.mean)} features")

    @classmethod
    def train(cls, reader, examples: Iterable[tuple[torch.Tensor, int, str]], *, c: float = 0.1,
              max_iter: int = 2000) -> StyleClassifier:
        """Fits the classifier on ``(wav, sample_rate, style)`` examples.

        Args:
            reader: the feature reader.
            examples: labelled audio.
            c: inverse L2 strength of the logistic regression.
            max_iter: solver iterations.

        Raises:
            ValueError: fewer than two styles among the examples.
        """
        from sklearn.linear_model import LogisticRegression

        feats, labels = [], []
        for wav, sr, style in examples:
            feats.append(pooled_features(reader, wav, sr))
            labels.append(style)
        styles = sorted(set(labels))
        if len(styles) < 2:
            raise ValueError(f"a style classifier needs examples of at least two styles. Found {styles}")
        x = np.stack(feats)
        mean, scale = x.mean(0), x.std(0)
        scale[scale < 1e-8] = 1.0
        model = LogisticRegression(C=c, max_iter=max_iter).fit((x - mean) / scale, [styles.index(s) for s in labels])
        weight, bias = model.coef_, model.intercept_
        if len(styles) == 2:  # sklearn keeps one row for two classes: make it a two-row softmax
            weight, bias = np.concatenate([-weight / 2, weight / 2]), np.array([-bias[0] / 2, bias[0] / 2])
        return cls(reader, styles, weight, bias, mean, scale)

    def logits(self, wav: torch.Tensor, sample_rate: int) -> np.ndarray:
        """``(num_styles,)`` class scores of ``(samples,)`` audio at any rate."""
        return self.weight @ ((pooled_features(self.reader, wav, sample_rate) - self.mean) / self.scale) + self.bias

    def predict(self, wav: torch.Tensor, sample_rate: int) -> str:
        """The most likely style of ``wav``."""
        return self.styles[int(np.argmax(self.logits(wav, sample_rate)))]

    def accuracy(self, examples: Iterable[tuple[torch.Tensor, int, str]]) -> float:
        """Fraction of ``(wav, sample_rate, style)`` examples classified correctly."""
        hits = [self.predict(wav, sr) == style for wav, sr, style in examples]
        if not hits:
            raise ValueError("no examples to score")
        return float(np.mean(hits))

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Writes ``classifier.safetensors``, ``classifier.json`` and (HuBERT features) ``hubert/``."""
        from safetensors.torch import save_file

        from speechkit.units.mfcc import MfccFeatureReader
        from speechkit.utils.files import atomic_open, atomic_path

        out = Path(folder)
        if isinstance(self.reader, MfccFeatureReader):
            features = {"kind": "mfcc", "sample_rate": self.reader.expected_sample_rate,
                        "hop_size": self.reader.code_hop_size}
        else:
            from speechkit.units.hubert.factory import save_hubert

            save_hubert(out / "hubert", self.reader.model, self.reader.config)
            features = {"kind": "hubert", "folder": "hubert", "layer": self.reader.layer}
        tensors = {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k))) for k in
                   ("weight", "bias", "mean", "scale")}
        with atomic_path(out / "classifier.safetensors") as tmp:
            save_file(tensors, str(tmp))
        with atomic_open(out / "classifier.json") as f:
            json.dump({"kind": "speechkit-style-classifier", "styles": self.styles, "features": features}, f,
                      indent=2)
        return out

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> StyleClassifier:
        """Loads a folder written by :meth:`save_pretrained`, or an early-exit classifier folder
        (:func:`speechkit.adaptive.save_early_exit`, which gives an
        :class:`~speechkit.adaptive.EarlyExitStyleClassifier` with the same ``predict`` / ``accuracy``).

        Raises:
            SpeechkitError: a file is missing or is not a style classifier.
        """
        from safetensors.torch import load_file

        d = Path(folder)
        meta_path = d / "classifier.json"
        if not meta_path.is_file() and (d / "config.json").is_file():  # an early-exit classifier folder
            from speechkit.adaptive.factory import MODEL_KIND, EarlyExitStyleClassifier

            if json.loads((d / "config.json").read_text()).get("kind") == MODEL_KIND:
                return EarlyExitStyleClassifier.from_pretrained(d)
        if not meta_path.is_file():
            raise SpeechkitError(f"{d}: no classifier.json (a style-classifier folder holds classifier.json and "
                                 "classifier.safetensors)")
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") != "speechkit-style-classifier":
            raise SpeechkitError(f"{meta_path}: kind must be 'speechkit-style-classifier'. Found {meta.get('kind')!r}")
        features = meta["features"]
        if features["kind"] == "mfcc":
            from speechkit.units.mfcc import MfccFeatureReader

            reader = MfccFeatureReader(features["sample_rate"], features["hop_size"])
        else:
            from speechkit.units import HubertFeatureReader

            reader = HubertFeatureReader.from_pretrained(d / features["folder"], layer=int(features["layer"]))
        t = load_file(str(d / "classifier.safetensors"))
        return cls(reader, meta["styles"], *(t[k].numpy() for k in ("weight", "bias", "mean", "scale")))
