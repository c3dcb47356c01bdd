"""Lip-sync metrics and the VDTTS sync benchmark on held-out talking-face videos.

Per utterance (a video with known phoneme timing, and speech generated for it):

- **offset**: the lag (ms, parabolic-interpolated) that maximises the cross-correlation between the mouth
  opening seen in the video and the audio's log-energy envelope, both at the video frame rate; speech that
  follows the lips has a lag near 0 (the SyncNet idea without a learned embedding). ``|offset|`` is averaged.
- **boundary error**: the generated speech is aligned to the reference speech by DTW (cosine distance on
  mean-normalised log-mel); each phoneme boundary of the video's timing is mapped through the path; the mean
  absolute time difference (ms) says how far generated phoneme/segment durations are from the video's.
- **activity agreement**: the share of video frames where "speaking" (inside a phoneme other than a pause) and
  "audio active" (frame energy within 25 dB of the loudest frame) agree.
- **length mismatch**: ``|audio duration - video duration|`` (ms).
- **ASR WER** (optional): pocketsphinx's word error rate against the transcript, over the whole split, as a
  check of intelligibility (not of sync).

The mouth opening is the mean darkness (``max(0, 50 - grey)``) inside the mouth box: the mouth interior of the
synthetic faces is drawn near black, static parts of the face only add a constant, which the correlation ignores.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

__all__ = ["mouth_opening", "audio_envelope", "av_offset", "dtw_boundary_error", "activity_agreement",
           "sync_metrics", "run_benchmark"]

log = logging.getLogger(__name__)


def mouth_opening(frames: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """``float (T,)``: mean darkness ``max(0, 50 - grey)`` inside ``box`` of every RGB frame ``(T, H, W, 3)``."""
    h, w = frames.shape[1:3]
    x0, y0, x1, y1 = box
    crop = frames[:, int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)].astype(np.float32)
    grey = crop @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.maximum(0.0, 50.0 - grey).mean(axis=(1, 2))


def audio_envelope(wav: np.ndarray, sample_rate: int, fps: float, num_frames: int) -> np.ndarray:
    """``float (num_frames,)``: log RMS energy (dB, floored 60 dB under the peak) of each video frame's audio."""
    hop = sample_rate / fps
    out = np.empty(num_frames)
    for t in range(num_frames):
        seg = wav[int(round(t * hop)) : int(round((t + 1) * hop))]
        out[t] = 10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-12) if len(seg) else -120.0
    return np.maximum(out, out.max() - 60.0)


def av_offset(opening: np.ndarray, envelope: np.ndarray, fps: float, max_lag_s: float = 0.4) -> float:
    """Seconds by which the audio lags the mouth (positive: audio late), from the peak of the normalised
    cross-correlation over lags within ``max_lag_s``."""
    a = (opening - opening.mean()) / (opening.std() + 1e-8)
    b = (envelope - envelope.mean()) / (envelope.std() + 1e-8)
    max_lag = min(int(round(max_lag_s * fps)), len(a) - 2)
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.array([np.mean(a[max(0, -k) : len(a) - max(0, k)] * b[max(0, k) : len(b) - max(0, -k)])
                     for k in lags])
    i = int(np.argmax(corr))
    frac = 0.0
    if 0 < i < len(corr) - 1:
        den = corr[i - 1] - 2 * corr[i] + corr[i + 1]
        frac = 0.5 * (corr[i - 1] - corr[i + 1]) / den if den < 0 else 0.0
    return float((lags[i] + frac) / fps)


def _logmel(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=wav.astype(np.float32), sr=sample_rate, n_fft=1024, hop_length=160,
                                         win_length=640, n_mels=40)
    m = np.log(mel + 1e-6)
    return m - m.mean(axis=1, keepdims=True)


def dtw_boundary_error(ref: np.ndarray, gen: np.ndarray, sample_rate: int, boundaries: list[float]) -> float:
    """Mean absolute error (s) of ``boundaries`` (times in ``ref``) mapped into ``gen`` through a DTW path."""
    import librosa

    hop = 160 / sample_rate
    a, b = _logmel(ref, sample_rate), _logmel(gen, sample_rate)
    _, path = librosa.sequence.dtw(X=a, Y=b, metric="cosine")
    path = path[::-1]
    gen_at = np.zeros(a.shape[1])
    for i in range(a.shape[1]):
        gen_at[i] = path[path[:, 0] == i, 1].mean()
    errs = [abs(gen_at[min(int(round(t / hop)), len(gen_at) - 1)] * hop - t) for t in boundaries]
    return float(np.mean(errs)) if errs else 0.0


def speaking_frames(phonemes: list, num_frames: int, fps: float) -> np.ndarray:
    """``bool (num_frames,)``: the frame centre lies inside a phoneme other than a pause ``_``."""
    centres = (np.arange(num_frames) + 0.5) / fps
    out = np.zeros(num_frames, dtype=bool)
    for sym, start, end in phonemes:
        if sym != "_":
            out |= (centres >= start) & (centres < end)
    return out


