"""The Python API of whole pipelines: :class:`Resynthesizer` (speech → units → speech).

Example:
    >>> from speechkit import Resynthesizer
    >>> rs = Resynthesizer.from_pretrained("checkpoints/default")
    >>> out = rs(wav, sample_rate=48000)                       # keeps the voice (closest vocoder speaker)
    >>> out = rs(wav, sample_rate=48000, speaker="us2", style="whisper")   # voice / style conversion
    >>> rs.output_sample_rate
    16000
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from speechkit.errors import SpeechkitError

__all__ = ["Resynthesizer", "SpeechContinuation", "PipelineError"]


class PipelineError(SpeechkitError, ValueError):
    """A pipeline folder or input is unusable; the message names the file or argument."""


class Resynthesizer:
    """Speech encoder + unit vocoder: resynthesis, voice and style conversion.

    Args:
        encoder: a :class:`~speechkit.units.SpeechEncoder` (``units``, ``durations``; resamples its input).
        vocoder: a :class:`~speechkit.vocoders.CodeHiFiGANVocoder` with the same unit vocabulary.
        dur_prediction: regenerate durations with the vocoder's duration predictor instead of keeping the input's
            (``None``: keep the input's timing).
        match_seconds: seconds of the input synthesised per candidate speaker when the voice is kept (see
            :meth:`match_speaker`).

    Example:
        >>> rs = Resynthesizer(SpeechEncoder.from_pretrained("enc"), CodeHiFiGANVocoder.from_pretrained("voc"))
        >>> out = rs(wav, sample_rate=44100, speaker="ex02")
    """

    def __init__(self, encoder, vocoder, *, dur_prediction: bool | None = None, match_seconds: float = 3.0):
        if encoder.vocab_size != vocoder.vocab_size:
            raise PipelineError(f"the encoder makes {encoder.vocab_size} units but the vocoder reads "
                                f"{vocoder.vocab_size}: they were not trained together")
        if encoder.code_hop_size * vocoder.output_sample_rate != vocoder.code_hop_size * encoder.expected_sample_rate:
            raise PipelineError(f"unit rates differ: encoder {encoder.expected_sample_rate / encoder.code_hop_size} "
                                f"Hz, vocoder {vocoder.output_sample_rate / vocoder.code_hop_size} Hz")
        self.encoder, self.vocoder = encoder, vocoder
        self.dur_prediction = bool(dur_prediction)
        self.match_seconds = match_seconds

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **options) -> Resynthesizer:
        """Loads ``folder/encoder`` (a speech-encoder folder) and ``folder/vocoder`` (a speechkit vocoder folder,
        or an official ``g_XXXXXXXX`` + ``config.json`` folder).

        Raises:
            PipelineError: a sub-folder is missing.
        """
        from speechkit.units import SpeechEncoder
        from speechkit.vocoders import CodeHiFiGANVocoder

        d = Path(folder)
        for sub in ("encoder", "vocoder"):
            if not (d / sub).is_dir():
                raise PipelineError(f"{d}: missing {sub}/ (a resynthesis folder holds encoder/ and vocoder/)")
        return cls(SpeechEncoder.from_pretrained(d / "encoder"), CodeHiFiGANVocoder.from_checkpoint(d / "vocoder"),
                   **options)

    @property
    def output_sample_rate(self) -> int:
        return self.vocoder.output_sample_rate

    def encode(self, wav: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        """The encoder's output for ``wav`` at ``sample_rate`` (``(samples,)`` or ``(channels, samples)``)."""
        wav = torch.as_tensor(wav, dtype=torch.float32)
        if wav.dim() == 2:
            wav = wav.mean(0)
        if wav.dim() != 1 or wav.numel() == 0:
            raise PipelineError(f"wav must be non-empty (samples,) or (channels, samples). Found {tuple(wav.shape)}")
        min_samples = int(self.encoder.code_hop_size * sample_rate / self.encoder.expected_sample_rate) * 2
        if wav.numel() < min_samples:
            raise PipelineError(f"wav is too short to encode: {wav.numel()} samples at {sample_rate} Hz (at least "
                                f"{min_samples})")
        with torch.inference_mode():
            return self.encoder(wav, sample_rate=sample_rate)

    def match_speaker(self, wav: torch.Tensor, sample_rate: int, units: torch.Tensor, durations: torch.Tensor,
                      style: Any = None) -> int | None:
        """The vocoder speaker whose voice is closest to ``wav``'s (analysis by synthesis).

        The first :attr:`match_seconds` of the units are synthesised with every speaker of the vocoder; the one
        whose mean and spread of the log-mel spectrum (timbre and pitch range) is closest to the input's wins.
        ``None`` for vocoders without a speaker table.
        """
        size = self.vocoder.config.num_speakers
        if size <= 1:
            return None if size == 0 else 0
        from speechkit.audio.io import resample
        from speechkit.vocoders.hifigan.losses import MelSpectrogram

        sr = self.output_sample_rate
        mel = MelSpectrogram(sr, n_fft=1024, num_mels=80, hop_length=256, win_length=1024)
        frames = torch.cumsum(durations, 0)
        keep = int((frames <= self.match_seconds * sr / self.vocoder.code_hop_size).sum().clamp(min=1))
        ref = resample(wav, sample_rate, sr)[: int(frames[keep - 1]) * self.vocoder.code_hop_size]

        def stats(x: torch.Tensor) -> torch.Tensor:
            m = mel(x[None])[0]
            return torch.cat([m.mean(1), m.std(1)])

        target = stats(ref)
        names = self.vocoder.speakers or []
        candidates = range(min(size, len(names))) if names else range(size)
        dist = {s: float((stats(self.vocoder(units[:keep], speaker=s, style=style, durations=durations[:keep]))
                          - target).norm()) for s in candidates}
        return min(dist, key=dist.get)

    def __call__(self, wav: torch.Tensor, sample_rate: int, speaker: Any = None, style: Any = None) -> torch.Tensor:
        """Resynthesises ``wav``.

        Args:
            wav: ``(samples,)`` or ``(channels, samples)`` at any rate (resampled, mixed down).
            sample_rate: its rate.
            speaker: a vocoder speaker (name or id) to convert the voice to; ``None`` keeps the voice (the
                closest vocoder speaker, :meth:`match_speaker`).
            style: a vocoder style (name or id); ``None`` = the vocoder's default style (id 0).

        Returns:
            ``(samples,)`` float32 at :attr:`output_sample_rate`.
        """
        if isinstance(wav, torch.Tensor):
            wav = wav.detach().float().cpu()
        out = self.encode(wav, sample_rate)
        units, durations = out["units"], out["durations"]
        mono = torch.as_tensor(wav, dtype=torch.float32)
        mono = mono.mean(0) if mono.dim() == 2 else mono
        if speaker is None:
            speaker = self.match_speaker(mono, sample_rate, units, durations, style)
        if self.dur_prediction:
            return self.vocoder(units, speaker=speaker, style=style, dur_prediction=True)
        return self.vocoder(units, speaker=speaker, style=style, durations=durations)


# Prompt -> unit LM continuation -> vocoder; it lives with the unit LMs and is part of this API.
from speechkit.ulm.continuation import SpeechContinuation  # noqa: E402
