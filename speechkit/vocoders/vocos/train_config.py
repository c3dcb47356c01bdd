"""The training config of ``speechkit train vocos``: the one source of its defaults (``speechkit/conf/vocos/
config.yaml`` only names this schema and the presets; ``speechkit train vocos --print-config`` shows the composed
values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from speechkit.errors import SpeechkitError
from speechkit.utils.config import MISSING

__all__ = ["VocosTrainConfig", "VocosDataConfig", "VocosMelConfig", "VocosModelConfig", "VocosLossConfig",
           "VocosOptimConfig", "VocosLoopConfig"]


@dataclass(kw_only=True)
class VocosDataConfig:
    audio: str = MISSING
    """Folder scanned recursively for ``.wav`` / ``.flac`` (loaded once, resampled) (required)."""
    train_list: str | None = None
    """Keep only files whose stem is listed (e.g. an Expresso ``splits/train.txt``)."""
    valid_list: str | None = None
    """Validate on these stems (null: hold out the first ``valid_count`` files)."""
    valid_count: int = 8
    """Validation utterances (mel L1 on whole utterances)."""
    sample_rate: int = 16000
    """Must be the mel's rate."""
    segment_size: int = 8192
    """Training crop in samples (32 frames of 256); a multiple of ``mel.hop_length``."""
    peak: float | None = 0.95
    """Peak-normalise each file, as the unit-to-mel decoder's targets are (null: keep levels)."""
    gain_jitter: float = 0.5
    """Each crop scaled by a random gain in ``[1 - gain_jitter, 1]``."""
    decoder: str | None = None
    """A unit-to-mel vocoder folder: fine-tune on its predicted mels of the training audio."""
    units: str | None = None
    """With ``decoder``: units jsonl of ``data.audio`` (``speechkit encode``; durations kept)."""
    names: str = "expresso"
    """With ``decoder``: speaker/style from Expresso file stems (``expresso``) | ``none``."""
    decoded_share: float = 0.5
    """With ``decoder``: share of each batch whose input is the decoder's mel."""


@dataclass(kw_only=True)
class VocosMelConfig:
    """The input log-mel; must equal the decoder's (``speechkit train unit_mel`` ``model.mel``); its rate is
    ``data.sample_rate``."""

    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    num_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0


@dataclass(kw_only=True)
class VocosModelConfig:
    dim: int = 256
    """ConvNeXt width."""
    intermediate_dim: int = 768
    """Hidden width inside each block."""
    num_layers: int = 8
    kernel_size: int = 7
    """Depthwise kernel."""
    disc_channels: int = 16
    """Spectrogram discriminator width (only with ``loss.adversarial`` > 0)."""
    disc_resolutions: list[list[int]] = field(default_factory=lambda: [[512, 128], [1024, 256], [256, 64]])
    """``[n_fft, hop]`` of each sub-discriminator."""


@dataclass(kw_only=True)
class VocosLossConfig:
    mel: float = 45.0
    """Weight of the log-mel L1."""
    stft: float = 1.0
    """Weight of the multi-resolution STFT loss (spectral convergence + log-magnitude L1)."""
    stft_resolutions: list[list[int]] = field(default_factory=lambda: [[256, 64], [512, 128], [1024, 256],
                                                                       [2048, 512]])
    """``[n_fft, hop]`` of each resolution of the STFT loss."""
    phase: float = 0.0
    """Weight of the phase losses (:class:`~speechkit.train.vocos.PhaseLoss`: instantaneous phase, group delay and
    instantaneous frequency of the output against the audio, on the head's own STFT frames; 0: off)."""
    phase_ip: float = 1.0
    """Weight of the instantaneous-phase term inside ``phase`` (group delay and frequency weigh 1): a log-mel does
    not say the waveform's polarity, so this term cannot reach 0; 0 leaves it out."""
    adversarial: float = 0.0
    """Least-squares GAN with the spectrogram discriminator (0: off)."""
    feature_matching: float = 2.0


@dataclass(kw_only=True)
class VocosOptimConfig:
    lr: float = 5e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.01
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1
    """Cosine decay to ``lr * min_lr_ratio`` at ``max_steps``."""
    grad_clip: float = 10.0
    """Gradient norm clip of the generator (0: none)."""
    batch_size: int = 16
    """Segments per step (over all processes; a multiple of their number)."""
    max_steps: int = 20000
    schedule_steps: int | None = None
    """The cosine's horizon (null: ``max_steps``); larger stops a run part way down the cosine."""


@dataclass(kw_only=True)
class VocosLoopConfig:
    seed: int = 1
    init: str | None = None
    """Warm start from a Vocos folder (weights only; ignored when resuming)."""
    device: str = "auto"
    """``auto`` (cuda when available) | ``cpu`` | ``cuda``."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""
    discriminator_start: int = 0
    """Steps of reconstruction-only training before the GAN losses join."""
    max_minutes: float | None = None
    """Wall-clock budget (stops at the first step past it, saving)."""
    log_every: int = 50
    valid_every: int = 1000
    """Validation (mel L1 of whole utterances) on the log lines of every this many steps."""
    save_every: int = 500
    keep_every: int = 0
    """Also export ``out/model_<step>`` every this many steps (0: only ``out/model``)."""


@dataclass(kw_only=True)
class VocosTrainConfig:
    out: str = MISSING
    """Run folder: ``checkpoint_last.pt``, ``model/``, ``log.jsonl`` (required)."""
    data: VocosDataConfig = field(default_factory=VocosDataConfig)
    mel: VocosMelConfig = field(default_factory=VocosMelConfig)
    model: VocosModelConfig = field(default_factory=VocosModelConfig)
    loss: VocosLossConfig = field(default_factory=VocosLossConfig)
    optim: VocosOptimConfig = field(default_factory=VocosOptimConfig)
    train: VocosLoopConfig = field(default_factory=VocosLoopConfig)

    def validate(self) -> None:
        if self.mel.hop_length > 0 and self.data.segment_size % self.mel.hop_length:   # hop < 1: VocosConfig's
            raise SpeechkitError(f"data.segment_size={self.data.segment_size} must be a multiple of "
                                 f"mel.hop_length={self.mel.hop_length}")
