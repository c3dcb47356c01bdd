"""Recording conditions for training data: rooms, noise, channels, levels; seeded and length-preserving.

Synthetic speech is clean, close-talk and full-band; a user's recordings are not. :func:`degrade` draws one
random chain of conditions from a :class:`random.Random` and applies it without moving anything in time (the
room's tail is cut at the input's length, channel filters are zero-phase), so frame labels made on the clean
audio (the synthesiser's phones) stay exact::

    >>> rng = random.Random(0)
    >>> noisy, chain = degrade(wav, 16000, rng)
    >>> chain
    ['room(rt60=0.42s)', 'noise(pink, snr=17.3dB)', 'telephone']

Conditions (each drawn with the probability in :class:`Conditions`):

* ``room``: a simulated room impulse response (exponentially decaying noise, RT60 0.15-0.9 s, direct path kept);
* ``noise``: white, pink or brown noise, or babble (other people speaking: supplied ``babble`` clips mixed), at an
  SNR of 0-30 dB;
* ``telephone``: 300-3400 Hz band at 8 kHz, then 8-bit mu-law, back to the input rate; or ``lowpass``: a 4-7 kHz
  band limit (wideband codecs, cheap microphones);
* ``level``: gain of -25..+6 dB, ``clip`` at 0.3-0.9 of full scale, ``dc`` offset.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

__all__ = ["Conditions", "degrade", "room_impulse_response", "add_noise", "colored_noise"]


@dataclass(frozen=True)
class Conditions:
    """Probability of each condition in one :func:`degrade` chain, and their ranges."""

    room: float = 0.4
    noise: float = 0.5
    telephone: float = 0.15
    lowpass: float = 0.15
    level: float = 0.5
    clip: float = 0.1
    dc: float = 0.05
    rt60: tuple[float, float] = (0.15, 0.9)
    snr_db: tuple[float, float] = (0.0, 30.0)
    gain_db: tuple[float, float] = (-25.0, 6.0)


def room_impulse_response(sample_rate: int, rt60: float, rng: random.Random, direct_to_reverb_db: float = 3.0):
    """A diffuse-tail room response: a unit direct path, then Gaussian noise decaying by 60 dB in ``rt60`` seconds
    (energy ``direct_to_reverb_db`` below the direct path), starting 2 ms after it."""
    n = max(2, int(rt60 * sample_rate))
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    t = torch.arange(n, dtype=torch.float32) / sample_rate
    tail = torch.randn(n, generator=g) * torch.exp(-6.9078 * t / rt60)
    tail[: int(0.002 * sample_rate)] = 0.0
    tail = tail / tail.norm().clamp_min(1e-9) * 10 ** (-direct_to_reverb_db / 20)
    tail[0] = 1.0
    return tail


def colored_noise(n: int, color: str, rng: random.Random) -> torch.Tensor:
    """Unit-RMS ``white`` (flat), ``pink`` (1/f power) or ``brown`` (1/f^2 power) noise of ``n`` samples."""
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    spec = torch.fft.rfft(torch.randn(n, generator=g))
    f = torch.arange(spec.numel(), dtype=torch.float32).clamp_min(1.0)
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[color]
    x = torch.fft.irfft(spec / f**exponent, n=n)
    return x / x.pow(2).mean().sqrt().clamp_min(1e-12)


def add_noise(wav: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``wav`` plus ``noise`` (tiled or cut to its length) scaled to ``snr_db`` below the speech power."""
    if noise.numel() < wav.numel():
        noise = noise.repeat(math.ceil(wav.numel() / noise.numel()))
    noise = noise[: wav.numel()]
    p_s, p_n = wav.pow(2).mean(), noise.pow(2).mean().clamp_min(1e-12)
    return wav + noise * torch.sqrt(p_s / (p_n * 10 ** (snr_db / 10)))


def _babble(clips: list[torch.Tensor], n: int, rng: random.Random, talkers: int = 3) -> torch.Tensor:
    """``talkers`` random stretches of the ``clips`` (each tiled to ``n`` samples when shorter), summed."""
    mix = torch.zeros(n)
    for _ in range(talkers):
        clip = clips[rng.randrange(len(clips))].float().reshape(-1)
        if clip.numel() < n:
            clip = clip.repeat(math.ceil(n / clip.numel()))
        start = rng.randrange(clip.numel() - n + 1)
        mix += clip[start : start + n]
    return mix


