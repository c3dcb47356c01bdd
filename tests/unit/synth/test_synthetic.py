"""The synthetic mini-Expresso: layout, metadata, measurable styles, determinism and resumption."""

import os
import re
from collections import defaultdict

import numpy as np
import pytest

from speechkit.audio import io
from speechkit.audio.functional import periodicity
from speechkit.data.corpora import expresso
from speechkit.errors import SpeechkitError
from speechkit.synth.synthetic import STYLES, expresso_split_rule, prepare_mini_expresso

SPEAKERS = {"us1", "us2", "us3", "en1"}
pytestmark = pytest.mark.slow


def read_files(root):
    return sorted((root / "audio_48khz" / "read").rglob("*.wav"))


def test_read_layout_and_format(mini_expresso):
    files = read_files(mini_expresso)
    pattern = re.compile(r"audio_48khz/read/(\w+)/(\w+)/base/\1_\2_\d{5}\.wav$")
    cells = set()
    for f in files:
        m = pattern.search(f.relative_to(mini_expresso).as_posix())
        assert m, f
        cells.add(m.groups())
    assert cells == {(s, st) for s in SPEAKERS for st in STYLES}
    meta = io.info(files[0])
    assert (meta.sample_rate, meta.num_channels, meta.subtype) == (48000, 1, "PCM_24")
    total = sum(io.info(f).duration for f in files)
    assert 100 < total < 160  # minutes=2, give or take the last utterance of each cell


def test_conversations_are_stereo_turns_matching_vad(mini_expresso):
    convs = sorted((mini_expresso / "audio_48khz" / "conversational").rglob("*.wav"))
    assert len(convs) == 4
    same_style = [c for c in convs if "-" not in c.parent.name]
    mixed = [c for c in convs if "-" in c.parent.name]
    assert same_style and mixed  # both Expresso folder kinds: "{style}" and "{styleA}-{styleB}"
    vad = {}
    for line in (mini_expresso / "VAD_segments.txt").read_text().splitlines():
        if not line.startswith("#"):
            key, segs = line.split("\t")
            vad[key] = [tuple(map(float, s.split(","))) for s in re.findall(r"\(([^)]*)\)", segs)]
    for c in convs:
        assert c == expresso.audio_path(mini_expresso, c.stem)
        assert io.info(c).num_channels == 2
        both, sr = io.load(c, mono=False)
        for ch in (0, 1):
            segs = vad[f"{c.stem}/channel{ch + 1}"]
            assert len(segs) == 3
            inside = np.zeros(both.shape[1], bool)
            for a, b in segs:
                inside[int(a * sr) : int(b * sr)] = True
            x = both[ch].numpy()
            assert np.abs(x[inside]).mean() > 20 * (np.abs(x[~inside]).mean() + 1e-6)
            other = vad[f"{c.stem}/channel{2 - ch}"]
            assert all(b1 <= a2 or b2 <= a1 for a1, b1 in segs for a2, b2 in other)  # turns alternate


def test_transcripts_and_splits_cover_every_file_once(mini_expresso):
    stems = {f.stem for f in read_files(mini_expresso)}
    texts = expresso.read_transcriptions(mini_expresso)
    assert set(texts) == stems
    assert len(set(texts.values())) == len(texts)  # every read file speaks a different sentence
    splits = expresso.read_splits(mini_expresso)
    read_entries = [e.stem for entries in splits.values() for e in entries if e.stem in stems]
    assert sorted(read_entries) == sorted(stems)
    assert {expresso.parse_stem(e.stem).speaker for e in splits["test"] if e.stem in stems} == SPEAKERS
    for held_out in ("test", "dev"):
        for e in splits[held_out]:
            if e.stem not in stems:  # a dialogue: its first part held out, the rest in train
                assert e.start is None and e.end > 0
                assert expresso.SplitEntry(e.stem, e.end, None) in splits["train"]


def test_split_rule_takes_last_files_for_test_then_dev():
    assert expresso_split_rule([3.0] * 10) == ["train"] * 8 + ["dev", "test"]
    assert expresso_split_rule([30.0] * 30) == ["train"] * 26 + ["dev"] * 2 + ["test"] * 2  # 10% of 900 s < 60 s
    assert expresso_split_rule([1.0, 1.0]) == ["train", "train"]


def _median_f0(wav, sr):
    import librosa

    f0 = librosa.yin(wav, fmin=60, fmax=500, sr=sr)
    return float(np.median(f0))