def activity_agreement(envelope: np.ndarray, speaking: np.ndarray, threshold_db: float = 25.0) -> float:
    """Share of frames where ``envelope > max - threshold_db`` equals ``speaking``."""
    return float(np.mean((envelope > envelope.max() - threshold_db) == speaking))


def _boundaries(phonemes: list) -> list[float]:
    """Times where one phoneme ends and a different one begins (pauses merged)."""
    out, prev = [], None
    for sym, start, _ in phonemes:
        if prev is not None and not (sym == "_" and prev == "_"):
            out.append(float(start))
        prev = sym
    return out


def sync_metrics(frames: np.ndarray, fps: float, wav: np.ndarray, sample_rate: int, phonemes: list,
                 reference: np.ndarray, box: tuple[float, float, float, float]) -> dict[str, float]:
    """All metrics of one utterance; ``wav`` is the speech to score, ``reference`` the video's own speech."""
    n = len(frames)
    video_len = n / fps
    length_mismatch = abs(len(wav) / sample_rate - video_len)
    fitted = np.pad(wav, (0, max(0, int(round(video_len * sample_rate)) - len(wav))))
    env = audio_envelope(fitted, sample_rate, fps, n)
    return {
        "offset_ms": 1000 * abs(av_offset(mouth_opening(frames, box), env, fps)),
        "boundary_ms": 1000 * dtw_boundary_error(reference, wav, sample_rate, _boundaries(phonemes)),
        "activity": activity_agreement(env, speaking_frames(phonemes, n, fps)),
        "length_ms": 1000 * length_mismatch,
    }


COLUMNS = [("offset_ms", "AV offset (abs, ms) ↓"), ("boundary_ms", "phoneme boundary error (DTW) ms ↓"),
           ("activity", "speech/silence agreement ↑"), ("length_ms", "length mismatch ms ↓")]


