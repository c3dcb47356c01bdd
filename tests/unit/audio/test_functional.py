import numpy as np

from speechkit.audio.functional import periodicity, whisperize


def vowel(sr=16000, seconds=1.0, f0=150.0):
    """A crude voiced vowel: a pulse train through two resonances."""
    from scipy.signal import lfilter

    n = int(sr * seconds)
    pulses = np.zeros(n)
    pulses[:: int(sr / f0)] = 1.0
    x = pulses
    for freq, bw in ((700, 80), (1200, 100)):
        r = np.exp(-np.pi * bw / sr)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * freq / sr), r * r], x)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def test_whisperize_removes_periodicity_keeps_envelope_and_length():
    x = vowel()
    y = whisperize(x, 16000, seed=3)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert periodicity(x, 16000) > 0.8
    assert periodicity(y, 16000) < 0.5
    # the spectral envelope survives: energy stays concentrated around the first formant, not the top band
    spec = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / 16000)
    assert spec[(freqs > 500) & (freqs < 1400)].sum() > 5 * spec[freqs > 5000].sum()
    # output level is gain x input level
    np.testing.assert_allclose(np.sqrt(np.mean(y**2)), 0.5 * np.sqrt(np.mean(x**2)), rtol=1e-3)


def test_whisperize_is_deterministic_and_silence_stays_silent():
    x = np.concatenate([np.zeros(4000, np.float32), vowel(seconds=0.5)])
    a, b = whisperize(x, 16000, seed=1), whisperize(x, 16000, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, whisperize(x, 16000, seed=2))
    assert np.max(np.abs(a[:3000])) == 0.0