def test_styles_are_measurably_different(mini_expresso):
    texts = expresso.read_transcriptions(mini_expresso)
    rate, voicing, pitch = defaultdict(list), defaultdict(list), defaultdict(list)
    for f in read_files(mini_expresso):
        info = expresso.parse_stem(f.stem)
        wav, sr = io.load(f, sample_rate=16000)
        wav = wav.numpy()
        rate[info.style].append(len(wav) / sr / len(texts[f.stem]))  # seconds per character
        voicing[info.style].append(periodicity(wav, sr))
        if info.speaker == "us2":
            pitch[info.style].append(_median_f0(wav, sr))
    mean = {k: {s: float(np.mean(v)) for s, v in d.items()} for k, d in
            (("rate", rate), ("voicing", voicing), ("pitch", pitch))}
    assert mean["rate"]["slow"] > 1.25 * mean["rate"]["default"] > 1.25 * 1.2 * mean["rate"]["fast"]
    assert mean["voicing"]["whisper"] < mean["voicing"]["default"] - 0.2
    assert mean["pitch"]["animated"] > 1.2 * mean["pitch"]["default"]


def test_deterministic_resumable_and_guarded(tmp_path):
    kw = dict(minutes=0.2, speakers=("us2",), styles=("default", "fast"), conversations=0)
    a = prepare_mini_expresso(tmp_path / "a", **kw)
    b = prepare_mini_expresso(tmp_path / "b", **kw)
    files_a = read_files(a)
    assert [f.read_bytes() for f in files_a] == [f.read_bytes() for f in read_files(b)]
    # an interrupted run: one file and the completion marker missing -> the re-run restores exactly that file
    victim = files_a[1]
    content = victim.read_bytes()
    victim.unlink()
    (a / ".speechkit_complete.json").unlink()
    mtime = files_a[0].stat().st_mtime_ns
    prepare_mini_expresso(a, **kw)
    assert victim.read_bytes() == content and files_a[0].stat().st_mtime_ns == mtime
    # finished: a second call with the same settings returns without touching anything
    before = {f: f.stat().st_mtime_ns for f in a.rglob("*") if f.is_file()}
    prepare_mini_expresso(a, **kw)
    assert before == {f: f.stat().st_mtime_ns for f in a.rglob("*") if f.is_file()}
    with pytest.raises(SpeechkitError, match="made with other settings"):
        prepare_mini_expresso(a, **{**kw, "seed": 1})
    with pytest.raises(ValueError, match="unknown styles"):
        prepare_mini_expresso(tmp_path / "c", minutes=1, styles=("opera",))


def test_espeak_fallback_voices(tmp_path):
    root = prepare_mini_expresso(tmp_path, minutes=0.1, voices="espeak", speakers=("esf1",), styles=("default",),
                                 conversations=0)
    files = read_files(root)
    assert files and all(f.parent.parts[-3] == "esf1" for f in files)
    assert io.info(files[0]).sample_rate == 48000
    assert not os.path.exists(root / "audio_48khz" / "conversational")


def test_extra_text_is_mixed_in_at_its_share_and_old_markers_still_match(tmp_path):
    import json

    from speechkit.synth.synthetic import SyntheticCorpusConfig, _mix_text

    extra = tmp_path / "extra.txt"
    extra.write_text("".join(f"the quiet extra sentence number {w}\n" for w in
                             ("one", "two", "three", "four", "five", "six", "seven", "eight")))
    cfg = SyntheticCorpusConfig(text=str(extra), text_share=0.25)
    pool = [f"grammar {i}" for i in range(20)]
    mixed = _mix_text(pool, 16, cfg)  # the first 16 are read sentences, the rest dialogue turns
    assert sum(s.startswith("the quiet") for s in mixed[:16]) == 4 and mixed[16:] == pool[16:]
    assert len(set(mixed)) == 20 and _mix_text(pool, 16, cfg) == mixed  # no repeats; seeded
    with pytest.raises(ValueError, match="text_share"):
        SyntheticCorpusConfig(text_share=1.5).validate()
    with pytest.raises(ValueError, match="no such file"):
        SyntheticCorpusConfig(text=str(tmp_path / "missing.txt")).validate()

    kw = dict(minutes=0.1, speakers=("us2",), styles=("default",), conversations=0)
    root = prepare_mini_expresso(tmp_path / "c", text=str(extra), text_share=1.0, **kw)
    texts = expresso.read_transcriptions(root)
    assert texts and all(t.startswith("the quiet extra sentence") for t in texts.values())
    # a corpus finished before `text` existed: its marker lacks the new fields and still counts as the same corpus
    plain = prepare_mini_expresso(tmp_path / "d", **kw)
    marker = plain / ".speechkit_complete.json"
    old = {k: v for k, v in json.loads(marker.read_text()).items() if k not in ("text", "text_share")}
    marker.write_text(json.dumps(old))
    before = {f: f.stat().st_mtime_ns for f in read_files(plain)}
    prepare_mini_expresso(plain, **kw)
    assert before == {f: f.stat().st_mtime_ns for f in read_files(plain)}
