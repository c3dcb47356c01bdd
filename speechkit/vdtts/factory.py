"""The one place that reads a :class:`VDTTSConfig` to build modules."""

from __future__ import annotations

from speechkit.vdtts.config import VDTTSConfig
from speechkit.vdtts.model import AlignedVDTTSModel, VDTTSModel

__all__ = ["build_vdtts", "build_mel"]


def build_vdtts(cfg: VDTTSConfig) -> VDTTSModel | AlignedVDTTSModel:
    """A randomly initialised :class:`AlignedVDTTSModel` (``cfg.decoder == "aligned"``) or :class:`VDTTSModel`."""
    cfg.validate()
    if cfg.decoder == "aligned":
        return AlignedVDTTSModel(**_common(cfg), mel_layers=cfg.mel_layers)
    return VDTTSModel(**_common(cfg))


def _common(cfg: VDTTSConfig) -> dict:
    return dict(
        vocab_size=cfg.vocab_size, num_speakers=len(cfg.speakers), dim=cfg.d_model,
        text_conv_layers=cfg.text_conv_layers, video_channels=tuple(cfg.video_channels),
        video_layers=cfg.video_layers, decoder_layers=cfg.decoder_layers, num_heads=cfg.num_heads,
        speaker_dim=cfg.speaker_dim, postnet_layers=cfg.postnet_layers, num_mels=cfg.num_mels,
        mel_per_frame=cfg.mel_frames_per_video_frame, use_video=cfg.use_video, dropout=cfg.dropout,
        mel_mean=cfg.mel_mean, mel_std=cfg.mel_std)


def build_mel(cfg: VDTTSConfig):
    """HiFi-GAN's log-mel spectrogram with the model's settings: ``(B, samples)`` -> ``(B, M, samples // hop)``."""
    from speechkit.vocoders.hifigan.losses import MelSpectrogram

    return MelSpectrogram(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, num_mels=cfg.num_mels,
                          hop_length=cfg.hop_length, win_length=cfg.win_length, fmin=cfg.fmin, fmax=cfg.fmax)
