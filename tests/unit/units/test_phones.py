"""PhoneEncoder: pocketsphinx's en-us phones as 50 Hz units (the real-speech teacher tokenizer)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from speechkit.audio import io
from speechkit.units import SpeechEncoder
from speechkit.units.phones import PHONES, PhoneEncoder

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "checkpoints" / "default" / "samples" / "us1_default_00156.wav"
TEXT = "we need some cheese and some apples for the party"


def _edits(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _reference_phones() -> list[str]:
    from pocketsphinx import Decoder

    d = Decoder(samprate=16000, loglevel="FATAL")
    return [p for w in TEXT.split() for p in d.lookup_word(w).split()]


def test_units_are_the_spoken_phones_on_the_50hz_grid():
    wav, sr = io.load(SAMPLE)
    enc = PhoneEncoder()
    out = enc(wav, sr)
    x = io.resample(wav, sr, 16000)
    assert int(out["durations"].sum()) == x.numel() // 320                  # one unit per 20 ms frame
    assert bool((out["units"][1:] != out["units"][:-1]).all())               # deduplicated
    names = [PHONES[u] for u in out["units"]]
    assert names[0] == names[-1] == "SIL"                                    # the pauses at both ends
    spoken = [p for p in names if p != "SIL"]
    ref = _reference_phones()
    per = _edits(spoken, ref) / len(ref)
    assert per < 0.6, (per, spoken, ref)                                     # mostly the right phones
    shuffled = [PHONES[int(i)] for i in torch.randint(1, 40, (len(ref),), generator=torch.Generator().manual_seed(0))]
    assert _edits(shuffled, ref) / len(ref) > per + 0.25          # far better than chance


def test_no_memory_between_utterances_and_silence_is_silence():
    wav, sr = io.load(SAMPLE)
    enc = PhoneEncoder()
    first = enc(wav, sr)["units"]
    enc(torch.randn(16000) * 0.3, 16000)                                     # something else in between
    assert torch.equal(enc(wav, sr)["units"], first)
    quiet = enc(torch.zeros(16000), 16000)
    assert quiet["units"].tolist() == [0] and quiet["durations"].tolist() == [50]
    frames = enc(wav, sr)["durations"].sum()
    stereo = torch.stack([io.resample(wav, sr, 16000)] * 2)                  # (channels, samples) mixed down
    assert enc(stereo, 16000)["durations"].sum() == frames


def test_saved_folder_loads_through_the_speech_encoder_loader(tmp_path):
    PhoneEncoder(deduplicate=False).save_pretrained(tmp_path / "enc")
    enc = SpeechEncoder.from_pretrained(tmp_path / "enc")
    assert isinstance(enc, PhoneEncoder) and enc.vocab_size == len(PHONES) == 42 and not enc.deduplicate
    out = enc(torch.zeros(3200), 16000)
    assert out["units"].tolist() == [0] * 10 and out["durations"].tolist() == [1] * 10
    assert isinstance(SpeechEncoder.from_pretrained(tmp_path / "enc", need_f0=False), PhoneEncoder)
    with pytest.raises(ValueError, match="F0"):                              # no F0 stream to give
        SpeechEncoder.from_pretrained(tmp_path / "enc", need_f0=True)
