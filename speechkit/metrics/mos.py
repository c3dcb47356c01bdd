"""DNSMOS (Reddy et al. 2022): a non-intrusive MOS estimate of speech quality, from the ONNX models that the
``speechmos`` package ships (run with onnxruntime; no download).

Scores are on a 1-5 scale: ``ovrl`` (overall), ``sig`` (speech signal), ``bak`` (background noise) from the
P.835 model, and ``p808`` from the P.808 model. Audio shorter than the models' 9.01 s input is repeated to fill it;
longer audio is scored in 9.01 s windows every second and averaged (the reference DNSMOS procedure).
"""

from __future__ import annotations

import os

import numpy as np
import torch

__all__ = ["DNSMOS", "DNSMOS_METRICS"]

DNSMOS_METRICS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")


class DNSMOS:
    """The DNSMOS P.835 + P.808 models.

    Args:
        personalized: use the personalised P.835 model (trained to penalise interfering talkers).

    Example:
        >>> DNSMOS()(wav, 48000)
        {'dnsmos_ovrl': 3.1, 'dnsmos_sig': 3.4, 'dnsmos_bak': 3.9, 'dnsmos_p808': 3.6}
    """

    sample_rate = 16000

    def __init__(self, personalized: bool = False):
        import speechmos
        from speechmos.dnsmos import DNSMOS as _Model

        base = os.path.dirname(speechmos.__file__)
        primary = os.path.join(base, "pdnsmos_models" if personalized else "dnsmos_models", "sig_bak_ovr.onnx")
        self.personalized = personalized
        self._model = _Model(primary, os.path.join(base, "dnsmos_models", "model_v8.onnx"))

    def __call__(self, wav: torch.Tensor | np.ndarray, sample_rate: int) -> dict[str, float]:
        """Scores ``(samples,)`` audio at any rate (resampled to 16 kHz, clipped to [-1, 1]).

        Raises:
            ValueError: empty audio.
        """
        from speechkit.audio.io import resample

        x = torch.as_tensor(wav, dtype=torch.float32).reshape(-1)
        if x.numel() == 0:
            raise ValueError("cannot score empty audio")
        x = resample(x, sample_rate, self.sample_rate).clamp(-1.0, 1.0).double().numpy()
        out = self._model(x, self.sample_rate, self.personalized)
        return {"dnsmos_ovrl": float(out["ovrl_mos"]), "dnsmos_sig": float(out["sig_mos"]),
                "dnsmos_bak": float(out["bak_mos"]), "dnsmos_p808": float(out["p808_mos"])}
