"""The unit-to-mel vocoder users call: :class:`UnitMelVocoder` (units -> log-mel -> waveform).

Two stages, each generalising on its own: a unit-to-mel decoder (local context of units, speaker and style; learns
what each unit sounds like in each voice), then a mel-to-waveform stage that knows nothing of units: a neural mel
vocoder trained on true mels (``mel_vocoder/`` inside the folder: :class:`~speechkit.vocoders.VocosVocoder` or a
mel HiFi-GAN), or Griffin-Lim (no training; where the folder has no ``mel_vocoder/`` or it is asked for). Same call as
:class:`~speechkit.vocoders.CodeHiFiGANVocoder`, so pipelines take either.

Folder layout (``save_pretrained``): ``model.safetensors`` + ``config.json`` (``{"kind": "unit_mel", ...}``),
``speakers.txt`` / ``styles.txt``, ``speaker_embeddings.json``, optionally ``mel_vocoder/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speechkit.utils.files import loader
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.inputs import UnitInputs
from speechkit.vocoders.unitmel.config import UnitMelConfig
from speechkit.vocoders.unitmel.model import UnitMelDecoder

__all__ = ["UnitMelVocoder", "build_unit_mel", "griffin_lim", "KIND"]

KIND = "unit_mel"
FORMAT_VERSION = 1


def build_unit_mel(cfg: UnitMelConfig) -> UnitMelDecoder:
    """The decoder a config describes (random weights)."""
    cfg.validate()
    return UnitMelDecoder(num_units=cfg.num_units, num_mels=cfg.mel.num_mels, channels=cfg.channels,
                          kernel_size=cfg.kernel_size, dilations=tuple(cfg.dilations), post_layers=cfg.post_layers,
                          upsample=cfg.code_hop_size / cfg.mel.hop_length, num_speakers=cfg.num_speakers,
                          num_styles=cfg.num_styles, dropout=cfg.dropout, duration_hidden=cfg.duration_predictor)


def griffin_lim(config: UnitMelConfig) -> nn.Module:
    """The Griffin-Lim vocoder a unit-to-mel config describes (its mel settings, iterations, power, inversion)."""
    from speechkit.vocoders.griffinlim import GriffinLimVocoder

    m = config.mel
    return GriffinLimVocoder(sample_rate=m.sample_rate, n_fft=m.n_fft, hop_length=m.hop_length,
                             win_length=m.win_length, num_mels=m.num_mels, fmin=m.fmin, fmax=m.fmax,
                             n_iter=config.griffin_lim_iters, power=config.griffin_lim_power,
                             inversion=config.griffin_lim_inversion)


class UnitMelVocoder(UnitInputs, nn.Module):
    """Units -> speech through a log-mel spectrogram.

    Args:
        model: the unit-to-mel decoder (put in eval mode).
        config: its config.
        speakers: speaker names (line index = id).
        styles: style names.
        speaker_table: mean speaker embedding of each speaker's training speech
            (:mod:`~speechkit.vocoders.hifigan.voices`).
        mel_vocoder: a mel-to-waveform module with the same mel settings (``None``: Griffin-Lim).

    Example:
        >>> voc = UnitMelVocoder.from_pretrained("checkpoints/default/vocoder")
        >>> wav = voc(units, speaker="us2", style="whisper", durations=durations)   # (samples,) at 16 kHz
        >>> mel = voc.mel(units, speaker="us2", durations=durations)                # (80, frames)
    """

    def __init__(self, model: UnitMelDecoder, config: UnitMelConfig, speakers: list[str] | None = None,
                 styles: list[str] | None = None, speaker_table=None, mel_vocoder: nn.Module | None = None):
        super().__init__()
        config.validate()
        for what, names, size in (("speaker", speakers, config.num_speakers), ("style", styles, config.num_styles)):
            if names is not None and len(names) != size:
                raise VocoderError(f"{len(names)} {what} names for a {what} table of {size}")
        if speaker_table is not None and set(speaker_table.names) - set(speakers or []):
            raise VocoderError(f"speaker embeddings for {sorted(set(speaker_table.names) - set(speakers or []))}, "
                               f"which are not in the vocoder's speakers {speakers}")
        self.model, self.config = model.eval(), config
        self.speakers, self.styles, self.speaker_table = speakers, styles, speaker_table
        self.mel_vocoder = mel_vocoder if mel_vocoder is not None else griffin_lim(config)
        self.precision = "fp32"

    # ---------------------------------------------------------------- what pipelines ask of a unit vocoder
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def output_sample_rate(self) -> int:
        return self.config.mel.sample_rate

    @property
    def code_hop_size(self) -> int:
        """Output samples per unit frame."""
        return self.config.code_hop_size

    @property
    def vocab_size(self) -> int:
        return self.config.num_units

    def set_precision(self, precision: str) -> UnitMelVocoder:
        """Runs the decoder under ``"bf16"`` / ``"fp16"`` autocast (and a mel vocoder in that precision), or
        ``"fp32"``; where the device lacks the kernels, fp32 with one warning line (:mod:`speechkit.precision`)."""
        from speechkit.precision import resolve_precision

        self.precision = resolve_precision(precision, self.device, what="UnitMelVocoder.set_precision")
        if hasattr(self.mel_vocoder, "set_precision"):
            self.mel_vocoder.set_precision(self.precision)
        return self

    # ---------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, *, mel_vocoder: str = "auto",
                        device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> UnitMelVocoder:
        """Loads a folder written by :meth:`save_pretrained`.

        Args:
            folder: the folder.
            mel_vocoder: ``"auto"`` speaks through the folder's ``mel_vocoder/`` (a Vocos or mel HiFi-GAN folder)
                where it has one, else Griffin-Lim; ``"griffinlim"`` always uses Griffin-Lim.
            device: where to put it (default: the CPU).
            dtype: ``torch.bfloat16`` / ``torch.float16`` turn on :meth:`set_precision`'s fast path where ``device``
                computes in it (else fp32, with one warning line); see :func:`speechkit.utils.checkpoint.place`.

        Raises:
            VocoderError: missing or corrupt files, not a unit-to-mel vocoder, or a ``mel_vocoder/`` that is not a
                mel vocoder or reads another log-mel.
        """
        from speechkit.utils.checkpoint import place

        return place(cls._load(folder, mel_vocoder=mel_vocoder), device, dtype)

    @classmethod
    @loader("unit-to-mel vocoder folder", VocoderError)
    def _load(cls, folder: str | os.PathLike, *, mel_vocoder: str = "auto") -> UnitMelVocoder:
        """Reads the folder (see :meth:`from_pretrained`)."""
        if mel_vocoder not in ("auto", "griffinlim"):
            raise VocoderError(f"mel_vocoder must be 'auto' or 'griffinlim'. Found {mel_vocoder!r}")
        mel_vocoder_choice = mel_vocoder
        from speechkit.utils.checkpoint import CheckpointError, load_pretrained
        from speechkit.vocoders.hifigan.inference import read_names
        from speechkit.vocoders.hifigan.voices import read_speaker_table

        d = Path(folder)
        try:
            state, meta = load_pretrained(d)
        except CheckpointError as e:
            raise VocoderError(str(e)) from None
        if meta.get("kind") != KIND:
            raise VocoderError(f"{d}/config.json: not a unit-to-mel vocoder (kind {meta.get('kind')!r})")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise VocoderError(f"{d}/config.json: format_version {meta['format_version']} is newer than this "
                               f"speechkit reads ({FORMAT_VERSION}); upgrade speechkit")
        cfg = UnitMelConfig.from_dict(meta["model"])
        model = build_unit_mel(cfg)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise VocoderError(f"{d}/model.safetensors: weights do not fit the config: missing {missing[:6]}, "
                               f"unexpected {unexpected[:6]}")
        names = {w: read_names(d / f"{w}s.txt", w) if (d / f"{w}s.txt").is_file() else None
                 for w in ("speaker", "style")}
        mel_vocoder = None
        if (d / "mel_vocoder").exists() and mel_vocoder_choice != "griffinlim":
            from speechkit.vocoders.mel_loading import load_mel_vocoder

            mel_vocoder = load_mel_vocoder(d / "mel_vocoder", cfg.mel)
        return cls(model, cfg, names["speaker"], names["style"], read_speaker_table(d), mel_vocoder)

    def save_pretrained(self, folder: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Writes ``model.safetensors``, ``config.json``, the name lists, the speaker embeddings and a mel
        vocoder (when it is not Griffin-Lim)."""
        from speechkit.utils.checkpoint import save_pretrained
        from speechkit.vocoders.hifigan.voices import FILENAME

        files = {f"{w}s.txt": "".join(f"{n}\n" for n in names)
                 for w, names in (("speaker", self.speakers), ("style", self.styles)) if names}
        if self.speaker_table is not None:
            files[FILENAME] = self.speaker_table.to_json()
        out = save_pretrained(folder, {k: v.float() for k, v in self.model.state_dict().items()},
                              {"kind": KIND, "format_version": FORMAT_VERSION, "model": self.config.to_dict(),
                               **(extra or {})}, files=files)
        if hasattr(self.mel_vocoder, "save_pretrained"):
            self.mel_vocoder.save_pretrained(out / "mel_vocoder")
        return out

    # ---------------------------------------------------------------- synthesis
    def _decode(self, units: Any, speaker: Any, style: Any, dur_prediction: bool,
                durations: Any) -> tuple[torch.Tensor, int]:
        from speechkit.precision import DTYPES

        u, keep = self._check_units(units, self.config.num_units)
        frames = self._frame_units(u, keep, durations, dur_prediction, self.model)
        spk = self._index("speaker", speaker, self.speakers, self.config.num_speakers)
        sty = self._index("style", style, self.styles, self.config.num_styles)
        dev = self.device
        with torch.autocast(dev.type, dtype=DTYPES[self.precision], enabled=self.precision != "fp32"):
            mel = self.model(frames[None], spk, sty)
        return self.postfilter(mel[0].float()), len(frames)

    def postfilter(self, mel: torch.Tensor) -> torch.Tensor:
        """The decoder's log-mel through the folder's spectral-detail postfilter (``config.detail_gain``; frame by
        frame, so the stream applies it as the offline call does)."""
        from speechkit.vocoders.unitmel.postfilter import enhance_detail

        return enhance_detail(mel, self.config.detail_gain, self.config.detail_width)

    @torch.inference_mode()
    def mel(self, units: Any, speaker: Any = None, style: Any = None, dur_prediction: bool = False, *,
            durations: Any = None) -> torch.Tensor:
        """``(num_mels, mel_frames)`` log-mel of the units (arguments as :meth:`forward`)."""
        return self._decode(units, speaker, style, dur_prediction, durations)[0]

    @torch.inference_mode()
    def forward(self, units: Any, speaker: Any = None, style: Any = None, dur_prediction: bool = False,
                f0: Any = None, *, durations: Any = None) -> torch.Tensor:
        """Synthesises one utterance.

        Args:
            units: ``(frames,)`` or ``(1, frames)`` unit ids; negative ids are dropped. Deduplicated units with
                ``durations`` or ``dur_prediction=True``.
            speaker: a name from ``speakers`` or an id (default id 0).
            style: a name from ``styles`` or an id (default: the style named "default" where there is one, else id 0).
            dur_prediction: predict each unit's frames with the duration predictor.
            f0: not taken (the decoder is not F0-conditioned); given, it raises.
            durations: frames per unit.

        Returns:
            ``(frames * code_hop_size,)`` float32 waveform at :attr:`output_sample_rate`.
        """
        if f0 is not None:
            raise VocoderError("f0: this vocoder is not conditioned on F0")
        mel, frames = self._decode(units, speaker, style, dur_prediction, durations)
        # within full scale: a waveform the mel vocoder overshoots (rare; the postfilter's sharper spectra make it
        # likelier) is clipped as a WAV writer would, but here, so every caller gets the same samples
        wav = self.mel_vocoder(mel).reshape(-1).float().clamp(-1.0, 1.0)
        n = frames * self.code_hop_size
        return torch.nn.functional.pad(wav, (0, max(0, n - len(wav))))[:n]
