"""Stateless signal-processing helpers on waveforms."""

from __future__ import annotations

import numpy as np

__all__ = ["whisperize", "periodicity"]


def whisperize(
    wav: np.ndarray,
    sample_rate: int,
    *,
    frame_ms: float = 25.0,
    order: int | None = None,
    gain: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Turns voiced speech into whisper-like speech by LPC analysis and noise re-synthesis.

    Each frame's spectral envelope (an all-pole LPC filter, Burg's method) is kept; its excitation (glottal
    pulses) is replaced by white noise of the same residual energy. This is the classic source-filter recipe for
    whispered speech: formants (so the words) survive, the pitch disappears. Frames are 50% overlapped with a
    square-root Hann window for both analysis and synthesis, so the overlap-add is exact.

    Args:
        wav: ``(samples,)`` float waveform.
        sample_rate: its sample rate.
        frame_ms: analysis frame length in milliseconds.
        order: LPC order; default ``2 + sample_rate // 1000`` (18 at 16 kHz).
        gain: output RMS as a fraction of the input RMS (whispers are quieter).
        seed: seed of the noise excitation (the output is deterministic).

    Returns:
        ``(samples,)`` float32 whisper-like waveform.
    """
    import librosa
    from scipy.signal import lfilter

    x = np.asarray(wav, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"wav must be 1-D (samples,). Found shape {x.shape}")
    order = order or 2 + sample_rate // 1000
    n = int(round(sample_rate * frame_ms / 1000)) // 2 * 2
    hop = n // 2
    window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n))  # sqrt of a periodic Hann
    padded = np.concatenate([np.zeros(hop), x, np.zeros(n)])
    out = np.zeros_like(padded)
    rng = np.random.default_rng(seed)
    for start in range(0, len(padded) - n + 1, hop):
        frame = padded[start : start + n] * window
        noise = rng.standard_normal(n)  # drawn for every frame, so the noise does not depend on silences
        if np.dot(frame, frame) < 1e-10:
            continue
        try:
            a = librosa.lpc(frame, order=order)
        except (FloatingPointError, ValueError):
            continue
        if not np.all(np.isfinite(a)):
            continue
        residual_rms = np.sqrt(np.mean(lfilter(a, [1.0], frame) ** 2))
        out[start : start + n] += lfilter([1.0], a, noise * residual_rms) * window
    out = out[hop : hop + len(x)]
    in_rms, out_rms = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(out**2))
    if out_rms > 0:
        out *= gain * in_rms / out_rms
    peak = np.max(np.abs(out)) if len(out) else 0.0
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)


def periodicity(wav: np.ndarray, sample_rate: int, *, fmin: float = 60.0, fmax: float = 500.0) -> float:
    """Median normalised autocorrelation peak over active frames: ~0.8-1 for voiced speech, low for noise.

    Args:
        wav: ``(samples,)`` float waveform.
        sample_rate: its sample rate.
        fmin: lowest pitch considered, in Hz.
        fmax: highest pitch considered, in Hz.

    Returns:
        A value in [0, 1].
    """
    x = np.asarray(wav, dtype=np.float64)
    n = int(0.04 * sample_rate)
    lo, hi = int(sample_rate / fmax), int(sample_rate / fmin)
    frames = [x[i : i + n] for i in range(0, len(x) - n, n // 2)]
    energies = np.array([np.dot(f, f) for f in frames])
    if len(frames) == 0 or energies.max() <= 0:
        return 0.0
    peaks = []
    for f, e in zip(frames, energies, strict=True):
        if e < 0.1 * energies.max():
            continue
        f = f - f.mean()
        ac = np.correlate(f, f, mode="full")[n - 1 :]
        if ac[0] <= 0:
            continue
        peaks.append(np.max(ac[lo : min(hi, n - 1)]) / ac[0])
    return float(np.median(peaks)) if peaks else 0.0
