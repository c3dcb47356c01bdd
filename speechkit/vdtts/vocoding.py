"""Log-mel to waveform for VDTTS: Griffin-Lim (works anywhere, no training) or a mel HiFi-GAN.

Griffin-Lim inverts the Slaney mel filters by least squares (non-negative part) and iterates phase
reconstruction (torchaudio). A HiFi-GAN trained on the same features sounds far better, but one trained for
minutes on a CPU is not intelligible, so the shipped model defaults to Griffin-Lim.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from speechkit.errors import SpeechkitError
from speechkit.vdtts.config import VDTTSConfig

__all__ = ["GriffinLimVocoder", "load_vocoder", "vocode"]


def GriffinLimVocoder(cfg: VDTTSConfig, n_iter: int = 48, power: float = 1.3) -> nn.Module:  # noqa: N802
    """Griffin-Lim with the VDTTS model's mel settings (:class:`speechkit.vocoders.griffinlim.GriffinLimVocoder`)."""
    from speechkit.vocoders.griffinlim import GriffinLimVocoder as _GriffinLim

    return _GriffinLim(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                       win_length=cfg.win_length, num_mels=cfg.num_mels, fmin=cfg.fmin, fmax=cfg.fmax,
                       n_iter=n_iter, power=power, rand_init=True)


def load_vocoder(cfg: VDTTSConfig, kind: str = "griffinlim", path: str | os.PathLike | None = None) -> nn.Module:
    """The mel vocoder of a VDTTS model.

    Args:
        cfg: the VDTTS config; a HiFi-GAN must match its sample rate, hop length and mel channels.
        kind: ``"griffinlim"`` or ``"hifigan"``.
        path: HiFi-GAN checkpoint (speechkit folder, or jik876 ``g_XXXXXXXX`` with its config.json beside it).

    Raises:
        SpeechkitError: unknown kind, missing path, or a HiFi-GAN whose features differ from the model's.
    """
    if kind == "griffinlim":
        return GriffinLimVocoder(cfg)
    if kind != "hifigan":
        raise SpeechkitError(f"vocoder must be 'griffinlim' or 'hifigan'. Found {kind!r}")
    if path is None:
        raise SpeechkitError("vocoder 'hifigan' needs a checkpoint path (--vocoder-path)")
    from speechkit.vocoders import HiFiGANVocoder

    voc = HiFiGANVocoder.from_checkpoint(path)
    got = (voc.output_sample_rate, voc.hop_length, voc.config.num_mels)
    want = (cfg.sample_rate, cfg.hop_length, cfg.num_mels)
    if got != want:
        raise SpeechkitError(f"{path}: mel HiFi-GAN has (sample_rate, hop_length, num_mels) = {got}; the VDTTS model "
                             f"needs {want}")
    return voc


@torch.inference_mode()
def vocode(vocoder: nn.Module, mel: torch.Tensor, num_samples: int | None = None) -> np.ndarray:
    """``float32 (samples,)`` for a log-mel ``(num_mels, T)``, zero-padded or cut to ``num_samples`` when given."""
    wav = vocoder(mel).cpu().float().numpy()
    if num_samples is None:
        return wav
    return np.pad(wav, (0, max(0, num_samples - len(wav))))[:num_samples]
