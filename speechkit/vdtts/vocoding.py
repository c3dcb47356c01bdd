"""Log-mel to waveform for VDTTS: Griffin-Lim (works anywhere, no training), a mel HiFi-GAN or a Vocos.

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
        kind: ``"griffinlim"``, ``"hifigan"``, ``"vocos"``, or ``"auto"`` (the kind ``path``'s config.json names;
            Griffin-Lim without a path).
        path: HiFi-GAN checkpoint (speechkit folder, or jik876 ``g_XXXXXXXX`` with its config.json beside it), or
            a Vocos folder (``speechkit train vocos`` with the VDTTS model's mel settings).

    Raises:
        SpeechkitError: unknown kind, missing path, or a HiFi-GAN whose features differ from the model's.
    """
    if kind == "auto":
        kind = "griffinlim" if path is None else _folder_kind(path)
    if kind == "griffinlim":
        return GriffinLimVocoder(cfg)
    if kind not in ("hifigan", "vocos"):
        raise SpeechkitError(f"vocoder must be 'griffinlim', 'hifigan' or 'vocos'. Found {kind!r}")
    if path is None:
        raise SpeechkitError(f"vocoder {kind!r} needs a checkpoint path (--vocoder-path)")
    if kind == "vocos":
        from speechkit.vocoders import VocosVocoder
        from speechkit.vocoders.unitmel.config import MelSettings
        from speechkit.vocoders.vocos.vocoder import check_mel_match

        voc = VocosVocoder.from_pretrained(path)
        check_mel_match(voc, MelSettings(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                         win_length=cfg.win_length, num_mels=cfg.num_mels, fmin=cfg.fmin,
                                         fmax=cfg.fmax), f"{path} (the VDTTS model's features)")
        return voc
    from speechkit.vocoders import HiFiGANVocoder

    voc = HiFiGANVocoder.from_pretrained(path)
    got = (voc.output_sample_rate, voc.hop_length, voc.config.num_mels)
    want = (cfg.sample_rate, cfg.hop_length, cfg.num_mels)
    if got != want:
        raise SpeechkitError(f"{path}: mel HiFi-GAN has (sample_rate, hop_length, num_mels) = {got}; the VDTTS model "
                             f"needs {want}")
    return voc


def _folder_kind(path: str | os.PathLike) -> str:
    """``"vocos"`` for a folder whose config.json says so, else ``"hifigan"`` (its loader judges the rest)."""
    from pathlib import Path

    cfg = Path(path) / "config.json"
    if cfg.is_file():
        from speechkit.utils.files import read_json

        if read_json(cfg, SpeechkitError).get("kind") == "vocos":
            return "vocos"
    return "hifigan"


@torch.inference_mode()
def vocode(vocoder: nn.Module, mel: torch.Tensor, num_samples: int | None = None) -> np.ndarray:
    """``float32 (samples,)`` for a log-mel ``(num_mels, T)``, zero-padded or cut to ``num_samples`` when given."""
    wav = vocoder(mel).cpu().float().numpy()
    if num_samples is None:
        return wav
    return np.pad(wav, (0, max(0, num_samples - len(wav))))[:num_samples]
