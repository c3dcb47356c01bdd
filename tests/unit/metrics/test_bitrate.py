import math

import pytest

from speechkit.metrics.bitrate import nominal_bitrate, unigram_entropy, unit_bitrates


def test_nominal_bitrate_of_the_expresso_setting():
    assert nominal_bitrate(50, 500) == pytest.approx(50 * math.log2(500))  # ~448 bps
    assert nominal_bitrate(25, 500) == pytest.approx(224.1, abs=0.1)
    with pytest.raises(ValueError, match="frame_rate > 0"):
        nominal_bitrate(0, 500)


def test_entropy_bitrates_by_hand():
    # 8 frames at 4 Hz = 2 s. Frame units: 0 x4, 1 x2, 2 x2 -> H = 1.5 bits; 8 frames / 2 s -> 6 bps.
    # Deduplicated: [0, 1, 2] and [0, 2] -> 0 x2, 1 x1, 2 x2 over 5 tokens.
    seqs = [[0, 0, 0, 1, 1, 2], [0, 2]]
    out = unit_bitrates(seqs, frame_rate=4, vocab_size=4)
    assert out["entropy_bits"] == pytest.approx(1.5)
    assert out["bitrate_entropy"] == pytest.approx(6.0)
    h5 = -(2 * 0.4 * math.log2(0.4) + 0.2 * math.log2(0.2))
    assert out["entropy_bits_dedup"] == pytest.approx(h5)
    assert out["bitrate_entropy_dedup"] == pytest.approx(h5 * 5 / 2)
    assert out["bitrate_nominal"] == pytest.approx(8.0) and out["tokens_per_second_dedup"] == pytest.approx(2.5)
    assert unigram_entropy([3, 3, 3]) == 0.0
    with pytest.raises(ValueError, match="no units"):
        unit_bitrates([[]], 50, 100)
