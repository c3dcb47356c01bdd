"""Builders: the only place where HiFi-GAN configs become modules.

Two tiers, as in torchaudio: ``build_*`` take a full config; ``code_hifigan_v1`` / ``hifigan_v1`` fix the released
V1 sizes and expose the few arguments that vary between releases.
"""

from __future__ import annotations

from speechkit.vocoders.hifigan.config import (
    CodeHiFiGANConfig,
    DurationPredictorConfig,
    GeneratorConfig,
    MelHiFiGANConfig,
)
from speechkit.vocoders.hifigan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from speechkit.vocoders.hifigan.model import CodeHiFiGANGenerator, DurationPredictor, HiFiGANGenerator

__all__ = ["build_generator", "build_code_hifigan", "build_mel_hifigan", "build_discriminators",
           "code_hifigan_v1", "hifigan_v1"]


def build_generator(cfg: GeneratorConfig, in_channels: int) -> HiFiGANGenerator:
    """The generator body of ``cfg`` reading ``in_channels`` input features."""
    cfg.validate()
    return HiFiGANGenerator(in_channels, cfg.upsample_initial_channel, cfg.upsample_rates, cfg.upsample_kernel_sizes,
                            cfg.resblock, cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)


def build_code_hifigan(cfg: CodeHiFiGANConfig) -> CodeHiFiGANGenerator:
    """The unit HiFi-GAN of ``cfg`` (plain weights: call ``generator.apply_weight_norm()`` to train).

    Example:
        >>> g = build_code_hifigan(CodeHiFiGANConfig(num_units=500, num_speakers=4, num_styles=8))
        >>> g.generator.conv_pre.in_channels
        384
    """
    cfg.validate()
    dp = cfg.duration_predictor
    return CodeHiFiGANGenerator(
        num_units=cfg.num_units, embedding_dim=cfg.embedding_dim,
        generator=build_generator(cfg.generator, cfg.conditioning_dim), num_speakers=cfg.num_speakers,
        num_styles=cfg.num_styles, speaker_embedding_dim=cfg.speaker_embedding_dim, f0=cfg.f0, f0_bins=cfg.f0_bins,
        duration_predictor=None if dp is None else DurationPredictor(cfg.embedding_dim, dp.hidden_dim,
                                                                     dp.kernel_size, dp.dropout))


def build_mel_hifigan(cfg: MelHiFiGANConfig) -> HiFiGANGenerator:
    """The mel-spectrogram HiFi-GAN generator of ``cfg``."""
    cfg.validate()
    return build_generator(cfg.generator, cfg.num_mels)


def build_discriminators(scale: float = 1.0) -> tuple[MultiPeriodDiscriminator, MultiScaleDiscriminator]:
    """HiFi-GAN's multi-period (periods 2, 3, 5, 7, 11) and multi-scale (3 scales) discriminators.

    Args:
        scale: channel multiplier (1.0 = the released sizes; smaller for CPU debugging).
    """
    return MultiPeriodDiscriminator(scale=scale), MultiScaleDiscriminator(scale=scale)


def code_hifigan_v1(num_units: int, *, num_speakers: int = 0, num_styles: int = 0, duration_prediction: bool = False,
                    f0: str = "none", f0_bins: int = 0, upsample_initial_channel: int = 512,
                    sample_rate: int = 16000) -> CodeHiFiGANConfig:
    """The released V1 unit vocoder config (hop 320, embeddings 128, duration predictor 128/3/0.5).

    Example:
        >>> code_hifigan_v1(500, num_speakers=4, num_styles=8, duration_prediction=True).conditioning_dim
        384
    """
    cfg = CodeHiFiGANConfig(
        num_units=num_units, embedding_dim=128, num_speakers=num_speakers, num_styles=num_styles, f0=f0,
        f0_bins=f0_bins, duration_predictor=DurationPredictorConfig() if duration_prediction else None,
        generator=GeneratorConfig(upsample_initial_channel=upsample_initial_channel), sample_rate=sample_rate)
    cfg.validate()
    return cfg


def hifigan_v1(num_mels: int = 80, sample_rate: int = 22050) -> MelHiFiGANConfig:
    """HiFi-GAN V1 (jik876/hifi-gan ``config_v1.json``): hop 256, 512 initial channels."""
    cfg = MelHiFiGANConfig(num_mels=num_mels, sample_rate=sample_rate)
    cfg.validate()
    return cfg
