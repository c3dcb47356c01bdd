"""speechkit prepare own-data: layouts, conversion, the per-speaker hash split, and one clear error per bad input."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from speechkit.data.corpora.own import (
    OwnDataError,
    detect_layout,
    find_utterances,
    prepare_own_data,
    read_utterances,
    resolve_encoder,
    split_utterances,
)


def tone(seconds=0.5, sr=16000, f=220.0, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)
    return np.stack([x, 0.5 * x], 1) if channels == 2 else x


def write(path, sr=16000, channels=1, seconds=0.5, f=220.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, sr, f, channels), sr)
    return path


def folder_corpus(root, speakers=2, per=5):
    for s in range(speakers):
        for i in range(per):
            fmt = ["wav", "flac", "ogg"][i % 3]
            write(root / f"spk{s}" / f"u{i}.{fmt}", sr=[8000, 22050, 48000][i % 3], channels=1 + i % 2,
                  f=150.0 + 40 * s + 7 * i)
    return root


def librispeech_corpus(root, speakers=("19", "26"), per=4):
    for s in speakers:
        lines = []
        for i in range(per):
            uid = f"{s}-198-{i:04d}"
            write(root / s / "198" / f"{uid}.flac", sr=16000, f=200.0 + i)
            lines.append(f"{uid} HELLO WORLD NUMBER {i}\n")
        (root / s / "198" / f"{s}-198.trans.txt").write_text("".join(lines))
    return root


def test_layouts_are_detected(tmp_path):
    assert detect_layout(folder_corpus(tmp_path / "f")) == "folder"
    assert detect_layout(librispeech_corpus(tmp_path / "ls")) == "librispeech"
    (tmp_path / "ex" / "audio_48khz").mkdir(parents=True)
    (tmp_path / "ex" / "splits").mkdir()
    assert detect_layout(tmp_path / "ex") == "expresso"
    (tmp_path / "m.tsv").write_text("path\n")
    assert detect_layout(tmp_path / "m.tsv") == "manifest"
    with pytest.raises(OwnDataError, match="no such folder or manifest"):
        detect_layout(tmp_path / "missing")


def test_folder_of_mixed_rates_channels_and_formats_becomes_16k_mono(tmp_path):
    src = folder_corpus(tmp_path / "src")
    summary = prepare_own_data(src, tmp_path / "out", log=lambda s: None)
    assert summary["utterances"] == 10 and summary["speakers"] == 2 and summary["layout"] == "folder"
    assert not summary["transcribed"]
    rows = read_utterances(tmp_path / "out")
    assert {r["speaker"] for r in rows} == {"spk0", "spk1"}
    for r in rows:
        info = sf.info(str(r["wav"]))
        assert info.samplerate == 16000 and info.channels == 1
        assert r["seconds"] == pytest.approx(0.5, abs=0.01)
    # each split's ids, manifest lines and utterances.tsv rows agree
    for split in ("train", "dev", "test"):
        ids = (tmp_path / "out" / "splits" / f"{split}.txt").read_text().split()
        assert ids == [r["id"] for r in rows if r["split"] == split]
        lines = (tmp_path / "out" / f"{split}.tsv").read_text().splitlines()
        assert lines[0] == str(tmp_path / "out" / "wav") and len(lines) == len(ids) + 1


def test_librispeech_transcripts_and_manifest_layout(tmp_path):
    src = librispeech_corpus(tmp_path / "ls")
    layout, utts = find_utterances(src)
    assert layout == "librispeech" and len(utts) == 8
    assert {u.id: u.text for u in utts}["26-198-0002"] == "HELLO WORLD NUMBER 2"
    assert {u.speaker for u in utts} == {"19", "26"}
    # a manifest with a header: relative paths, ids, speakers and texts as given
    (tmp_path / "m.tsv").write_text("path\tspeaker\ttext\n" + "".join(
        f"ls/19/198/19-198-{i:04d}.flac\tanna\thi {i}\n" for i in range(4)))
    layout, utts = find_utterances(tmp_path / "m.tsv")
    assert layout == "manifest" and [u.speaker for u in utts] == ["anna"] * 4 and utts[1].text == "hi 1"
    assert utts[0].path == tmp_path / "ls" / "19" / "198" / "19-198-0000.flac"


def test_split_is_per_speaker_deterministic_and_order_free(tmp_path):
    src = folder_corpus(tmp_path / "src", speakers=3, per=20)
    _, utts = find_utterances(src)
    a = split_utterances(utts, 0.1, 0.1, seed=0)
    assert a == split_utterances(list(reversed(utts)), 0.1, 0.1, seed=0)   # the order files were found in
    assert a != split_utterances(utts, 0.1, 0.1, seed=1)
    for s in ("spk0", "spk1", "spk2"):
        mine = [a[u.id] for u in utts if u.speaker == s]
        assert mine.count("test") == 2 and mine.count("dev") == 2 and mine.count("train") == 16


def test_a_speaker_with_one_file_goes_to_train_with_a_warning(tmp_path):
    src = folder_corpus(tmp_path / "src", speakers=1, per=4)
    write(src / "loner" / "only.wav")
    _, utts = find_utterances(src)
    with pytest.warns(UserWarning, match="speaker 'loner' has 1 utterance"):
        split = split_utterances(utts)
    assert split["loner-only"] == "train"
    assert sorted(v for k, v in split.items() if k.startswith("spk0")) == ["dev", "test", "train", "train"]


@pytest.mark.parametrize("make, rule", [
    (lambda d: d.mkdir(), "no audio files"),
    (lambda d: (d.mkdir(), (d / "notes.txt").write_text("x")), "no audio files"),
    (lambda d: (write(d / "a" / "x.wav"), write(d / "a" / "x.flac")), "duplicate utterance id 'a-x'"),
])
def test_corpus_level_errors_name_the_rule(tmp_path, make, rule):
    make(tmp_path / "c")
    with pytest.raises(OwnDataError, match=rule):
        prepare_own_data(tmp_path / "c", tmp_path / "out", log=lambda s: None)


def test_transcripts_for_some_files_only_are_refused(tmp_path):
    src = folder_corpus(tmp_path / "src", speakers=1, per=3)
    (tmp_path / "t.txt").write_text("u0\thello there\nu1 good morning\n")
    with pytest.raises(OwnDataError, match=r"transcripts cover 2 of 3 utterances; .*u2\.ogg \(id .spk0-u2.\) has none"):
        find_utterances(src, transcripts=tmp_path / "t.txt")
    (tmp_path / "t.txt").write_text("u0\thello there\nu1 good morning\nu2\tbye\n")
    _, utts = find_utterances(src, transcripts=tmp_path / "t.txt")
    assert [u.text for u in utts] == ["hello there", "good morning", "bye"]
    (tmp_path / "bad.txt").write_text("u0\n")
    with pytest.raises(OwnDataError, match=r"bad\.txt:1: a transcript line must be"):
        find_utterances(src, transcripts=tmp_path / "bad.txt")


def test_bad_files_stop_the_run_unless_skipped(tmp_path):
    src = folder_corpus(tmp_path / "src", speakers=1, per=4)
    (src / "spk0" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (src / "spk0" / "empty.flac").write_bytes(b"")
    sf.write(str(src / "spk0" / "silent.wav"), np.zeros(8000, np.float32), 16000)
    with pytest.raises(OwnDataError, match=r"3 of 7 files cannot be used") as e:
        prepare_own_data(src, tmp_path / "out", log=lambda s: None)
    message = str(e.value)
    assert "broken.wav" in message and "empty.flac" in message and "silent" in message and "--skip-bad" in message
    assert len((tmp_path / "out" / "bad.tsv").read_text().splitlines()) == 3
    summary = prepare_own_data(src, tmp_path / "out", skip_bad=True, log=lambda s: None)
    assert summary["utterances"] == 4 and summary["bad"] == 3
    assert {r["id"] for r in read_utterances(tmp_path / "out")} == {f"spk0-u{i}" for i in range(4)}


def test_rerun_keeps_converted_files_and_gives_the_same_split(tmp_path):
    src = folder_corpus(tmp_path / "src")
    prepare_own_data(src, tmp_path / "out", log=lambda s: None)
    first = (tmp_path / "out" / "utterances.tsv").read_text()
    wav = tmp_path / "out" / "wav" / "spk1" / "spk1-u3.wav"
    stamp = wav.stat().st_mtime_ns
    (tmp_path / "out" / "wav" / "spk0" / "spk0-u2.wav").unlink()   # as if killed before converting it
    prepare_own_data(src, tmp_path / "out", log=lambda s: None)
    assert wav.stat().st_mtime_ns == stamp                          # not converted again
    assert (tmp_path / "out" / "wav" / "spk0" / "spk0-u2.wav").is_file()
    assert (tmp_path / "out" / "utterances.tsv").read_text() == first


def test_cli_prints_one_error_line_naming_the_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "speechkit.cli.main", "prepare", "own-data", str(tmp_path / "empty"),
                           "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'empty'}: no audio files" in proc.stderr


def test_encoder_choices_resolve_to_a_hubert(tmp_path):
    found = resolve_encoder("default")
    assert found["layer"] == 4 and found["hubert"].endswith("encoder/hubert") and found["kmeans"]
    with pytest.raises(OwnDataError, match="neither a path nor a model card"):
        resolve_encoder("no-such-card-name")
    with pytest.raises(OwnDataError, match="is a unit-lm card"):
        resolve_encoder("TWIST-350M")
    with pytest.raises(OwnDataError, match="no such file or folder"):
        resolve_encoder(str(tmp_path / "nothing" / "here"))


def test_utterances_tsv_quotes_texts_with_tabs_and_quotes(tmp_path):
    src = folder_corpus(tmp_path / "src", speakers=1, per=3)
    (tmp_path / "t.txt").write_text('u0\tsay "hi"\nu1\tplain\nu2\tok\n')
    prepare_own_data(src, tmp_path / "out", transcripts=tmp_path / "t.txt", log=lambda s: None)
    with open(tmp_path / "out" / "utterances.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert {r["id"]: r["text"] for r in rows}["spk0-u0"] == 'say "hi"'


def test_expresso_release_layout_keeps_the_official_splits(mini_expresso, tmp_path):
    """The mini-Expresso has the real release's layout: read speech only, speakers from the file names, the
    transcriptions, and the official splits kept as they are (no hashing)."""
    from speechkit.data.corpora import expresso

    layout, utts = find_utterances(mini_expresso, "auto")
    assert layout == "expresso" and utts
    official = {split: {e.stem for e in entries} for split, entries in expresso.read_splits(mini_expresso).items()}
    for u in utts:
        assert u.id in official[u.split] and expresso.parse_stem(u.id).kind == "read"
        assert u.speaker == expresso.parse_stem(u.id).speaker and u.text
    assert {u.speaker for u in utts} == {"en1", "us1", "us2", "us3"}
    split = split_utterances(utts)
    assert all(split[u.id] == u.split for u in utts)
