"""Per-file scoring shared by ``eval folder`` and the resynthesis benchmark: one :class:`Scorer` per process
(models loaded once), files scored in order, in parallel worker processes when ``jobs > 1``."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

__all__ = ["Scorer", "run_scoring"]

_worker_scorer = None  # the Scorer of a worker process (set by _init_worker, never in the parent)


class Scorer:
    """Computes the metric groups of one hypothesis (and its reference) and its report media.

    Args:
        metrics: metric groups (``wer``, ``cer``, ``f0``, ``speaker``, ``dnsmos``, ``genppl``).
        asr: ``"pocketsphinx"`` or a local HF folder.
        pitch: :class:`~speechkit.metrics.f0.PitchConfig`.
        text_lm: the GenPPL text LM (folder or hub name; see :mod:`speechkit.metrics.genppl`).
    """

    def __init__(self, metrics: tuple[str, ...], asr: str, pitch, text_lm: str | None = None):
        self.metrics, self.pitch = tuple(metrics), pitch
        self._asr_spec, self._asr, self._speaker, self._dnsmos = asr, None, None, None
        self._text_lm_spec, self._text_lm, self._vad = text_lm, None, None

    @property
    def text_lm(self):
        if self._text_lm is None:
            from speechkit.metrics.genppl import DEFAULT_TEXT_LM, TextLMScorer

            self._text_lm = TextLMScorer.from_pretrained(self._text_lm_spec or DEFAULT_TEXT_LM)
        return self._text_lm

    @property
    def asr(self):
        if self._asr is None:
            from speechkit.metrics.asr import load_asr

            self._asr = load_asr(self._asr_spec)
        return self._asr

    def speech_regions(self, wav: torch.Tensor, sr: int) -> dict:
        """silero-vad on ``wav``: ``speech_seconds`` found and ``has_speech`` (1.0 when any region was found)."""
        from silero_vad import get_speech_timestamps, load_silero_vad

        from speechkit.audio.io import resample

        if self._vad is None:
            self._vad = load_silero_vad()
        x = resample(wav, sr, 16000).float()
        stamps = get_speech_timestamps(x, self._vad, sampling_rate=16000, return_seconds=True) if len(x) else []
        seconds = float(sum(s["end"] - s["start"] for s in stamps))
        return {"speech_seconds": round(seconds, 3), "has_speech": float(bool(stamps))}

    def transcribe(self, wav: torch.Tensor, sr: int) -> str:
        from speechkit.audio.io import resample

        return self.asr.transcribe(resample(wav, sr, self.asr.sample_rate))

    def score(self, id: str, hyp: torch.Tensor, hyp_sr: int, ref: torch.Tensor | None = None,
              ref_sr: int | None = None, text: str | None = None, media_dir: Path | None = None,
              media_prefix: str = "media", prompt: str | None = None) -> dict:
        """One report row: durations, metric values, and (with ``media_dir``) the paths of its media, written as
        ``{media_prefix}/{name}`` (the path of ``media_dir`` relative to the report page). ``prompt``: the
        prompt's transcript, the context GenPPL scores the hypothesis' transcript in."""
        from speechkit.metrics.f0 import f0_errors, track_pitch
        from speechkit.metrics.wer import cer, normalize_text, wer

        row: dict = {"id": id, "duration_hyp": round(len(hyp) / hyp_sr, 3)}
        if ref is not None:
            row["duration_ref"] = round(len(ref) / ref_sr, 3)
        if "wer" in self.metrics or "cer" in self.metrics:
            row["asr"] = self.transcribe(hyp, hyp_sr)
            if text is None and ref is not None:
                text, row["text_source"] = self.transcribe(ref, ref_sr), "asr_of_reference"
            elif text is not None:
                row["text_source"] = "transcripts"
            row["text"] = text
            ok = bool(text and normalize_text(text))
            if "wer" in self.metrics:
                row["wer"] = wer(text, row["asr"]) if ok else math.nan
            if "cer" in self.metrics:
                row["cer"] = cer(text, row["asr"]) if ok else math.nan
        if "genppl" in self.metrics:
            if "asr" not in row:
                row["asr"] = self.transcribe(hyp, hyp_sr)
            if prompt is not None:
                row["prompt"] = prompt
            nll, tokens = self.text_lm.nll([row["asr"]], [prompt])[0]
            row["genppl_tokens"] = tokens
            row["genppl_nll"] = nll / tokens if tokens else math.nan
            row["genppl"] = math.exp(row["genppl_nll"]) if tokens else math.nan
        tracks = None
        if "f0" in self.metrics:
            tracks = track_pitch(ref, ref_sr, self.pitch), track_pitch(hyp, hyp_sr, self.pitch)
            row.update(f0_errors(*tracks))
            for side, track in zip(("voiced_ref", "voiced_hyp"), tracks, strict=True):  # few: a voice outside
                f0 = np.asarray(track.f0)                                               # the F0 range
                row[side] = float((f0 > 0).mean()) if f0.size else math.nan
        if "speaker" in self.metrics:
            if self._speaker is None:
                from speechkit.metrics.speaker import SpeakerEncoder

                self._speaker = SpeakerEncoder()
            row["speaker_sim"] = self._speaker.similarity(ref, ref_sr, hyp, hyp_sr)
        if "dnsmos" in self.metrics:
            if self._dnsmos is None:
                from speechkit.metrics.mos import DNSMOS

                self._dnsmos = DNSMOS()
            row.update(self._dnsmos(hyp, hyp_sr))
        if "vad" in self.metrics:
            row.update(self.speech_regions(hyp, hyp_sr))
        if media_dir is not None:
            row["media"] = _write_media(media_dir, media_prefix, id, hyp, hyp_sr, ref, ref_sr, tracks)
        return row


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _write_media(media_dir: Path, prefix: str, id: str, hyp, hyp_sr, ref, ref_sr, tracks) -> dict:
    """16 kHz audio copies and spectrogram PNGs beside the report, plus the F0 contours as numbers."""
    from speechkit.audio import io as audio_io
    from speechkit.metrics.report import spectrogram_png

    out: dict = {}
    for side, wav, sr in (("hyp", hyp, hyp_sr), ("ref", ref, ref_sr)):
        if wav is None:
            continue
        x = audio_io.resample(wav, sr, 16000)
        name = f"{_safe(id)}.{side}"
        audio_io.save(media_dir / f"{name}.wav", x.clamp(-1, 1), 16000, subtype="PCM_16")
        (media_dir / f"{name}.png").write_bytes(spectrogram_png(x.numpy(), 16000))
        out[f"{side}_audio"] = f"{prefix}/{name}.wav"
        out[f"{side}_spectrogram"] = f"{prefix}/{name}.png"
    if tracks is not None:
        ref_track, hyp_track = tracks
        out["f0"] = {"ref_times": np.round(ref_track.times, 3).tolist(), "ref": np.round(ref_track.f0, 1).tolist(),
                     "hyp_times": np.round(hyp_track.times, 3).tolist(), "hyp": np.round(hyp_track.f0, 1).tolist()}
    return out


def _score_job(scorer: Scorer, job: dict) -> dict:
    from speechkit.audio import io as audio_io

    pair = job["pair"]
    hyp, hyp_sr = audio_io.load(pair.hyp)
    ref, ref_sr = audio_io.load(pair.ref) if pair.ref is not None else (None, None)
    row = scorer.score(pair.id, hyp, hyp_sr, ref, ref_sr, pair.text, job["media_dir"],
                       job.get("media_prefix", "media"), prompt=getattr(pair, "prompt", None))
    row["hyp"] = str(pair.hyp)
    if pair.ref is not None:
        row["ref"] = str(pair.ref)
    return {**job.get("extra", {}), **row}


def _init_worker(metrics, asr, pitch, text_lm) -> None:
    global _worker_scorer
    torch.set_num_threads(1)
    _worker_scorer = Scorer(metrics, asr, pitch, text_lm)


def _worker(job: dict) -> dict:
    return _score_job(_worker_scorer, job)


def run_scoring(jobs: list[dict], config) -> list[dict]:
    """Scores ``{"pair": Pair, "media_dir": Path | None, "media_prefix": str, "extra": {...}}`` jobs with
    ``config`` (metrics, asr, pitch, jobs); rows come back in input order, ``extra`` keys first."""
    from tqdm import tqdm

    if config.jobs <= 1 or len(jobs) <= 1:
        scorer = Scorer(config.metrics, config.asr, config.pitch, config.text_lm)
        return [_score_job(scorer, j) for j in tqdm(jobs, desc="scoring", unit="file", disable=None)]
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(config.jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(config.metrics, config.asr, config.pitch, config.text_lm)) as pool:
        return list(tqdm(pool.map(_worker, jobs), total=len(jobs), desc="scoring", unit="file", disable=None))
