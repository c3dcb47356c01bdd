"""VDTTS configuration: a keyword-only dataclass, every field documented; the Hydra YAML mirrors it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from speechkit.errors import SpeechkitError

__all__ = ["VDTTSConfig", "VDTTSConfigError"]


class VDTTSConfigError(SpeechkitError, ValueError):
    """A VDTTS config value breaks a rule; the message names the field and the value."""


@dataclass(kw_only=True)
class VDTTSConfig:
    """Architecture, features and vocabularies of a VDTTS model.

    The decoder runs at the video frame rate and emits ``mel_frames_per_video_frame`` mel frames per video
    frame, so the speech is exactly as long as the video.
    """

    phonemes: list[str] = field(default_factory=list)
    """Text vocabulary (MBROLA/SAMPA phonemes from espeak-ng, :func:`speechkit.vdtts.text.phonemize`); ids start at 2
    (0 = padding, 1 = unknown)."""
    speakers: list[str] = field(default_factory=lambda: ["spk"])
    """Speaker names; the speaker embedding has one row per name."""
    use_video: bool = True
    """False = the text-only ablation: decoder queries are learned position embeddings, no video encoder."""
    decoder: str = "aligned"
    """``aligned``: an explicit alignment path (the aligner picks each mel frame's phoneme from the lips, trained
    on the corpus's phoneme timings; a FastSpeech-like decoder speaks the aligned phonemes,
    :class:`~speechkit.vdtts.model.AlignedVDTTSModel`); ``attention``: the decoder attends over the text and
    emits the mel directly (:class:`~speechkit.vdtts.model.VDTTSModel`, the paper's multi-source attention; a
    ``config.json`` without this field is read as ``attention``, the only kind before it existed)."""
    mel_layers: int = 8
    """Residual dilated conv layers of the aligned decoder at the mel rate (``decoder=aligned`` only)."""
    d_model: int = 128
    """Width of the text encoder, video encoder and decoder."""
    text_conv_layers: int = 3
    """Conv layers (kernel 5) of the text encoder before its bidirectional LSTM (Tacotron 2)."""
    video_channels: tuple[int, ...] = (16, 32, 64)
    """Output channels of the 3-D conv stack over mouth crops (each halves height and width)."""
    video_layers: int = 2
    """Transformer layers over the video frames (temporal context)."""
    decoder_layers: int = 3
    """Decoder layers: self-attention over the video-rate queries, cross-attention over the text, feed-forward."""
    num_heads: int = 4
    """Attention heads."""
    speaker_dim: int = 32
    """Speaker embedding size."""
    postnet_layers: int = 2
    """Residual conv layers refining the mel."""
    dropout: float = 0.1
    """Dropout in every block."""
    fps: float = 25.0
    """Video frame rate the model runs at; input video at another rate is resampled to it."""
    crop_size: int = 32
    """Side of the grey mouth crops."""
    mouth_box: tuple[float, float, float, float] = (0.25, 0.5, 0.75, 0.9)
    """Mouth region ``(x0, y0, x1, y1)`` as fractions of the frame (see :func:`speechkit.audio.video.mouth_crops`)."""
    sample_rate: int = 16000
    """Output audio rate."""
    n_fft: int = 1024
    """FFT size of the mel spectrogram."""
    win_length: int = 640
    """STFT window."""
    hop_length: int = 160
    """STFT hop; ``sample_rate / (fps * hop_length)`` must be a whole number of mel frames per video frame."""
    num_mels: int = 80
    """Mel channels (HiFi-GAN's log-mel, Slaney filters)."""
    fmin: float = 0.0
    """Lowest mel frequency."""
    fmax: float = 8000.0
    """Highest mel frequency."""
    mel_mean: float = -6.0
    """Log-mel normalisation: the decoder predicts ``(mel - mel_mean) / mel_std``."""
    mel_std: float = 2.5
    """See ``mel_mean``."""

    @property
    def mel_frames_per_video_frame(self) -> int:
        return round(self.sample_rate / (self.fps * self.hop_length))

    @property
    def samples_per_video_frame(self) -> int:
        return self.mel_frames_per_video_frame * self.hop_length

    @property
    def vocab_size(self) -> int:
        return len(self.phonemes) + 2

    def validate(self) -> None:
        def bad(name: str, rule: str, value: Any):
            raise VDTTSConfigError(f"{name} must be {rule}. Found {value!r}")

        for name in ("sample_rate", "fps", "hop_length"):  # before the ratio: fps=0 divided by zero (make fuzz)
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                bad(name, "a positive number", value)
        ratio = self.sample_rate / (self.fps * self.hop_length)
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            bad("sample_rate / (fps * hop_length)", "a positive whole number", ratio)
        if self.d_model % self.num_heads:
            bad("d_model", f"a multiple of num_heads={self.num_heads}", self.d_model)
        if self.d_model % 2:
            bad("d_model", "even (the text LSTM is bidirectional)", self.d_model)
        if not self.speakers or len(set(self.speakers)) != len(self.speakers):
            bad("speakers", "a non-empty list of distinct names", self.speakers)
        if len(set(self.phonemes)) != len(self.phonemes):
            bad("phonemes", "distinct symbols", self.phonemes)
        for name in ("d_model", "num_mels", "crop_size", "n_fft", "win_length", "hop_length", "decoder_layers"):
            if getattr(self, name) < 1:
                bad(name, ">= 1", getattr(self, name))
        if not self.video_channels:
            bad("video_channels", "non-empty", self.video_channels)
        if not 0 <= self.dropout < 1:
            bad("dropout", "in [0, 1)", self.dropout)
        x0, y0, x1, y1 = self.mouth_box
        if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
            bad("mouth_box", "(x0, y0, x1, y1) with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1", self.mouth_box)
        if self.decoder not in ("aligned", "attention"):
            bad("decoder", "'aligned' or 'attention'", self.decoder)
        if self.mel_layers < 1:
            bad("mel_layers", ">= 1", self.mel_layers)
        if self.win_length > self.n_fft:
            bad("win_length", f"<= n_fft={self.n_fft}", self.win_length)

    def to_dict(self) -> dict[str, Any]:
        return json_ready(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VDTTSConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise VDTTSConfigError(f"unknown VDTTS config fields {sorted(unknown)}")
        try:
            d = dict(d)
            d.setdefault("decoder", "attention")  # written before the aligned decoder existed
            for key in ("video_channels", "mouth_box"):
                if key in d:
                    d[key] = tuple(d[key])
            for key in ("phonemes", "speakers"):
                if key in d:
                    d[key] = list(d[key])
            cfg = cls(**d)
            cfg.validate()
        except VDTTSConfigError:
            raise
        except (TypeError, ValueError, AttributeError, ArithmeticError) as e:  # a value of the wrong type
            raise VDTTSConfigError(f"VDTTS config: not a valid config ({type(e).__name__}: {e})") from None
        return cfg


def json_ready(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
