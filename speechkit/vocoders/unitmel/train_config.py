"""The training config of ``speechkit train unit_mel``: the one source of its defaults (``speechkit/conf/unit_mel/
config.yaml`` only names this schema and the presets; ``speechkit train unit_mel --print-config`` shows the
composed values)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from speechkit.utils.config import MISSING, from_values
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan.train_config import DataConfig
from speechkit.vocoders.unitmel.config import MelSettings

__all__ = ["UnitMelTrainConfig", "UnitMelDataConfig", "UnitMelModelConfig", "UnitMelOptimConfig",
           "UnitMelLoopConfig"]


@dataclass(kw_only=True)
class UnitMelDataConfig(DataConfig):
    """The unit vocoder's data settings (:class:`~speechkit.vocoders.hifigan.train_config.DataConfig`) with the
    decoder's longer segments and validation set."""

    valid_count: int = 16
    """Validation utterances (mel L1 on whole utterances)."""
    segment_size: int = 40960
    """Samples per training segment: 128 unit frames (2.56 s), a multiple of 4 unit frames."""


@dataclass(kw_only=True)
class UnitMelModelConfig:
    """The decoder (speaker / style table sizes come from the data); fields as
    :class:`~speechkit.vocoders.unitmel.config.UnitMelConfig`."""

    num_units: int = MISSING
    """Unit vocabulary size K of the tokenizer that made the units (required)."""
    channels: int = 256
    """Width of every layer."""
    kernel_size: int = 5
    """Kernel of the dilated convolutions."""
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)
    """One residual layer each: 121 unit frames (2.4 s) of receptive field."""
    post_layers: int = 2
    """Residual convolutions at the mel rate."""
    dropout: float = 0.1
    duration_predictor: int = 128
    """Hidden width of the duration predictor (0 = none)."""
    code_hop_size: int = 320
    """Samples per unit frame (50 Hz units at 16 kHz)."""
    mel: MelSettings = field(default_factory=MelSettings)
    """HiFi-GAN's log-mel (what a mel HiFi-GAN or Griffin-Lim turns into a waveform)."""
    griffin_lim_iters: int = 32
    """Phase reconstruction iterations at synthesis."""
    griffin_lim_power: float = 1.0
    """Magnitude exponent before phase reconstruction."""
    griffin_lim_inversion: str = "nnls"
    """``nnls`` | ``pinv`` inversion of the mel filters."""

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate


@dataclass(kw_only=True)
class UnitMelOptimConfig:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    warmup_steps: int = 200
    min_lr: float = 5e-5
    """The learning rate decays along a cosine from ``lr`` to this at ``max_steps``."""
    clip_norm: float = 1.0
    batch_size: int = 16
    """Segments per step."""
    max_steps: int = 20_000
    duration_weight: float = 1.0
    """Weight of the duration predictor's MSE on log(d + 1)."""


@dataclass(kw_only=True)
class UnitMelLoopConfig:
    log_every: int = 100
    valid_every: int = 1000
    save_every: int = 1000
    resume: bool = True
    """Continue from ``out/checkpoint_last.pt`` when it exists."""
    seed: int = 1234
    device: str = "cpu"
    """``cpu`` | ``cuda`` (this process' GPU under torchrun) | ``auto`` (cuda when available)."""
    threads: int = 0
    """torch threads (0 = torch's default)."""
    precision: str = "fp32"
    """``"fp32"`` or ``"bf16"`` (autocast where the CPU / GPU computes in bf16; elsewhere fp32 with a warning)."""
    max_minutes: float | None = None
    """Wall-clock budget: once spent, training stops as at ``optim.max_steps`` (validate, save, export)."""
    speaker_embeddings: int = 20
    """Utterances per speaker whose mean speaker embedding is exported with the model (0 = none)."""
    init: str | None = None
    """Warm start: a unit-to-mel decoder folder whose tensors start this run where name and shape match (ignored
    when the run resumes). Its speaker and style lists must equal this corpus's."""
    init_unit_map: str | None = None
    """With ``init`` from a decoder of other units: a JSON list giving, for each new unit, the old unit whose
    embedding row it starts from (``data_prep/unit_map.py``: the old unit most often on the same frames)."""


@dataclass(kw_only=True)
class UnitMelTrainConfig:
    out: str = MISSING
    """Run folder: ``checkpoint_last.pt``, ``model/``, ``log.jsonl`` (required)."""
    data: UnitMelDataConfig = field(default_factory=UnitMelDataConfig)
    model: UnitMelModelConfig = field(default_factory=UnitMelModelConfig)
    optim: UnitMelOptimConfig = field(default_factory=UnitMelOptimConfig)
    train: UnitMelLoopConfig = field(default_factory=UnitMelLoopConfig)

    def validate(self) -> None:
        self.data.validate()
        self.model.mel.validate()
        hop = self.model.code_hop_size
        if self.data.segment_size % (4 * hop) or self.data.segment_size < 4 * hop:
            raise VocoderError(f"data.segment_size must be a positive multiple of 4 unit frames ({4 * hop} samples). "
                               f"Found {self.data.segment_size}")
        if self.train.precision not in ("fp32", "bf16"):
            raise VocoderError(f"train.precision must be 'fp32' or 'bf16'. Found {self.train.precision!r}")
        o = self.optim
        if o.lr <= 0 or o.batch_size < 1 or o.max_steps < 1:
            raise VocoderError(f"optim: lr > 0, batch_size >= 1, max_steps >= 1 required. Found {o.lr}, "
                               f"{o.batch_size}, {o.max_steps}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitMelTrainConfig:
        """Builds and validates the config from plain values (a resolved Hydra config); unknown keys are errors."""
        return from_values(cls, d, error=VocoderError, what="unit-mel training config")