def _reverb(wav: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    n = wav.numel() + rir.numel() - 1
    size = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(wav, size) * torch.fft.rfft(rir, size), size)[: wav.numel()]
    return y * (wav.pow(2).mean() / y.pow(2).mean().clamp_min(1e-12)).sqrt()  # the same speech level


def _zero_phase_band(wav: torch.Tensor, sample_rate: int, low: float, high: float) -> torch.Tensor:
    """A brick-wall band in the frequency domain (zero phase: nothing moves in time)."""
    spec = torch.fft.rfft(wav)
    f = torch.fft.rfftfreq(wav.numel(), 1 / sample_rate)
    return torch.fft.irfft(spec * ((f >= low) & (f <= high)), n=wav.numel())


def _telephone(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    import torchaudio.functional as AF

    x = AF.resample(wav, sample_rate, 8000) if sample_rate != 8000 else wav
    x = _zero_phase_band(x, 8000, 300.0, 3400.0).clamp(-1, 1)
    mu = 255.0  # 8-bit mu-law (G.711): quantise in the companded domain
    comp = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    comp = torch.round((comp + 1) / 2 * mu) / mu * 2 - 1
    x = torch.sign(comp) * ((1 + mu) ** comp.abs() - 1) / mu
    y = AF.resample(x, 8000, sample_rate) if sample_rate != 8000 else x
    return torch.nn.functional.pad(y, (0, max(0, wav.numel() - y.numel())))[: wav.numel()]


def degrade(wav: torch.Tensor, sample_rate: int, rng: random.Random, conditions: Conditions = Conditions(),
            babble: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, list[str]]:
    """One random chain of recording conditions applied to ``(samples,)`` audio; same length out.

    Args:
        wav: float audio in [-1, 1].
        sample_rate: its rate.
        rng: the only source of randomness (seed it from the item and epoch for reproducible training).
        conditions: probabilities and ranges.
        babble: other speech clips at ``sample_rate`` for the babble noise (white/pink/brown only when ``None``).

    Returns:
        The degraded audio (float32, clamped to [-1, 1]) and the names of the conditions applied, in order.
    """
    c = conditions
    x = wav.float().reshape(-1)
    chain: list[str] = []
    if x.numel() < 2:
        return x.clone(), chain
    if rng.random() < c.room:
        rt60 = rng.uniform(*c.rt60)
        x = _reverb(x, room_impulse_response(sample_rate, rt60, rng))
        chain.append(f"room(rt60={rt60:.2f}s)")
    if rng.random() < c.noise:
        kinds = ["white", "pink", "brown"] + (["babble"] if babble else [])
        kind = rng.choice(kinds)
        snr = rng.uniform(*c.snr_db)
        noise = _babble(babble, x.numel(), rng) if kind == "babble" else colored_noise(x.numel(), kind, rng)
        x = add_noise(x, noise, snr)
        chain.append(f"noise({kind}, snr={snr:.1f}dB)")
    r = rng.random()
    if r < c.telephone:
        x = _telephone(x, sample_rate)
        chain.append("telephone")
    elif r < c.telephone + c.lowpass:
        cutoff = min(rng.uniform(4000.0, 7000.0), sample_rate / 2)
        x = _zero_phase_band(x, sample_rate, 0.0, cutoff)
        chain.append(f"lowpass({cutoff:.0f}Hz)")
    if rng.random() < c.level:
        gain = rng.uniform(*c.gain_db)
        x = x * 10 ** (gain / 20)
        chain.append(f"level({gain:+.1f}dB)")
    if rng.random() < c.dc:
        offset = rng.uniform(-0.05, 0.05)
        x = x + offset
        chain.append(f"dc({offset:+.3f})")
    if rng.random() < c.clip:
        peak = x.abs().max().clamp_min(1e-9)
        limit = rng.uniform(0.3, 0.9)
        x = (x / peak).clamp(-limit, limit) * peak
        chain.append(f"clip({limit:.2f})")
    return x.clamp(-1.0, 1.0), chain
