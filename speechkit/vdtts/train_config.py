"""The training config of ``speechkit train vdtts``: the one source of its defaults (``speechkit/conf/vdtts/
config.yaml`` only names this schema and the presets; ``speechkit train vdtts --print-config`` shows the composed
values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from speechkit.utils.config import MISSING, section_of
from speechkit.vdtts.config import VDTTSConfig

__all__ = ["VDTTSTrainConfig", "VDTTSDataConfig", "VDTTSModelSettings", "VDTTSLossConfig", "VDTTSOptimConfig",
           "VDTTSLoopConfig"]

VOCABULARIES = ("phonemes", "speakers")  # VDTTSConfig fields that come from the data, not from the config


VDTTSModelSettings = section_of(
    VDTTSConfig, "VDTTSModelSettings", exclude=VOCABULARIES, module=__name__,
    doc="The ``model`` group: every field of :class:`~speechkit.vdtts.config.VDTTSConfig` (documented there, with the "
        "same defaults) except the phoneme and speaker vocabularies, which come from the training data.")


@dataclass(kw_only=True)
class VDTTSDataConfig:
    root: str = MISSING
    """Talking-face corpus root (``speechkit prepare talking-face``; required)."""
    train: str = "train.jsonl"
    """Training manifest, relative to ``root``."""
    valid: str | None = "valid.jsonl"
    """Validation manifest, relative to ``root`` (null: no validation)."""
    batch_size: int = 16
    """Utterances per step (whole utterances)."""
    cache: str | None = None
    """Features file (``.npz``): written after featurising, read instead of the corpus when it exists (train where
    video decoding and espeak-ng are missing, e.g. a GPU machine)."""


@dataclass(kw_only=True)
class VDTTSLossConfig:
    align_weight: float = 1.0
    """Weight of the aligner's cross-entropy against the corpus's phoneme timings (``model.decoder=aligned``)."""
    guided_weight: float = 1.0
    """Guided-attention loss weight at step 0 (fades linearly to 0)."""
    guided_steps: int = 800
    """Steps until the guided-attention weight reaches 0."""
    guided_sigma: float = 0.25
    """Width of the allowed band around the diagonal (fraction of the utterance)."""


@dataclass(kw_only=True)
class VDTTSOptimConfig:
    lr: float = 1.0e-3
    """Peak learning rate (AdamW), after a linear warm-up; cosine decay to ``final_lr``."""
    final_lr: float = 5.0e-5
    """The learning rate at ``max_steps`` (or when ``train.max_minutes`` is spent, whichever comes first)."""
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_steps: int = 3000
    """Optimisation steps (0: featurise, write ``data.cache`` and export the untrained model)."""
    clip_norm: float = 1.0
    """Gradient norm clipping."""


@dataclass(kw_only=True)
class VDTTSLoopConfig:
    seed: int = 1
    device: str = "auto"
    """``auto`` (cuda when available) | ``cpu`` | ``cuda``."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""
    max_minutes: float | None = None
    """Wall-clock budget over the whole run, resumes included: training stops once it is spent, and the learning
    rate decays over it; null = none."""
    log_every: int = 25
    valid_every: int = 250
    save_every: int = 250


@dataclass(kw_only=True)
class VDTTSTrainConfig:
    """VDTTS (video + text + speaker -> mel) trained on a talking-face corpus."""

    out: str = MISSING
    """Run folder: ``checkpoint_last.pt``, ``log.jsonl``, ``model/`` (the exported model) (required)."""
    data: VDTTSDataConfig = field(default_factory=VDTTSDataConfig)
    model: VDTTSModelSettings = field(default_factory=VDTTSModelSettings)  # type: ignore[valid-type]
    loss: VDTTSLossConfig = field(default_factory=VDTTSLossConfig)
    optim: VDTTSOptimConfig = field(default_factory=VDTTSOptimConfig)
    train: VDTTSLoopConfig = field(default_factory=VDTTSLoopConfig)
