"""The training config of ``speechkit train vocoder`` (mirrored by ``speechkit/conf/vocoder/config.yaml``).

Defaults are the released speech-resynthesis / fairseq unit-vocoder hyper-parameters: AdamW 2e-4, betas
(0.8, 0.99), exponential decay 0.999 per epoch, batch 16 segments of 8960 samples, LSGAN + feature matching ×2 +
mel L1 ×45 (+ duration MSE ×1), mel loss 1024/256/1024 with 80 bins up to Nyquist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from speechkit.utils.config import MISSING
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan.config import DurationPredictorConfig, GeneratorConfig, _generator_from_dict
from speechkit.vocoders.hifigan.data import NAME_SOURCES

__all__ = ["DataConfig", "ModelConfig", "LossConfig", "MelConfig", "OptimConfig", "LoopConfig", "VocoderTrainConfig"]


@dataclass(kw_only=True)
class DataConfig:
    units: str = MISSING
    """Training units jsonl (``{"id", "audio", "units", "duration"}`` a line)."""
    valid_units: str | None = None
    """Validation units jsonl; ``None`` = the last ``valid_count`` records of ``units`` are held out."""
    valid_count: int = 8
    """Validation utterances (whole utterances, mel L1)."""
    train_list: str | None = None
    """Keep only records whose audio file stem is listed (first column of each line, ``#`` comments; an Expresso
    ``splits/train.txt`` works as is). ``None`` keeps all."""
    valid_list: str | None = None
    """With ``valid_units`` unset: validate on the records of ``units`` listed here (e.g. ``splits/dev.txt``)
    instead of holding out the last ``valid_count``."""
    audio_root: str | None = None
    """Folder that relative ``audio`` paths are under (``None``: as written)."""
    speaker: str = "none"
    """Speaker names from the audio paths: none | expresso | parent | grandparent | prefix."""
    style: str = "none"
    """Style names from the audio paths: none | expresso | parent | grandparent | prefix."""
    segment_size: int = 8960
    """Samples per training segment (a multiple of the hop)."""
    peak: float | None = 0.95
    """Peak normalisation of each utterance (``None`` keeps levels)."""

    def validate(self) -> None:
        for what in ("speaker", "style"):
            if getattr(self, what) not in NAME_SOURCES:
                raise VocoderError(f"data.{what} must be one of {NAME_SOURCES}. Found {getattr(self, what)!r}")
        if self.valid_count < 0:
            raise VocoderError(f"data.valid_count must be >= 0. Found {self.valid_count}")


@dataclass(kw_only=True)
class ModelConfig:
    """The unit HiFi-GAN (speaker / style table sizes come from the data)."""

    num_units: int
    """Unit vocabulary size K of the tokenizer."""
    embedding_dim: int = 128
    f0: str = "none"
    """``"none"`` or ``"continuous"``: condition on speaker-normalised F0 (speech-resynthesis' ``f0_normalize``;
    the units jsonl needs ``"f0"`` in Hz, e.g. from ``speechkit encode --f0``; the per-speaker statistics are
    computed on the training records and stored with the model)."""
    duration_predictor: DurationPredictorConfig | None = field(default_factory=DurationPredictorConfig)
    """``None`` trains no duration predictor."""
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    sample_rate: int = 16000
    discriminator_scale: float = 1.0
    """Channel multiplier of the discriminators (1.0 = released sizes)."""


@dataclass(kw_only=True)
class LossConfig:
    mel: float = 45.0
    """Weight of the mel L1 loss."""
    feature_matching: float = 2.0
    """Weight of the feature-matching loss."""
    adversarial: float = 1.0
    """Weight of the generator's LSGAN loss."""
    duration: float = 1.0
    """Weight of the duration MSE on log(d + 1) (``dur_prediction_weight``)."""


@dataclass(kw_only=True)
class MelConfig:
    n_fft: int = 1024
    num_mels: int = 80
    hop_size: int = 256
    win_size: int = 1024
    fmin: float = 0.0
    fmax: float | None = None
    """``fmax_for_loss``: ``None`` = Nyquist."""


