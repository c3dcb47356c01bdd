"""The VDTTS public API: load a model folder, synthesise speech for a video and a text, dub a video file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from speechkit.errors import SpeechkitError
from speechkit.vdtts.config import VDTTSConfig
from speechkit.vdtts.factory import build_vdtts
from speechkit.vdtts.model import AlignedVDTTSModel, VDTTSModel
from speechkit.vdtts.text import encode_phonemes, phonemize

__all__ = ["VDTTS", "dub", "default_model_dir", "FORMAT_KIND"]

FORMAT_KIND = "vdtts"


def default_model_dir() -> Path:
    """``checkpoints/vdtts`` of the source tree (the small model shipped with speechkit), or of the working
    directory when speechkit is installed without its source tree."""
    here = Path(__file__).resolve().parents[2] / "checkpoints" / "vdtts"
    return here if (here / "config.json").is_file() else Path.cwd() / "checkpoints" / "vdtts"


def resample_frames(num_frames: int, fps: float, target_fps: float) -> np.ndarray:
    """Indices of the input frames shown at each output frame when ``fps`` video is played at ``target_fps``."""
    n_out = max(1, round(num_frames * target_fps / fps))
    return np.minimum(np.floor((np.arange(n_out) + 0.5) * fps / target_fps).astype(int), num_frames - 1)


class VDTTS(torch.nn.Module):
    """A VDTTS model with its mel vocoder.

    Example:
        >>> tts = VDTTS.from_pretrained("checkpoints/vdtts")
        >>> wav = tts.synthesize_video("face.mp4", "Bring the red box.", speaker="us2")   # (samples,) at 16 kHz
    """

    def __init__(self, model: VDTTSModel | AlignedVDTTSModel, config: VDTTSConfig, vocoder: str = "griffinlim",
                 vocoder_path: str | os.PathLike | None = None):
        super().__init__()
        from speechkit.vdtts.vocoding import load_vocoder

        self.model, self.config = model.eval(), config
        self.vocoder = load_vocoder(config, vocoder, vocoder_path)
        self.precision = "fp32"

    def set_precision(self, precision: str) -> VDTTS:
        """Runs the acoustic model under ``"bf16"`` / ``"fp16"`` autocast and a HiFi-GAN mel vocoder in that
        precision (Griffin-Lim stays fp32), or everything in ``"fp32"`` (the default). Where the device lacks the
        kernels, everything stays fp32 and one warning line says why (:mod:`speechkit.precision`)."""
        from speechkit.precision import resolve_precision

        self.precision = resolve_precision(precision, next(self.model.parameters()).device, what="VDTTS")
        if hasattr(self.vocoder, "set_precision"):
            self.vocoder.set_precision(self.precision)
        return self

    @property
    def output_sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def speakers(self) -> list[str]:
        return list(self.config.speakers)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike | None = None, *, vocoder: str = "griffinlim",
                        vocoder_path: str | os.PathLike | None = None) -> VDTTS:
        """Loads a folder written by :meth:`save_pretrained` (``model.safetensors`` + ``config.json``).

        Args:
            folder: model folder (default: :func:`default_model_dir`).
            vocoder: ``"griffinlim"`` or ``"hifigan"`` (then ``vocoder_path`` names the mel HiFi-GAN).
            vocoder_path: mel HiFi-GAN checkpoint with the model's sample rate, hop length and mel channels.

        Raises:
            CheckpointError: missing or unreadable files, or not a VDTTS folder.
        """
        from speechkit.utils.checkpoint import CheckpointError, load_pretrained

        folder = Path(folder) if folder is not None else default_model_dir()
        state, meta = load_pretrained(folder)
        if meta.get("kind") != FORMAT_KIND or "model" not in meta:
            raise CheckpointError(f"{folder}/config.json: not a VDTTS model (kind {meta.get('kind')!r})")
        cfg = VDTTSConfig.from_dict(meta["model"])
        model = build_vdtts(cfg)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{folder}/model.safetensors: weights do not match the config (missing "
                                  f"{missing[:5]}, unexpected {unexpected[:5]})")
        return cls(model, cfg, vocoder, vocoder_path)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Writes ``model.safetensors`` + ``config.json`` (``{"kind": "vdtts", "model": {...}}``)."""
        return save_model(folder, self.model, self.config)

    def speaker_id(self, speaker: str | int | None) -> int:
        if speaker is None:
            return 0
        if isinstance(speaker, int) and 0 <= speaker < len(self.config.speakers):
            return speaker
        if speaker in self.config.speakers:
            return self.config.speakers.index(speaker)
        raise SpeechkitError(f"speaker must be one of {self.config.speakers} or an index. Found {speaker!r}")

    @torch.inference_mode()
    def mel(self, crops: np.ndarray, text: str, speaker: str | int | None = None,
            alignment: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        """Log-mel for mouth crops at the model's frame rate.

        Args:
            crops: ``uint8 (T, crop_size, crop_size)`` (see :func:`speechkit.audio.video.mouth_crops`).
            text: what is said.
            speaker: name or index (default: the first speaker).
            alignment: the aligned decoder only: ``(T * r,)`` class of every mel frame (0 = silence, ``n`` = the
                ``n``-th phoneme of :func:`~speechkit.vdtts.text.phonemize`'s output) instead of the aligner's path,
                e.g. :func:`~speechkit.vdtts.manifest.alignment_targets` of known phoneme timings.

        Returns:
            ``(num_mels, T * r)``.
        """
        ids = encode_phonemes(phonemize(text), self.config.phonemes)
        if len(crops) == 0:
            raise SpeechkitError("the video has zero frames")
        kw = {}
        if alignment is not None:
            if self.config.decoder != "aligned":
                raise SpeechkitError("alignment= needs a model with decoder 'aligned'; this one has "
                                     f"{self.config.decoder!r}")
            alignment = torch.as_tensor(np.asarray(alignment), dtype=torch.long)
            lo, hi = (int(alignment.min()), int(alignment.max())) if alignment.numel() else (0, 0)
            if alignment.shape != (len(crops) * self.config.mel_frames_per_video_frame,) or lo < 0 or hi > len(ids):
                raise SpeechkitError(f"alignment must be {len(crops) * self.config.mel_frames_per_video_frame} "
                                     f"classes in [0, {len(ids)}] (one per mel frame). Found shape "
                                     f"{tuple(alignment.shape)}, range [{lo}, {hi}]")
            kw["alignment"] = alignment[None].to(next(self.model.parameters()).device)
        dev = next(self.model.parameters()).device
        phon = torch.tensor([ids], device=dev)
        x = torch.from_numpy(np.asarray(crops, dtype=np.float32) / 255.0)[None].to(dev)
        from speechkit.precision import DTYPES

        with torch.autocast(dev.type, dtype=DTYPES[self.precision], enabled=self.precision != "fp32"):
            _, mel, _ = self.model(phon, torch.tensor([len(ids)], device=dev), x,
                                   torch.tensor([len(crops)], device=dev),
                                   torch.tensor([self.speaker_id(speaker)], device=dev), **kw)
        return mel[0].T.float()

    def synthesize_frames(self, frames: np.ndarray, fps: float, text: str, speaker: str | int | None = None,
                          vocoders: dict[str, torch.nn.Module] | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """Speech for RGB frames: ``float32 (samples,)`` at :attr:`output_sample_rate`, ``len(frames) / fps``
        seconds long.

        With ``vocoders`` (name -> mel vocoder, see :func:`speechkit.vdtts.vocoding.load_vocoder`), the log-mel is
        predicted once and spoken by each of them: returns name -> waveform.
        """
        from speechkit.audio.video import mouth_crops
        from speechkit.vdtts.vocoding import vocode

        idx = resample_frames(len(frames), fps, self.config.fps)
        crops = mouth_crops(frames[idx], tuple(self.config.mouth_box), self.config.crop_size)
        mel = self.mel(crops, text, speaker)
        n = int(round(len(frames) / fps * self.output_sample_rate))
        if vocoders is None:
            return vocode(self.vocoder, mel, n)
        return {name: vocode(voc, mel, n) for name, voc in vocoders.items()}

    def synthesize_video(self, video: str | os.PathLike, text: str, speaker: str | int | None = None) -> np.ndarray:
        """Speech for a video file (see :meth:`synthesize_frames`)."""
        from speechkit.audio.video import read_video

        v = read_video(video, audio=False)
        return self.synthesize_frames(v.frames, v.fps, text, speaker)

    def dub(self, video: str | os.PathLike, text: str, output: str | os.PathLike,
            speaker: str | int | None = None) -> Path:
        """Writes ``output``: every frame of ``video`` (copied, not re-encoded) with generated speech of the
        video's length as its audio track.

        Raises:
            VideoError: missing or unreadable video, no video stream, zero frames.
            TextError: empty text.
        """
        from speechkit.audio.video import replace_audio
        from speechkit.vdtts.text import TextError

        if not text or not text.strip():
            raise TextError("text must not be empty (--text)")
        wav = self.synthesize_video(video, text, speaker)
        return replace_audio(video, output, wav, self.output_sample_rate)


def save_model(folder: str | os.PathLike, model: VDTTSModel | AlignedVDTTSModel, config: VDTTSConfig) -> Path:
    """Writes a released VDTTS folder (safetensors + JSON config)."""
    from speechkit.utils.checkpoint import save_pretrained, unwrap

    state = {k: v.float() for k, v in unwrap(model).state_dict().items()}
    return save_pretrained(folder, state, {"kind": FORMAT_KIND, "format_version": 1, "model": config.to_dict()})


def dub(video: str | os.PathLike, text: str, output: str | os.PathLike, speaker: str | int | None = None, *,
        model: str | os.PathLike | None = None) -> Path:
    """Dubs ``video`` with speech for ``text`` that follows the lips; see :meth:`VDTTS.dub`.

    Args:
        video: input video file.
        text: what is said.
        output: output ``.mp4``.
        speaker: speaker name of the model (default: its first speaker).
        model: model folder (default: ``checkpoints/vdtts``).

    Example:
        >>> import speechkit.vdtts
        >>> speechkit.vdtts.dub("face.mp4", "Bring the red box.", "dubbed.mp4", speaker="us2")
    """
    return VDTTS.from_pretrained(model).dub(video, text, output, speaker)
