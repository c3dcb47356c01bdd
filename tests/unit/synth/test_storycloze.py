import json
import shutil

import numpy as np
import pytest

from speechkit.audio import io
from speechkit.data.corpora.text import read_documents
from speechkit.synth.storycloze import SCENARIOS, generate_stories, prepare_story_speech, prepare_storycloze
from speechkit.synth.text import prepare_text_corpus
from speechkit.ulm.pairwise import find_pairs


def test_stories_are_seeded_five_sentences_with_a_contradicting_ending():
    a, b = generate_stories(50, seed=3), generate_stories(50, seed=3)
    assert a == b and generate_stories(50, seed=4) != a
    assert len({s.text for s in a}) == 50
    for s in a:
        assert len(s.context) == 4 and s.ending != s.ssc_ending
        assert all(x.endswith((".", "?")) and "{" not in x for x in (*s.context, s.ending, s.ssc_ending))
    assert {s.scenario for s in generate_stories(400)} == set(SCENARIOS)


def test_train_and_test_stories_never_overlap():
    test = {s.text for s in generate_stories(300, split="test")}
    train = {s.text for s in generate_stories(3000, split="train")}
    assert not test & train
    assert all(s.split == "test" for s in generate_stories(20, split="test"))


@pytest.fixture(scope="module")
def mbrola():
    if shutil.which("espeak-ng") is None or shutil.which("mbrola") is None:
        pytest.fail("espeak-ng and mbrola are required: run `make install`")


def test_prepare_storycloze_writes_the_released_layout(tmp_path, mbrola):
    root = prepare_storycloze(tmp_path / "sc", pairs=4, seed=0)
    rows = [json.loads(line) for line in (root / "stories.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for bench in ("sSC", "tSC"):
        pairs = find_pairs(root / bench)
        assert [p.id for p in pairs] == ["0", "1", "2", "3"]
        for pair in pairs:
            pos, sr = io.load(pair.positive)
            neg, _ = io.load(pair.negative)
            assert sr == 16000
            n = min(len(pos), len(neg))
            first_diff = int(np.argmax(pos[:n].numpy() != neg[:n].numpy()))
            assert first_diff > 2 * sr  # the four context sentences are the same audio
    for r in rows:
        assert r["ssc_ending"] != r["ending"] and r["tsc_ending"] == rows[r["tsc_source"]]["ending"]
        assert rows[r["tsc_source"]]["scenario"] != r["scenario"]
    mtime = (root / "sSC" / "0_correct.wav").stat().st_mtime_ns
    prepare_storycloze(tmp_path / "sc", pairs=4, seed=0)  # same settings: nothing rewritten
    assert (root / "sSC" / "0_correct.wav").stat().st_mtime_ns == mtime


def test_story_speech_and_text_corpus_use_train_stories_only(tmp_path, mbrola):
    root = prepare_story_speech(tmp_path / "speech", stories=3, voices=("us1", "en1"))
    wavs = sorted((root / "audio").glob("*.wav"))
    assert [w.stem for w in wavs] == ["en1_00001", "us1_00000", "us1_00002"]
    texts = [line.split("\t")[1] for line in (root / "transcripts.tsv").read_text().splitlines()]
    test = {s.text for s in generate_stories(100, split="test")}
    assert not set(texts) & test
    corpus = prepare_text_corpus(tmp_path / "text", stories=200, sentences=100, valid_fraction=0.1)
    train, valid = read_documents(corpus / "train.txt"), read_documents(corpus / "valid.txt")
    assert len(train) == 270 and len(valid) == 30 and not (set(train) | set(valid)) & test


def test_ssc_negatives_are_familiar_sentences_that_contradict_the_story():
    """Every sSC negative is the correct ending of some train story (of the other branch), so only coherence with
    the context, not novelty, tells it apart."""
    train_endings = {s.ending for s in generate_stories(8000, split="train")}
    test = generate_stories(200, split="test")
    assert sum(s.ssc_ending in train_endings for s in test) >= 0.95 * len(test)
    for s in test:
        _, branches = SCENARIOS[s.scenario]
        assert s.branch in (0, 1) and s.context[1] != s.ending


def test_story_speech_shards_split_the_work_and_resume(tmp_path, mbrola):
    from speechkit.errors import SpeechkitError

    whole = prepare_story_speech(tmp_path / "whole", stories=4, voices=("us1", "en1"))
    root = tmp_path / "sharded"
    prepare_story_speech(root, stories=4, voices=("us1", "en1"), shard=(1, 2))
    assert sorted(p.stem for p in (root / "audio").glob("*.wav")) == ["en1_00001", "en1_00003"]
    assert not (root / ".complete").exists()  # shard 0 has not spoken yet
    prepare_story_speech(root, stories=4, voices=("us1", "en1"), shard=(0, 2))
    assert (root / ".complete").is_file()
    assert (root / "transcripts.tsv").read_text() == (whole / "transcripts.tsv").read_text()
    for wav in (whole / "audio").glob("*.wav"):
        assert (root / "audio" / wav.name).read_bytes() == wav.read_bytes()
    # a run killed before the end: the files already written are kept, the missing one is spoken again
    (root / ".complete").unlink()
    (root / "audio" / "us1_00002.wav").unlink()
    kept = (root / "audio" / "us1_00000.wav").stat().st_mtime_ns
    prepare_story_speech(root, stories=4, voices=("us1", "en1"))
    assert (root / "audio" / "us1_00002.wav").read_bytes() == (whole / "audio" / "us1_00002.wav").read_bytes()
    assert (root / "audio" / "us1_00000.wav").stat().st_mtime_ns == kept
    with pytest.raises(SpeechkitError, match="shard 2/2"):
        prepare_story_speech(root, stories=4, shard=(2, 2))
    with pytest.raises(SpeechkitError, match="not MBROLA voices"):
        prepare_story_speech(tmp_path / "x", stories=1, voices=("nobody",))
