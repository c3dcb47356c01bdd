"""The training configs of ``speechkit train vocoder`` (:class:`VocoderTrainConfig`) and ``speechkit train
mel_vocoder`` (:class:`MelVocoderTrainConfig`): the one source of their defaults (``speechkit/conf/vocoder/`` and
``speechkit/conf/mel_vocoder/config.yaml`` only name these schemas and the presets; ``speechkit train TASK
--print-config`` shows the composed values).

The unit vocoder's defaults are the released speech-resynthesis / fairseq unit-vocoder hyper-parameters: AdamW 2e-4,
betas (0.8, 0.99), exponential decay 0.999 per epoch, batch 16 segments of 8960 samples, LSGAN + feature matching ×2 +
mel L1 ×45 (+ duration MSE ×1), mel loss 1024/256/1024 with 80 bins up to Nyquist. The mel vocoder's are HiFi-GAN
V1's with VDTTS's features (16 kHz, hop 160, 80 mels up to 8 kHz).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from speechkit.utils.config import MISSING, from_values
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan.config import DurationPredictorConfig, GeneratorConfig
from speechkit.vocoders.hifigan.data import NAME_SOURCES

__all__ = ["DataConfig", "TrainGeneratorConfig", "ModelConfig", "GANLossConfig", "LossConfig", "MelConfig",
           "OptimConfig", "LoopConfig", "VocoderTrainConfig", "MelDataConfig", "MelFeatureConfig", "MelModelConfig",
           "MelOptimConfig", "MelLoopConfig", "MelVocoderTrainConfig"]


@dataclass(kw_only=True)
class DataConfig:
    """The units jsonl and audio of a unit vocoder (also the unit-to-mel decoder's, with its own segment size)."""

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
    """Samples per training segment (a multiple of the hop: 28 frames of 320)."""
    peak: float | None = 0.95
    """Peak-normalise each utterance to this (``None`` keeps levels), as released."""

    def validate(self) -> None:
        for what in ("speaker", "style"):
            if getattr(self, what) not in NAME_SOURCES:
                raise VocoderError(f"data.{what} must be one of {NAME_SOURCES}. Found {getattr(self, what)!r}")
        if self.valid_count < 0:
            raise VocoderError(f"data.valid_count must be >= 0. Found {self.valid_count}")


@dataclass(kw_only=True)
class TrainGeneratorConfig(GeneratorConfig):
    """:class:`~speechkit.vocoders.hifigan.config.GeneratorConfig` as a training config holds it: the same fields
    and rules, the dilations typed as lists (a tuple of tuples is beyond OmegaConf's type checks) and made tuples
    again when the config is built. Defaults: V1, as in the released unit vocoders."""

    resblock_dilation_sizes: tuple[list[int], ...] = ([1, 3, 5], [1, 3, 5], [1, 3, 5])
    """Dilations of each residual block (3 per block for type 1, 2 for type 2 in the released configs)."""

    def __post_init__(self) -> None:
        self.resblock_dilation_sizes = tuple(tuple(d) for d in self.resblock_dilation_sizes)  # type: ignore[misc]

    def plain(self) -> GeneratorConfig:
        """The plain :class:`GeneratorConfig` of these fields (what a model config holds)."""
        return GeneratorConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(GeneratorConfig)})