@dataclass(kw_only=True)
class OptimConfig:
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.01
    """AdamW decay (torch's default, which the released recipe uses)."""
    lr_decay: float = 0.999
    """ExponentialLR gamma, applied once per epoch."""
    batch_size: int = 16
    """Segments per step over all processes."""
    max_steps: int = 500_000

    def validate(self) -> None:
        if self.lr <= 0 or not 0 < self.lr_decay <= 1 or self.batch_size < 1 or self.max_steps < 1:
            raise VocoderError(f"optim: lr > 0, 0 < lr_decay <= 1, batch_size >= 1, max_steps >= 1 required. Found "
                               f"{self.lr}, {self.lr_decay}, {self.batch_size}, {self.max_steps}")


@dataclass(kw_only=True)
class LoopConfig:
    log_every: int = 100
    valid_every: int = 5000
    save_every: int = 5000
    export_official: bool = True
    """Also write ``out/official/g_XXXXXXXX`` + ``config.json`` (textlesslib / fairseq format) at each save."""
    resume: bool = True
    seed: int = 1234
    device: str = "auto"
    threads: int = 0
    """torch threads (0 = torch's default)."""
    discriminator_start: int = 0
    """Steps of generator-only training (mel L1 + duration) before the discriminators join (0 = from the start,
    as released; a mel-only warm-up gets intelligible speech sooner on small compute)."""
    channels_last: bool = True
    """Run the generator's convolutions as channels-last 2-D ones (faster on CPUs; same model)."""
    precision: str = "fp32"
    """``"fp32"`` or ``"bf16"``: autocast the generator's and discriminators' convolutions to bf16 (weights, optimiser
    state and losses stay fp32)."""
    init: str | None = None
    """Warm start: a speechkit vocoder folder whose generator tensors start this run wherever name and shape match
    (a body trained on another tokenizer's units, say; the unit embedding of another K stays freshly initialised).
    Ignored when the run resumes from its own checkpoint."""
    max_minutes: float | None = None
    """Wall-clock budget of this run: once spent, training stops as at ``optim.max_steps`` (validate, save, export);
    a later run resumes from the checkpoint. ``None``: no budget."""
    speaker_embeddings: int = 20
    """Utterances per speaker of the training speech whose mean speaker embedding (resemblyzer) is exported with
    the model (``speaker_embeddings.json``), so a pipeline keeps an input's voice without synthesis; 0 = none."""


@dataclass(kw_only=True)
class VocoderTrainConfig:
    out: str
    data: DataConfig
    model: ModelConfig
    loss: LossConfig = field(default_factory=LossConfig)
    mel: MelConfig = field(default_factory=MelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: LoopConfig = field(default_factory=LoopConfig)

    def validate(self) -> None:
        self.data.validate()
        self.optim.validate()
        self.model.generator.validate()
        if self.train.precision not in ("fp32", "bf16"):
            raise VocoderError(f"train.precision must be 'fp32' or 'bf16'. Found {self.train.precision!r}")
        if self.model.f0 not in ("none", "continuous"):
            raise VocoderError(f"model.f0 must be 'none' or 'continuous' for training. Found {self.model.f0!r}")
        hop = self.model.generator.hop_length
        if self.data.segment_size % hop or self.data.segment_size < hop:
            raise VocoderError(f"data.segment_size must be a positive multiple of the hop ({hop}). "
                               f"Found {self.data.segment_size}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VocoderTrainConfig:
        """Builds and validates the config from plain values (a resolved Hydra config); unknown keys are errors."""
        d = dict(d)
        try:
            m = dict(d.pop("model"))
            dp = m.pop("duration_predictor", {})
            m["duration_predictor"] = None if dp is None else DurationPredictorConfig(**dp)
            m["generator"] = _generator_from_dict(m.pop("generator", {}))
            o = dict(d.pop("optim", {}))
            if "betas" in o:
                o["betas"] = tuple(o["betas"])
            cfg = cls(out=d.pop("out"), data=DataConfig(**d.pop("data")), model=ModelConfig(**m),
                      loss=LossConfig(**d.pop("loss", {})), mel=MelConfig(**d.pop("mel", {})),
                      optim=OptimConfig(**o), train=LoopConfig(**d.pop("train", {})))
        except (TypeError, KeyError) as e:
            raise VocoderError(f"vocoder training config: {e}") from None
        if d:
            raise VocoderError(f"vocoder training config: unknown keys {sorted(d)}")
        cfg.validate()
        return cfg