def run_benchmark(corpus: str | Path, models: dict[str, Path], *, split: str = "test", limit: int | None = None,
                  baselines: Mapping[str, Callable[[str, str], tuple[np.ndarray, int]]] | None = None,
                  asr: bool = False, output: str | Path | None = None, vocoders: dict[str, Path] | None = None,
                  copy_synthesis: bool = False, true_alignment: bool = False) -> str:
    """Scores the reference speech, each VDTTS model and (optionally) text-only baselines on a corpus split.

    Args:
        corpus: talking-face corpus root.
        models: row name -> VDTTS model folder.
        split: manifest name (``CORPUS/{split}.jsonl``).
        limit: first N utterances only.
        baselines: row name -> ``speak(text, speaker) -> (wav, sample_rate)``: systems that see only the
            transcript (no video, their own length), e.g. plain MBROLA TTS (``speechkit vdtts-sync`` adds that
            row with :mod:`speechkit.synth.tts`; this module makes no speech itself).
        asr: add a pocketsphinx WER column (intelligibility).
        output: markdown table path; a ``.json`` with per-row means is written beside it.
        vocoders: name -> mel HiFi-GAN checkpoint: each model's log-mel is also spoken by each of these (rows
            ``"{model} + {name}"``; the model's own row is Griffin-Lim), from one prediction per video.
        copy_synthesis: add the reference speech's own log-mel (the features VDTTS is trained on) spoken by
            Griffin-Lim and by each of ``vocoders``: how much of the loss is the vocoder's alone. Uses the first
            model's features (the default config's without models).
        true_alignment: add, for every model with the aligned decoder, a row ``"{model}, true alignment"``: its
            decoder speaking the corpus's own phoneme timings instead of its aligner's path (Griffin-Lim), which
            separates the aligner's errors from the decoder's.

    Returns:
        The markdown table.
    """
    import torch

    from speechkit.audio import io as audio_io
    from speechkit.audio.video import DEFAULT_MOUTH_BOX, read_video
    from speechkit.vdtts.config import VDTTSConfig
    from speechkit.vdtts.factory import build_mel
    from speechkit.vdtts.inference import VDTTS
    from speechkit.vdtts.manifest import read_manifest
    from speechkit.vdtts.vocoding import load_vocoder, vocode

    rows = read_manifest(Path(corpus) / f"{split}.jsonl")[:limit]
    systems = {name: VDTTS.from_pretrained(folder) for name, folder in models.items()}
    extra = {name: {v: load_vocoder(tts.config, "auto", path) for v, path in (vocoders or {}).items()}
             for name, tts in systems.items()}
    scores: dict[str, list[dict]] = {"reference (corpus speech)": []}
    oracle = [name for name, tts in systems.items() if true_alignment and tts.config.decoder == "aligned"]
    for name in systems:
        scores[name] = []
        scores.update({f"{name} + {v}": [] for v in extra[name]})
        if name in oracle:
            scores[f"{name}, true alignment"] = []
    first = next(iter(systems), None)
    copy_cfg = systems[first].config if first is not None else VDTTSConfig()
    if copy_synthesis:
        copy = {"Griffin-Lim": load_vocoder(copy_cfg, "griffinlim")}
        copy.update(extra[first] if first is not None else
                    {v: load_vocoder(copy_cfg, "auto", path) for v, path in (vocoders or {}).items()})
        mel_fn = build_mel(copy_cfg)
        scores.update({f"reference mel + {v}": [] for v in copy})
    baselines = dict(baselines or {})
    scores.update({name: [] for name in baselines})
    recognizer = None
    if asr:
        from speechkit.metrics.asr import PocketSphinxASR

        recognizer = PocketSphinxASR()
    transcripts: dict[str, list[str]] = {name: [] for name in scores}
    for k, row in enumerate(rows):
        v = read_video(row["video"], audio=False)
        ref, sr = audio_io.load(row["audio"], sample_rate=16000)
        ref = ref.numpy()
        box = DEFAULT_MOUTH_BOX
        outputs = {"reference (corpus speech)": ref}
        for name, tts in systems.items():
            box = tuple(tts.config.mouth_box)
            wavs = tts.synthesize_frames(v.frames, v.fps, row["text"], row["speaker"],
                                         vocoders={name: tts.vocoder, **{f"{name} + {k}": voc
                                                                         for k, voc in extra[name].items()}})
            for rname, wav in wavs.items():
                outputs[rname] = audio_io.resample(torch.from_numpy(wav), tts.output_sample_rate, sr).numpy()
            if name in oracle:
                wav = _speak_true_alignment(tts, v, row)
                outputs[f"{name}, true alignment"] = audio_io.resample(torch.from_numpy(wav), tts.output_sample_rate,
                                                                        sr).numpy()
        if copy_synthesis:
            ref_mel = mel_fn(audio_io.resample(torch.from_numpy(ref), sr, copy_cfg.sample_rate)[None])[0]
            n = int(round(len(ref) / sr * copy_cfg.sample_rate))
            for vname, voc in copy.items():
                wav = vocode(voc, ref_mel, n)
                outputs[f"reference mel + {vname}"] = audio_io.resample(torch.from_numpy(wav), copy_cfg.sample_rate,
                                                                         sr).numpy()
        for bname, speak in baselines.items():
            wav, wav_sr = speak(row["text"], row["speaker"])
            outputs[bname] = audio_io.resample(torch.from_numpy(np.asarray(wav, dtype=np.float32)), wav_sr,
                                               sr).numpy()
        for name, wav in outputs.items():
            scores[name].append(sync_metrics(v.frames, v.fps, wav, sr, row["phonemes"], ref, box))
            if recognizer is not None:
                transcripts[name].append(recognizer.transcribe(wav))
        log.info("sync benchmark: %d/%d", k + 1, len(rows))
    columns = COLUMNS + ([("wer", "ASR WER ↓")] if recognizer is not None else [])
    means = {name: {key: float(np.mean([s[key] for s in ss])) for key, _ in COLUMNS} for name, ss in scores.items()}
    if recognizer is not None:
        from speechkit.metrics.wer import wer

        for name in means:
            means[name]["wer"] = wer([r["text"] for r in rows], transcripts[name])
    lines = [f"| system ({len(rows)} {split} videos) | " + " | ".join(h for _, h in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, m in means.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m[key]) for key, _ in columns) + " |")
    table = "\n".join(lines)
    if output is not None:
        from speechkit.utils.files import atomic_open

        out = Path(output)
        with atomic_open(out) as f:
            f.write(table + "\n")
        with atomic_open(out.with_suffix(".json")) as f:
            json.dump({"split": split, "utterances": len(rows), "models": {k: str(p) for k, p in models.items()},
                       "vocoders": {k: str(p) for k, p in (vocoders or {}).items()}, "means": means}, f, indent=2)
    return table


def _speak_true_alignment(tts, v, row) -> np.ndarray:
    """``tts``'s decoder speaking the manifest row's phoneme timings (Griffin-Lim or the model's vocoder)."""
    from speechkit.audio.video import mouth_crops
    from speechkit.vdtts.inference import resample_frames
    from speechkit.vdtts.manifest import alignment_targets
    from speechkit.vdtts.text import phonemize
    from speechkit.vdtts.vocoding import vocode

    cfg = tts.config
    crops = mouth_crops(v.frames[resample_frames(len(v.frames), v.fps, cfg.fps)], tuple(cfg.mouth_box), cfg.crop_size)
    align = alignment_targets(row["phonemes"], phonemize(row["text"]), len(crops) * cfg.mel_frames_per_video_frame,
                              cfg.hop_length, cfg.sample_rate)
    mel = tts.mel(crops, row["text"], row["speaker"], alignment=align)
    return vocode(tts.vocoder, mel, int(round(len(v.frames) / v.fps * cfg.sample_rate)))


def _fmt(x: float) -> str:
    return f"{x:.3f}" if abs(x) < 1.5 and not math.isclose(x, 0.0) else f"{x:.0f}"
