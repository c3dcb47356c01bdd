"""The training config of ``speechkit train hubert`` (HuBERT masked-prediction pretraining): the one source of its
defaults (``speechkit/conf/hubert/config.yaml`` only names this schema and the presets; ``speechkit train hubert
--print-config`` shows the composed values). Defaults are fairseq's base recipe, except the schedule length, which
you set for your data."""

from __future__ import annotations

from dataclasses import dataclass, field

from speechkit.units.hubert.config import BASE_CONV_LAYERS, HubertConfig
from speechkit.utils.config import MISSING, section_of

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


HubertModelTrainConfig = section_of(
    HubertConfig, "HubertModelTrainConfig", module=__name__,
    only=("conv_layers", "extractor_mode", "conv_bias", "embed_dim", "num_layers", "num_heads", "ffn_dim", "activation",
          "layer_norm_first", "conv_pos", "conv_pos_groups", "normalize"),
    types={"conv_layers": (list[list[int]], [list(c) for c in BASE_CONV_LAYERS])},   # Hydra types no nested tuples
    extra=(("dropout", float, 0.1), ("attention_dropout", float, 0.1), ("final_dim", int, 256)),
    doc="The ``model`` group: the architecture fields of :class:`~speechkit.units.hubert.config.HubertConfig` "
        "(documented there, with the same defaults: fairseq's base), the training dropouts and the prediction "
        "head's projection dimension ``final_dim``.")


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