@dataclass(kw_only=True)
class ModelConfig:
    """The unit HiFi-GAN (speaker / style table sizes come from the data)."""

    num_units: int = MISSING
    """Unit vocabulary size K of the tokenizer that made the units (required)."""
    embedding_dim: int = 128
    """Width of the unit, speaker and style embeddings."""
    f0: str = "none"
    """``"none"`` or ``"continuous"``: condition on speaker-normalised F0 (speech-resynthesis' ``f0_normalize``;
    the units jsonl needs ``"f0"`` in Hz, e.g. from ``speechkit encode --f0``; the per-speaker statistics are
    computed on the training records and stored with the model)."""
    duration_predictor: DurationPredictorConfig | None = field(default_factory=DurationPredictorConfig)
    """The duration predictor (``hidden_dim``: conv channels, ``var_pred_hidden_dim``; ``kernel_size``: conv kernel,
    ``var_pred_kernel_size``; ``dropout`` after each LayerNorm, ``var_pred_dropout``); ``None`` trains none."""
    generator: TrainGeneratorConfig = field(default_factory=TrainGeneratorConfig)
    """The generator body: V1 (the released unit vocoders); the product of ``upsample_rates`` is the hop, samples
    per unit frame (320 at 16 kHz = 50 Hz)."""
    sample_rate: int = 16000
    """Audio is resampled to this rate when read."""
    discriminator_scale: float = 1.0
    """Channel multiplier of the MPD / MSD discriminators (1.0 = released sizes)."""


@dataclass(kw_only=True)
class GANLossConfig:
    """The released HiFi-GAN loss weights."""

    mel: float = 45.0
    """Weight of the mel L1 loss."""
    feature_matching: float = 2.0
    """Weight of the feature-matching L1 loss."""
    adversarial: float = 1.0
    """Weight of the generator's LSGAN loss."""


@dataclass(kw_only=True)
class LossConfig(GANLossConfig):
    """The unit vocoder's loss weights: HiFi-GAN's and the duration predictor's."""

    duration: float = 1.0
    """Weight of the duration MSE on log(d + 1) (``dur_prediction_weight``)."""


@dataclass(kw_only=True)
class MelConfig:
    """The mel spectrogram of the L1 loss."""

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
    """AdamW learning rate (both networks)."""
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
    """Steps between log lines (``out/log.jsonl``)."""
    valid_every: int = 5000
    """Steps between validations."""
    save_every: int = 5000
    """Steps between checkpoints and model exports."""
    export_official: bool = True
    """Also write ``out/official/g_XXXXXXXX`` + ``config.json`` (textlesslib / fairseq format) at each save."""
    resume: bool = True
    """Continue from ``out/checkpoint_last.pt`` when it exists."""
    seed: int = 1234
    device: str = "auto"
    """``auto``: this process' GPU (torchrun ``LOCAL_RANK``) or the CPU; or ``cpu``, ``cuda:1``, ..."""
    threads: int = 0
    """torch threads (0 = torch's default)."""
    discriminator_start: int = 0
    """Steps of generator-only training (mel L1 + duration) before the discriminators join (0 = from the start,
    as released; a mel-only warm-up gets intelligible speech sooner on small compute)."""
    channels_last: bool = True
    """Run the generator's convolutions as channels-last 2-D ones (faster on CPUs; same model)."""
    precision: str = "fp32"
    """``"fp32"`` or ``"bf16"``: autocast the generator's and discriminators' convolutions to bf16 (weights, optimiser
    state and losses stay fp32; faster on CPUs with AMX)."""
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
    """``speechkit train vocoder``: a unit HiFi-GAN (CodeHiFiGAN) on a units jsonl and its audio."""

    out: str = MISSING
    """Run folder: ``checkpoint_last.pt``, ``model/``, ``official/``, ``log.jsonl`` (required)."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
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
    def from_dict(cls, d: Any) -> VocoderTrainConfig:
        """Builds and validates the config from plain values (a resolved Hydra config); unknown keys are errors."""
        return from_values(cls, d, error=VocoderError, what="vocoder training config")


# ------------------------------------------------------------------------------------------------ mel vocoder
@dataclass(kw_only=True)
class MelDataConfig:
    """A folder of speech, loaded once and resampled."""

    audio: str = MISSING
    """Folder scanned recursively for ``.wav`` / ``.flac`` files (required)."""
    sample_rate: int = 16000
    """VDTTS's audio rate."""
    segment_size: int = 8960
    """Training crop in samples (56 mel frames of 160; a multiple of the hop)."""
    valid_count: int = 4
    """The first files (sorted) are held out: mel L1 on whole utterances."""


