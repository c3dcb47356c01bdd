"""The training config of ``speechkit train hubert`` (HuBERT masked-prediction pretraining): the one source of its
defaults (``speechkit/conf/hubert/config.yaml`` only names this schema and the presets; ``speechkit train hubert
--print-config`` shows the composed values). Defaults are fairseq's base recipe, except the schedule length, which
you set for your data."""

from __future__ import annotations

from dataclasses import dataclass, field

from speechkit.utils.config import MISSING

__all__ = ["HubertTrainConfig", "HubertDataConfig", "HubertModelTrainConfig", "HubertPretrainConfig",
           "HubertOptimConfig", "HubertLoopConfig"]


@dataclass(kw_only=True)
class HubertDataConfig:
    train: str = MISSING
    """fairseq tsv manifest of the training audio (required)."""
    train_labels: str = MISSING
    """Labels jsonl (``speechkit encode TRAIN --no-dedup ...``), ids = manifest paths without extension
    (required)."""
    valid: str | None = None
    """Optional validation manifest."""
    valid_labels: str | None = None
    """And its labels."""
    sample_rate: int = 16000
    """Audio is resampled to this."""
    crop_seconds: float = 5.0
    """Random training crops (fairseq: max_sample_size 250000 = 15.6 s)."""
    batch_size: int = 8
    """Utterances per step and process."""
    num_workers: int = 2
    """Audio loading processes."""
    cache: bool = False
    """Keep decoded training audio in memory (small corpora; use with ``num_workers: 0``)."""
    speed_perturb: tuple[int, ...] | None = None
    """E.g. ``[14400, 15200, 16000, 16800, 17600]``: each crop resampled to one of these rates and played at
    ``sample_rate`` (tempo, pitch and formants scale together; labels follow)."""
    augment: float = 0.0
    """Probability that a crop gets a random chain of recording conditions (room, noise, telephone/band limit,
    level, DC, clipping: :mod:`speechkit.audio.augment`); labels stay exact."""


@dataclass(kw_only=True)
class HubertModelTrainConfig:
    """:class:`~speechkit.units.hubert.config.HubertConfig` fields, dropout and the prediction head."""

    conv_layers: list[list[int]] = field(default_factory=lambda: [[512, 10, 5], [512, 3, 2], [512, 3, 2],
                                                                  [512, 3, 2], [512, 3, 2], [512, 2, 2], [512, 2, 2]])
    """``[channels, kernel, stride]`` of each convolution of the waveform front end."""
    extractor_mode: str = "default"
    """Group norm on the first conv (``default``: base) or ``layer_norm`` (large)."""
    conv_bias: bool = False
    embed_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    ffn_dim: int = 3072
    activation: str = "gelu"
    layer_norm_first: bool = False
    """Pre-LN (large) or post-LN (base)."""
    conv_pos: int = 128
    conv_pos_groups: int = 16
    normalize: bool = False
    """Whole-utterance waveform normalisation (large models)."""
    dropout: float = 0.1
    attention_dropout: float = 0.1
    final_dim: int = 256
    """Projection dimension of the prediction head."""


@dataclass(kw_only=True)
class HubertPretrainConfig:
    num_classes: int | None = None
    """Label vocabulary (k of the k-means); null = 1 + the largest label seen."""
    mask_prob: float = 0.8
    """Fraction of frames starting a masked span."""
    mask_length: int = 10
    """Frames per span."""
    logit_temp: float = 0.1
    """Cosine-similarity temperature."""
    unmasked_weight: float = 0.0
    """Weight of the loss on unmasked frames (fairseq ``pred_nomask_weight``; 0 = masked only)."""


@dataclass(kw_only=True)
class HubertOptimConfig:
    lr: float = 5e-4
    final_lr: float = 0.0
    """Linear decay from ``lr`` to this at ``max_steps``, after the warm-up."""
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup_steps: int = 32000
    """fairseq: 32k of 400k."""
    max_steps: int = 400000
    clip_norm: float = 10.0


@dataclass(kw_only=True)
class HubertLoopConfig:
    init: str | None = None
    """Warm start: a HuBERT (speechkit folder, fairseq ``.pt``, HF folder) whose tensors start this run where they
    fit (the head starts fresh); ignored when the run resumes."""
    seed: int = 1
    precision: str = "fp32"
    """``fp32`` | ``bf16`` (autocast)."""
    log_every: int = 100
    valid_every: int = 5000
    save_every: int = 5000


@dataclass(kw_only=True)
class HubertTrainConfig:
    out: str = MISSING
    """Run folder: ``checkpoint_last.pt``, ``history.json``, ``log.jsonl``, ``model/`` (the exported encoder)
    (required)."""
    data: HubertDataConfig = field(default_factory=HubertDataConfig)
    model: HubertModelTrainConfig = field(default_factory=HubertModelTrainConfig)
    pretrain: HubertPretrainConfig = field(default_factory=HubertPretrainConfig)
    optim: HubertOptimConfig = field(default_factory=HubertOptimConfig)
    train: HubertLoopConfig = field(default_factory=HubertLoopConfig)
