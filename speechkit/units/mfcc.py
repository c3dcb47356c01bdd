"""MFCC features for HuBERT's first iteration, with the reader interface of :class:`HubertFeatureReader`.

Kaldi-compatible MFCCs (torchaudio.compliance.kaldi: 25 ms window, 13 coefficients, no energy) plus deltas and
delta-deltas: 39 dimensions, as fairseq's ``dump_mfcc_feature.py``. The hop is 20 ms (320 samples at 16 kHz) so
frame ``t`` covers the same samples as HuBERT-base frame ``t`` and the label count equals the model's frame count
(fairseq computes 100 Hz MFCCs and keeps every other label; the windows are the same, only the deltas differ).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MfccFeatureReader"]


class MfccFeatureReader(nn.Module):
    """MFCC + deltas + delta-deltas, frame-aligned with a HuBERT front end of hop ``hop_size``.

    Args:
        sample_rate: expected input rate.
        hop_size: samples per frame (320 = 50 Hz at 16 kHz).
    """

    def __init__(self, sample_rate: int = 16000, hop_size: int = 320):
        super().__init__()
        self._sample_rate, self._hop = sample_rate, hop_size

    expected_sample_rate = property(lambda self: self._sample_rate)
    code_hop_size = property(lambda self: self._hop)
    frame_rate = property(lambda self: self._sample_rate / self._hop)
    dim = property(lambda self: 39)

    @torch.inference_mode()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``(samples,)`` -> ``(frames, 39)``; frames = ``1 + (samples - 400) // hop`` (at 16 kHz)."""
        import torchaudio.compliance.kaldi as kaldi
        import torchaudio.functional as AF

        wav = torch.as_tensor(wav, dtype=torch.float32)
        window = int(0.025 * self._sample_rate)
        if wav.dim() != 1 or wav.numel() < window:
            raise ValueError(f"wav must be 1-D with at least {window} samples. Found shape {tuple(wav.shape)}")
        mfcc = kaldi.mfcc(wav[None], sample_frequency=self._sample_rate, use_energy=False,
                          frame_shift=1000 * self._hop / self._sample_rate, dither=0.0)  # (frames, 13)
        d1 = AF.compute_deltas(mfcc.T)
        d2 = AF.compute_deltas(d1)
        return torch.cat([mfcc.T, d1, d2]).T.contiguous()  # (frames, 39)

    def forward_batch(self, wavs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self(w) for w in wavs]
