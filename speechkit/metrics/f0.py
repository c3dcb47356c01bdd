"""Pitch tracking and F0 error metrics: GPE, VDE, FFE (as defined by fairseq's speech-synthesis evaluation), F0
RMSE and correlation.

Definitions, for a reference track ``r`` and a hypothesis track ``h`` (F0 in Hz per frame, 0 = unvoiced), after
``h`` is put on ``r``'s frame times by nearest-neighbour lookup (0 outside ``h``'s time range):

- **GPE** (gross pitch error): among frames voiced in both, the fraction where ``|h / r - 1| > 0.2``;
- **VDE** (voicing decision error): the fraction of all reference frames whose voiced/unvoiced decisions differ;
- **FFE** (F0 frame error): (gross pitch error frames + voicing error frames) / all reference frames;
- **F0 RMSE** (Hz) and **F0 correlation** (Pearson): over frames voiced in both.

Corpus figures are means over utterances (an utterance with no frame voiced in both has no GPE/RMSE/correlation
and is left out of those means).

The default :class:`PitchConfig` is the protocol of fairseq's ``examples/speech_synthesis/evaluation/eval_f0.py``
used for the published Expresso numbers: YIN with 512-sample windows, a 256-sample hop, 100-500 Hz, harmonicity
threshold 0.1 (here on audio resampled to 16 kHz). ``method="pyin"`` (librosa) and ``method="crepe"``
(torchcrepe, its weights ship in the wheel) are the alternatives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["PitchConfig", "F0Track", "yin", "track_pitch", "f0_errors", "compare_f0", "F0_METRICS",
           "PITCH_PROTOCOLS", "VOICING_METRICS"]

F0_METRICS = ("gpe", "vde", "ffe", "f0_rmse", "f0_corr")
VOICING_METRICS = ("voiced_ref", "voiced_hyp")  # share of each side's frames the tracker finds voiced
# named pitch settings: "wide" (speechkit's default: covers low male voices) and "fairseq" (fairseq's eval_f0.py,
# the Expresso / speech-resynthesis protocol: YIN 100-500 Hz, for numbers comparable with the papers')
PITCH_PROTOCOLS = {"wide": {"method": "yin", "fmin": 50.0, "fmax": 500.0},
                   "fairseq": {"method": "yin", "fmin": 100.0, "fmax": 500.0}}


@dataclass(frozen=True, kw_only=True)
class PitchConfig:
    """How pitch is tracked.

    Attributes:
        method: ``"yin"`` (the fairseq/Expresso protocol), ``"pyin"`` (librosa) or ``"crepe"`` (torchcrepe).
        sample_rate: audio is resampled to this rate before tracking.
        frame_length: analysis window in samples (YIN, pYIN).
        hop_length: samples between frames.
        fmin: lowest F0 in Hz (the fairseq protocol's 100 Hz misses low male voices: the ``"wide"`` protocol,
            the default of ``speechkit eval folder``, starts at 50).
        fmax: highest F0 in Hz.
        threshold: YIN's harmonicity threshold (the first dip of the normalised difference below it wins).
        crepe_model: ``"tiny"`` or ``"full"``.
        crepe_voicing: torchcrepe periodicity above which a frame counts as voiced.
    """

    method: str = "yin"
    sample_rate: int = 16000
    frame_length: int = 512
    hop_length: int = 256
    fmin: float = 100.0
    fmax: float = 500.0
    threshold: float = 0.1
    crepe_model: str = "tiny"
    crepe_voicing: float = 0.21

    @classmethod
    def protocol(cls, name: str, **overrides) -> PitchConfig:
        """Settings of a named protocol (:data:`PITCH_PROTOCOLS`), with ``overrides`` (``None`` values ignored)."""
        if name not in PITCH_PROTOCOLS:
            raise ValueError(f"pitch protocol must be one of {sorted(PITCH_PROTOCOLS)}. Found {name!r}")
        return cls(**{**PITCH_PROTOCOLS[name], **{k: v for k, v in overrides.items() if v is not None}})

    def validate(self) -> None:
        """Raises ``ValueError`` naming the field, the rule and the value."""
        if self.method not in ("yin", "pyin", "crepe"):
            raise ValueError(f"method must be 'yin', 'pyin' or 'crepe'. Found {self.method!r}")
        if not 0 < self.fmin < self.fmax < self.sample_rate / 2:
            raise ValueError(f"need 0 < fmin < fmax < sample_rate / 2. Found fmin={self.fmin}, fmax={self.fmax}, "
                             f"sample_rate={self.sample_rate}")
        if self.hop_length <= 0 or self.frame_length <= 0:
            raise ValueError(f"frame_length and hop_length must be > 0. Found {self.frame_length}, {self.hop_length}")
        if self.method == "yin" and self.frame_length < self.sample_rate / self.fmax:
            raise ValueError(f"frame_length {self.frame_length} is shorter than one period at fmax={self.fmax} Hz")
        if self.crepe_model not in ("tiny", "full"):
            raise ValueError(f"crepe_model must be 'tiny' or 'full'. Found {self.crepe_model!r}")


@dataclass(frozen=True)
class F0Track:
    """A pitch track: ``times`` ``(frames,)`` in seconds and ``f0`` ``(frames,)`` in Hz, 0 where unvoiced."""

    times: np.ndarray
    f0: np.ndarray

    @property
    def voiced(self) -> np.ndarray:
        return self.f0 > 0


def yin(wav: np.ndarray, sample_rate: int, *, frame_length: int = 512, hop_length: int = 256, fmin: float = 100.0,
        fmax: float = 500.0, threshold: float = 0.1) -> F0Track:
    """YIN pitch tracking (de Cheveigné & Kawahara 2002), frame by frame as in fairseq's ``eval_f0.py``.

    Frames start every ``hop_length`` samples while a whole window fits strictly inside the signal; a frame's
    time is its start. Per frame, the difference function ``d(τ) = Σ_j (x_j − x_{j+τ})²`` is normalised by its
    cumulative mean; the first lag in ``[sr/fmax, sr/fmin)`` below ``threshold`` is followed down to its local
    minimum and gives F0 = sr / lag; no such lag means unvoiced (0).

    Args:
        wav: ``(samples,)`` float audio.
        sample_rate: its rate.
        frame_length: window in samples.
        hop_length: hop in samples.
        fmin: lowest F0 in Hz.
        fmax: highest F0 in Hz.
        threshold: harmonicity threshold.

    Returns:
        An :class:`F0Track`.

    Example:
        >>> t = np.arange(16000) / 16000
        >>> float(np.median(yin(np.sin(2 * np.pi * 200 * t), 16000).f0))
        200.0
    """
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    tau_min, tau_max = int(sample_rate / fmax), min(int(sample_rate / fmin), frame_length)
    starts = np.arange(0, len(x) - frame_length, hop_length)
    times = starts / float(sample_rate)
    if len(starts) == 0:
        return F0Track(times, np.zeros(0))
    windows = np.lib.stride_tricks.sliding_window_view(x, frame_length)
    # frames are independent: blocks of 4096 keep memory flat (a whole hour at once took 8 GB), same numbers
    f0 = np.concatenate([_yin_frames(windows[starts[i:i + 4096]], sample_rate, frame_length, tau_min, tau_max,
                                     threshold) for i in range(0, len(starts), 4096)])
    return F0Track(times, f0)


def _yin_frames(frames: np.ndarray, sample_rate: int, frame_length: int, tau_min: int, tau_max: int,
                threshold: float) -> np.ndarray:
    """F0 of each row of ``frames`` ``(F, W)`` (see :func:`yin`)."""
    energy = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)  # (F, W + 1)
    n_fft = 1 << int(math.ceil(math.log2(frame_length + tau_max)))
    spec = np.fft.rfft(frames, n_fft, axis=1)
    autocorr = np.fft.irfft(spec * spec.conj(), n_fft, axis=1)[:, :tau_max]  # (F, tau_max)
    lags = np.arange(tau_max)
    # d(τ) = Σ_{j<W-τ} x_j² + Σ_{j≥τ} x_j² − 2 r(τ)
    diff = energy[:, frame_length - lags] + (energy[:, -1:] - energy[:, lags]) - 2 * autocorr
    with np.errstate(divide="ignore", invalid="ignore"):
        cmnd = diff[:, 1:] * lags[1:] / np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.concatenate([np.ones((len(frames), 1)), cmnd], axis=1)  # (F, tau_max), cmnd[:, 0] = 1
    window = np.nan_to_num(cmnd[:, tau_min:tau_max], nan=np.inf)
    below = window < threshold
    found = below.any(axis=1)
    first = tau_min + below.argmax(axis=1)
    # walk down from the first dip while the next lag is lower (stop at tau_max - 1)
    rising = np.nan_to_num(cmnd[:, 1:tau_max], nan=np.inf) >= np.nan_to_num(cmnd[:, : tau_max - 1], nan=np.inf)
    rising = np.concatenate([rising, np.ones((len(frames), 1), bool)], axis=1)  # (F, tau_max): stop at the end
    stop = rising & (lags[None, :] >= first[:, None])
    best = stop.argmax(axis=1)
    f0 = np.where(found, sample_rate / np.maximum(best, 1), 0.0)
    return f0


def track_pitch(wav: torch.Tensor | np.ndarray, sample_rate: int, config: PitchConfig | None = None) -> F0Track:
    """Pitch track of ``(samples,)`` audio at any rate (resampled to ``config.sample_rate`` first).

    Example:
        >>> track = track_pitch(wav, 48000, PitchConfig(method="pyin"))
    """
    from speechkit.audio.io import resample

    cfg = config or PitchConfig()
    cfg.validate()
    x = torch.as_tensor(wav, dtype=torch.float32).reshape(-1)
    x = resample(x, sample_rate, cfg.sample_rate)
    sr = cfg.sample_rate
    if cfg.method == "yin":
        return yin(x.numpy(), sr, frame_length=cfg.frame_length, hop_length=cfg.hop_length, fmin=cfg.fmin,
                   fmax=cfg.fmax, threshold=cfg.threshold)
    if cfg.method == "pyin":
        import librosa

        f0, _, _ = librosa.pyin(x.numpy(), fmin=cfg.fmin, fmax=cfg.fmax, sr=sr, frame_length=cfg.frame_length * 2,
                                hop_length=cfg.hop_length, center=True)
        f0 = np.nan_to_num(f0, nan=0.0)
        return F0Track(np.arange(len(f0)) * cfg.hop_length / sr, f0)
    import torchcrepe

    with torch.inference_mode():
        f0, periodicity = torchcrepe.predict(x[None], sr, cfg.hop_length, cfg.fmin, cfg.fmax, cfg.crepe_model,
                                             return_periodicity=True, batch_size=512, device="cpu")
    f0 = torch.where(periodicity >= cfg.crepe_voicing, f0, torch.zeros_like(f0))[0].double().numpy()
    return F0Track(np.arange(len(f0)) * cfg.hop_length / sr, f0)


def _on_reference_times(ref: F0Track, hyp: F0Track) -> np.ndarray:
    """``hyp``'s F0 at ``ref``'s frame times: nearest frame (the earlier one on a tie), 0 outside its range."""
    if len(hyp.times) == 0:
        return np.zeros(len(ref.times))
    mids = (hyp.times[1:] + hyp.times[:-1]) / 2
    out = hyp.f0[np.searchsorted(mids, ref.times, side="left")]
    inside = (ref.times >= hyp.times[0]) & (ref.times <= hyp.times[-1])
    return np.where(inside, out, 0.0)


def f0_errors(ref: F0Track, hyp: F0Track, *, tolerance: float = 0.2) -> dict[str, float]:
    """GPE, VDE, FFE, F0 RMSE (Hz) and F0 correlation of ``hyp`` against ``ref`` (see the module docstring).

    Args:
        ref: the reference track (its frames are the ones counted).
        hyp: the track under test.
        tolerance: relative F0 deviation beyond which a frame is a gross error.

    Returns:
        ``{"gpe", "vde", "ffe", "f0_rmse", "f0_corr"}``; NaN where undefined (no reference frames; no frame
        voiced in both for GPE/RMSE; fewer than two such frames or a flat track for the correlation).

    Example:
        >>> f0_errors(track, track)["ffe"]
        0.0
    """
    r = np.asarray(ref.f0, dtype=np.float64)
    h = _on_reference_times(ref, hyp)
    n = len(r)
    if n == 0:
        return dict.fromkeys(F0_METRICS, math.nan)
    both = (r > 0) & (h > 0)
    gross = both & (np.abs(h / (r + 1e-8) - 1) > tolerance)
    voicing = (r > 0) != (h > 0)
    nb = int(both.sum())
    out = {"gpe": gross.sum() / nb if nb else math.nan, "vde": voicing.sum() / n,
           "ffe": (gross.sum() + voicing.sum()) / n,
           "f0_rmse": float(np.sqrt(np.mean((h[both] - r[both]) ** 2))) if nb else math.nan, "f0_corr": math.nan}
    if nb >= 2 and np.std(h[both]) > 0 and np.std(r[both]) > 0:
        out["f0_corr"] = float(np.corrcoef(r[both], h[both])[0, 1])
    return {k: float(v) for k, v in out.items()}


def compare_f0(ref_wav, ref_sample_rate: int, hyp_wav, hyp_sample_rate: int,
               config: PitchConfig | None = None) -> dict[str, float]:
    """Tracks both signals with ``config`` and returns :func:`f0_errors` (each signal at any rate).

    Example:
        >>> compare_f0(ref, 48000, resynthesised, 16000)["gpe"]
    """
    return f0_errors(track_pitch(ref_wav, ref_sample_rate, config), track_pitch(hyp_wav, hyp_sample_rate, config))