@dataclass(kw_only=True)
class MelFeatureConfig:
    """The log-mel features; must equal the VDTTS model's (``speechkit train vdtts``'s ``mel``)."""

    n_fft: int = 1024
    win_length: int = 640
    hop_length: int = 160
    """Samples per mel frame: the product of ``model.upsample_rates``."""
    num_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    """Highest mel frequency (``None`` = Nyquist)."""


@dataclass(kw_only=True)
class MelModelConfig(TrainGeneratorConfig):
    """HiFi-GAN V1's generator with a hop of 160 = 5·4·4·2 (fields as :class:`GeneratorConfig`), and the
    discriminators' size."""

    upsample_rates: tuple[int, ...] = (5, 4, 4, 2)
    """Stride of each transposed convolution; their product is the hop (``mel.hop_length``)."""
    upsample_kernel_sizes: tuple[int, ...] = (11, 8, 8, 4)
    """Kernel of each transposed convolution (padding ``(k - u) // 2``)."""
    discriminator_scale: float = 1.0
    """Channel multiplier of the discriminators (1.0 = released sizes)."""


@dataclass(kw_only=True)
class MelOptimConfig(OptimConfig):
    """AdamW for both networks, the learning rate decayed along the steps."""

    lr_decay: float = 0.999
    """The learning rate is multiplied by this once every ``decay_every`` steps (HiFi-GAN: once an epoch),
    smoothly: ``lr * lr_decay ** (step / decay_every)``."""
    max_steps: int = 100_000
    decay_every: int = 200
    """Steps per ``lr_decay`` factor."""


@dataclass(kw_only=True)
class MelLoopConfig:
    seed: int = 1
    device: str = "auto"
    """``auto`` (cuda when available) | ``cpu`` | ``cuda``."""
    threads: int = 0
    """torch CPU threads (0 = torch's default)."""
    channels_last: bool = True
    """2-D channels-last convolutions (faster on CPU and GPU; same model)."""
    discriminator_start: int = 0
    """Steps of mel-only generator training before the discriminators join."""
    max_minutes: float | None = None
    """Wall-clock budget: once spent, training stops as at ``optim.max_steps`` (save, export); a later run
    resumes. ``None``: no budget."""
    log_every: int = 100
    """Steps between log lines (``out/log.jsonl``; a validation joins the line when one is due)."""
    valid_every: int = 1000
    """Steps between validations (on log steps)."""
    save_every: int = 2000
    """Steps between checkpoints and model exports."""


@dataclass(kw_only=True)
class MelVocoderTrainConfig:
    """``speechkit train mel_vocoder``: a mel HiFi-GAN (jik876 generator, HiFi-GAN V1 losses) with VDTTS's
    features; the result loads with ``HiFiGANVocoder.from_pretrained(out/model)``."""

    out: str = MISSING
    """Run folder: ``checkpoint_last.pt``, ``model/``, ``log.jsonl`` (required)."""
    data: MelDataConfig = field(default_factory=MelDataConfig)
    mel: MelFeatureConfig = field(default_factory=MelFeatureConfig)
    model: MelModelConfig = field(default_factory=MelModelConfig)
    loss: GANLossConfig = field(default_factory=GANLossConfig)
    optim: MelOptimConfig = field(default_factory=MelOptimConfig)
    train: MelLoopConfig = field(default_factory=MelLoopConfig)

    def validate(self) -> None:
        self.model.validate()
        hop = self.model.hop_length
        if hop != self.mel.hop_length or self.data.segment_size % hop:
            raise VocoderError(f"model.upsample_rates multiply to {hop}: must equal mel.hop_length="
                               f"{self.mel.hop_length} and divide data.segment_size={self.data.segment_size}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
