"""The unit vocoder users call: :class:`CodeHiFiGANVocoder` (units → speech); the mel one,
:class:`~speechkit.vocoders.hifigan.mel_vocoder.HiFiGANVocoder`, shares its loading and synthesis helpers.

Both load, with ``from_pretrained``, the official formats (``g_XXXXXXXX`` + ``config.json``) and ours
(``model.safetensors`` + ``config.json`` + ``speakers.txt`` / ``styles.txt``), save ours (``save_pretrained``) and
export the official one (``export_official``) so textlesslib / fairseq users can run vocoders trained here. Weight
norm is folded at load; synthesis runs under ``torch.inference_mode``, in chunks with overlap for long inputs,
optionally in bf16.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speechkit.utils.files import loader, loading
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan import interop
from speechkit.vocoders.hifigan.config import CodeHiFiGANConfig
from speechkit.vocoders.hifigan.f0 import F0Stats, normalize_f0
from speechkit.vocoders.hifigan.factory import build_code_hifigan
from speechkit.vocoders.hifigan.inference import PRECISIONS, read_names, synthesize_chunked
from speechkit.vocoders.hifigan.model import CodeHiFiGANGenerator, HiFiGANGenerator
from speechkit.vocoders.hifigan.voices import FILENAME as SPEAKER_TABLE_FILE
from speechkit.vocoders.hifigan.voices import read_speaker_table
from speechkit.vocoders.inputs import UnitInputs

__all__ = ["CodeHiFiGANVocoder", "DEFAULT_CHUNK_FRAMES"]

FORMAT_VERSION = 1
#: default chunk length in input frames (10 s of 50 Hz units); longer inputs are synthesised in overlapping chunks
DEFAULT_CHUNK_FRAMES = 500


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise VocoderError(f"{source}: weights do not fit the config: missing {result.missing_keys[:6]}, "
                           f"unexpected {result.unexpected_keys[:6]}")


def _load_strict_shapes(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            raise VocoderError(f"{source}: {k} has shape {tuple(v.shape)}, the config implies {tuple(own[k].shape)}")
    _load_into(model, state, source)


def _latest_official(folder: Path) -> Path:
    steps = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := re.fullmatch(r"g_(\d+)", p.name)))
    if not steps:
        raise VocoderError(f"{folder}: neither a speechkit model folder (model.safetensors + config.json) nor an "
                           "official one (g_XXXXXXXX + config.json)")
    return steps[-1][1]


def _is_our_folder(p: Path) -> bool:
    """A speechkit model folder (or what is left of one: its errors then name the missing file), not an official
    folder of ``g_XXXXXXXX`` files."""
    if not p.is_dir():
        return False
    return (p / "model.safetensors").is_file() or not any(re.fullmatch(r"g_(\d+)", q.name) for q in p.iterdir())


def _read_our_folder(folder: Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from speechkit.utils.checkpoint import CheckpointError, load_pretrained

    try:
        state, config = load_pretrained(folder)
    except CheckpointError as e:
        raise VocoderError(str(e)) from None
    if config.get("kind") != kind:
        raise VocoderError(f"{folder}/config.json: not a {kind} model (kind {config.get('kind')!r})")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise VocoderError(f"{folder}/config.json: format_version {config['format_version']} is newer than this "
                           f"speechkit reads ({FORMAT_VERSION}); upgrade speechkit")
    return state, config


class _Base(nn.Module):
    generator: HiFiGANGenerator

    def __init__(self) -> None:
        super().__init__()
        self.chunk_frames: int | None = DEFAULT_CHUNK_FRAMES
        self.channels_last = True  # False: the released 1-D convolutions, bit-identical to the official code
        self.dtype = torch.float32

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def set_precision(self, precision: str) -> _Base:
        """Computes the generator body in ``"fp32"`` (exact), ``"bf16"`` or ``"fp16"`` (fast paths on hardware
        that computes in them). Embeddings, conditioning and the duration predictor stay fp32.

        Where the device lacks the kernels (bf16 on a CPU without AVX512-BF16 / AMX, fp16 without AVX512-FP16 /
        AMX-FP16), the vocoder stays fp32 and one warning line says why (:mod:`speechkit.precision`). Call it
        after moving the vocoder to its device."""
        from speechkit.precision import resolve_precision

        if precision not in PRECISIONS:
            raise VocoderError(f"precision must be one of {sorted(PRECISIONS)}. Found {precision!r}")
        self.dtype = PRECISIONS[resolve_precision(precision, self.device, what=f"{type(self).__name__}.set_precision")]
        self.generator.to(self.dtype)
        return self

    @property
    def precision(self) -> str:
        """The precision the generator body computes in (after any fallback of :meth:`set_precision`)."""
        return {v: k for k, v in PRECISIONS.items()}[self.dtype]

    def _synthesize(self, features: torch.Tensor) -> torch.Tensor:
        return synthesize_chunked(self.generator, features, self.chunk_frames, dtype=self.dtype,
                                  channels_last=self.channels_last)


class CodeHiFiGANVocoder(UnitInputs, _Base):
    """Unit HiFi-GAN vocoder (speech-resynthesis / fairseq / textlesslib CodeHiFiGAN).

    Args:
        model: the unit generator (weight norm is folded here; the module is put in eval mode).
        config: its config.
        speakers: speaker names, the line index being the id (``speakers.txt``).
        styles: style names, likewise (``styles.txt``).
        f0_stats: per-speaker F0 statistics of the training data (F0-conditioned vocoders).
        speaker_table: the mean speaker embedding of each speaker's training speech
            (``speaker_embeddings.json``, :mod:`~speechkit.vocoders.hifigan.voices`); lets a pipeline pick the
            closest voice without synthesis.

    Example:
        >>> voc = CodeHiFiGANVocoder.from_pretrained("g_00400000", config_path="config.json")   # speakers.txt beside
        >>> wav = voc([12, 12, 7, 7, 7, 99], speaker="ex01", style="read-happy")    # (samples,) float32
        >>> voc.output_sample_rate, voc.code_hop_size
        (16000, 320)
    """

    def __init__(self, model: CodeHiFiGANGenerator, config: CodeHiFiGANConfig, speakers: list[str] | None = None,
                 styles: list[str] | None = None, f0_stats: F0Stats | None = None, speaker_table=None):
        super().__init__()
        config.validate()
        self.model = model.eval()
        self.model.generator.remove_weight_norm()
        self.config = config
        self.speakers = speakers
        self.styles = styles
        self.f0_stats = f0_stats
        if speaker_table is not None:
            unknown = sorted(set(speaker_table.names) - set(speakers or []))
            if unknown:
                raise VocoderError(f"speaker embeddings for {unknown}, which are not in the vocoder's speakers "
                                   f"{speakers}")
        self.speaker_table = speaker_table

    @property
    def generator(self) -> HiFiGANGenerator:  # type: ignore[override]
        return self.model.generator

    @property
    def output_sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def code_hop_size(self) -> int:
        """Output samples per unit frame."""
        return self.config.code_hop_size

    @property
    def vocab_size(self) -> int:
        return self.config.num_units

    # ---------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, config_path: str | os.PathLike | None = None,
                        speakers_path: str | os.PathLike | None = None, styles_path: str | os.PathLike | None = None,
                        device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                        ) -> CodeHiFiGANVocoder:
        """Loads a speechkit model folder written by :meth:`save_pretrained`, an official checkpoint
        (``g_XXXXXXXX`` / ``model.pt`` holding ``{"generator": state_dict}``) with its ``config.json``, a folder of
        official ``g_*`` files (the latest is used), or a vocoder model card by name (e.g.
        ``"hubert-base-ls960-layer-9-kmeans-expresso-2000-hifigan"``, fetched through :mod:`speechkit.hub`).

        Args:
            name_or_path: the folder, checkpoint file or card name.
            config_path: an official checkpoint's ``config.json``; ``None`` = the one beside it.
            speakers_path: an official checkpoint's ``speakers.txt`` (line index = speaker id); ``None`` = the one
                beside it if any.
            styles_path: its ``styles.txt``; ``None`` = the one beside it if any.
            device: where to put it (default: the CPU).
            dtype: as :func:`speechkit.utils.checkpoint.place` (``torch.bfloat16`` / ``torch.float16`` turn on
                :meth:`set_precision`'s fast path where ``device`` computes in it).

        Raises:
            VocoderError: missing or corrupt files, an unsupported variant, or config and weights that disagree.
        """
        from speechkit.utils.checkpoint import place

        return place(cls._load(name_or_path, config_path, speakers_path, styles_path), device, dtype)

    @classmethod
    def from_checkpoint(cls, ckpt: str | os.PathLike, config_path: str | os.PathLike | None = None,
                        speakers_path: str | os.PathLike | None = None, styles_path: str | os.PathLike | None = None,
                        ) -> CodeHiFiGANVocoder:
        """Deprecated alias (kept for one release) of ``CodeHiFiGANVocoder.from_pretrained(ckpt,
        config_path=config_path, speakers_path=speakers_path, styles_path=styles_path)``."""
        warnings.warn("CodeHiFiGANVocoder.from_checkpoint is deprecated; use CodeHiFiGANVocoder.from_pretrained(ckpt, "
                      "config_path=..., speakers_path=..., styles_path=...)", DeprecationWarning, stacklevel=2)
        return cls.from_pretrained(ckpt, config_path=config_path, speakers_path=speakers_path,
                                   styles_path=styles_path)

    @classmethod
    def _load(cls, name_or_path: str | os.PathLike, config_path: str | os.PathLike | None = None,
              speakers_path: str | os.PathLike | None = None,
              styles_path: str | os.PathLike | None = None) -> CodeHiFiGANVocoder:
        """Reads a card, our folder or an official checkpoint (see :meth:`from_pretrained`)."""
        from speechkit import hub

        if hub.is_card_name(name_or_path):
            with loading(name_or_path, "vocoder card", VocoderError):
                _, files = hub.fetch_kind(str(name_or_path), "vocoder")
            if "folder" in files:
                return cls._load_ours(files["folder"] / "vocoder")
            return cls._load_official(files["checkpoint"], files["config"], files.get("speakers"),
                                      files.get("styles"))
        p = Path(name_or_path)
        if not p.exists():
            raise VocoderError(f"{p}: no such checkpoint file or vocoder folder")
        if _is_our_folder(p):
            return cls._load_ours(p)
        return cls._load_official(name_or_path, config_path, speakers_path, styles_path)

    @classmethod
    @loader("vocoder checkpoint", VocoderError)
    def _load_official(cls, ckpt: str | os.PathLike, config_path: str | os.PathLike | None = None,
                       speakers_path: str | os.PathLike | None = None, styles_path: str | os.PathLike | None = None,
                       ) -> CodeHiFiGANVocoder:
        """An official checkpoint file, or the latest ``g_*`` of a folder, with its config and name lists."""
        p = Path(ckpt)
        if p.is_dir():
            p = _latest_official(p)
        beside = p.parent
        config_path = Path(config_path) if config_path is not None else beside / "config.json"
        if speakers_path is None and (beside / "speakers.txt").is_file():
            speakers_path = beside / "speakers.txt"
        if styles_path is None and (beside / "styles.txt").is_file():
            styles_path = beside / "styles.txt"
        official = interop.load_official_checkpoint(p)
        cfg = interop.code_config_from_official(interop.read_official_config(config_path), official,
                                                source=str(config_path))
        model = build_code_hifigan(cfg)
        _load_strict_shapes(model, interop.state_dict_from_official(official), str(p))
        return cls(model, cfg, read_names(speakers_path, "speaker"), read_names(styles_path, "style"),
                   speaker_table=read_speaker_table(beside))

    @classmethod
    @loader("vocoder folder", VocoderError)
    def _load_ours(cls, folder: str | os.PathLike) -> CodeHiFiGANVocoder:
        """Reads a speechkit folder (see :meth:`save_pretrained`)."""
        d = Path(folder)
        state, config = _read_our_folder(d, "code_hifigan")
        cfg = CodeHiFiGANConfig.from_dict(config["model"])
        model = build_code_hifigan(cfg)
        _load_strict_shapes(model, state, str(d / "model.safetensors"))
        speakers = read_names(d / "speakers.txt", "speaker") if (d / "speakers.txt").is_file() else None
        styles = read_names(d / "styles.txt", "style") if (d / "styles.txt").is_file() else None
        stats = F0Stats.from_dict(config["f0_stats"]) if config.get("f0_stats") else None
        return cls(model, cfg, speakers, styles, stats, read_speaker_table(d))

    def _name_files(self) -> dict[str, str]:
        files = {}
        if self.speakers:
            files["speakers.txt"] = "".join(f"{s}\n" for s in self.speakers)
        if self.styles:
            files["styles.txt"] = "".join(f"{s}\n" for s in self.styles)
        if self.speaker_table is not None:
            files[SPEAKER_TABLE_FILE] = self.speaker_table.to_json()
        return files

    def save_pretrained(self, folder: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Writes ``model.safetensors`` (fp32, weight norm folded), ``config.json``, the name lists and the speaker
        embeddings (when the vocoder has them)."""
        from speechkit.utils.checkpoint import save_pretrained

        state = {k: v.float() for k, v in self.model.state_dict().items()}
        config = {"kind": "code_hifigan", "format_version": FORMAT_VERSION, "model": self.config.to_dict(),
                  "f0_stats": self.f0_stats.to_dict() if self.f0_stats is not None else None, **(extra or {})}
        return save_pretrained(folder, state, config, files=self._name_files())

    def export_official(self, folder: str | os.PathLike, step: int = 0) -> Path:
        """Writes ``g_{step:08d}`` (``{"generator": state_dict}`` with legacy weight-norm keys), an official
        ``config.json`` and the name lists: loadable by textlesslib's / fairseq's ``CodeHiFiGANVocoder``."""
        from speechkit.utils.files import atomic_open, atomic_path

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        state = interop.state_dict_to_official({k: v.float() for k, v in self.model.state_dict().items()})
        ckpt = out / f"g_{step:08d}"
        with atomic_path(ckpt) as tmp:
            torch.save({"generator": state}, tmp)
        with atomic_open(out / "config.json") as f:
            json.dump(interop.code_config_to_official(self.config), f, indent=2)
        for name, text in self._name_files().items():
            with atomic_open(out / name) as f:
                f.write(text)
        return ckpt

    # ---------------------------------------------------------------- synthesis
    def normalize_f0(self, f0_hz: Any, speaker: Any = None) -> torch.Tensor:
        """F0 in Hz (0 = unvoiced) → the normalised F0 this vocoder reads, with ``speaker``'s training statistics
        (name or id; the pooled statistics for ``None`` or a speaker without them).

        Raises:
            VocoderError: the vocoder carries no F0 statistics (official checkpoints do not: normalise yourself).
        """
        if self.f0_stats is None:
            raise VocoderError("this vocoder carries no F0 statistics; give f0 already normalised")
        if isinstance(speaker, int) and self.speakers and 0 <= speaker < len(self.speakers):
            speaker = self.speakers[speaker]
        mean, std = self.f0_stats.get(speaker if isinstance(speaker, str) else None)
        return normalize_f0(self._as_1d(f0_hz, "f0", integer=False), mean, std)

    def _speaker(self, speaker: Any) -> torch.Tensor | None:
        dim = self.config.speaker_embedding_dim
        if not dim:
            return self._index("speaker", speaker, self.speakers, self.config.num_speakers)
        v = torch.as_tensor(np.asarray(speaker, dtype=np.float32) if speaker is not None else np.zeros(0))
        if v.numel() != dim:
            raise VocoderError(f"speaker: this vocoder takes a speaker vector of {dim} values. Found "
                               f"{'None' if speaker is None else tuple(v.shape)}")
        return v.reshape(1, dim).to(self.device)

    @torch.inference_mode()
    def forward(self, units: Any, speaker: Any = None, style: Any = None, dur_prediction: bool = False,
                f0: Any = None, *, durations: Any = None) -> torch.Tensor:
        """Synthesises one utterance.

        Args:
            units: ``(frames,)`` or ``(1, frames)`` unit ids (list, array or tensor); negative ids are dropped.
                Deduplicated units with ``dur_prediction=True`` or ``durations``.
            speaker: a name from ``speakers`` or an id (default id 0 when the vocoder has speakers); a vector of
                ``speaker_embedding_dim`` values for vocoders with an external speaker embedder.
            style: a name from ``styles`` or an id (default: the style named "default" where the list has one, else
                id 0 when the vocoder has styles).
            dur_prediction: predict each unit's frames with the duration predictor,
                ``clamp(round(exp(log_d) - 1), min=1)``.
            f0: F0 for F0-conditioned vocoders: ``(f0_frames,)`` speaker-normalised F0 (0 = unvoiced) or F0 bins,
                ``f0_frames`` a whole multiple or divisor of the unit frames.
            durations: frames per unit (instead of ``dur_prediction``), e.g. a ``SpeechEncoder``'s ``durations``.

        Returns:
            ``(samples,)`` float32 waveform at :attr:`output_sample_rate` (``frames * code_hop_size`` samples).

        Raises:
            VocoderError: empty or out-of-range units, unknown speaker/style, missing or misaligned F0, ...
        """
        return self._synthesize(self.features(units, speaker, style, dur_prediction, f0, durations=durations))

    @torch.inference_mode()
    def features(self, units: Any, speaker: Any = None, style: Any = None, dur_prediction: bool = False,
                 f0: Any = None, *, durations: Any = None) -> torch.Tensor:
        """The generator input of :meth:`forward` (same arguments): ``(1, conditioning_dim, frames)``."""
        u, keep = self._check_units(units, self.config.num_units)
        f = self._f0(f0, u, keep)
        u = self._frame_units(u, keep, durations, dur_prediction, self.model)
        return self.model.conditioning(u[None], None if f is None else f[None], self._speaker(speaker),
                                       self._index("style", style, self.styles, self.config.num_styles))

    def _f0(self, f0: Any, units: torch.Tensor, keep: torch.Tensor) -> torch.Tensor | None:
        if self.config.f0 == "none":
            if f0 is not None:
                raise VocoderError("f0: this vocoder is not conditioned on F0")
            return None
        if f0 is None:
            raise VocoderError(f"f0 is required: this vocoder is conditioned on {self.config.f0} F0")
        f = self._as_1d(f0, "f0", integer=self.config.f0 == "quantized").to(self.device)
        if f.numel() == 0:
            raise VocoderError("f0: empty")
        if self.config.f0 == "quantized" and (int(f.min()) < 0 or int(f.max()) >= self.config.f0_bins):
            raise VocoderError(f"f0 bins must be in 0..{self.config.f0_bins - 1}. Found {int(f.min())}..{int(f.max())}")
        if bool(keep.all()):
            return f
        n = units.numel()
        if f.numel() % n:
            raise VocoderError(f"f0: with negative units to drop, f0 must have a whole number of frames per unit. "
                               f"Found {f.numel()} F0 frames for {n} units")
        return f[torch.repeat_interleave(keep, f.numel() // n)]
