"""prepare_expresso and ExpressoDataset on the synthetic mini-Expresso (the real layout, dialogues included)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from speechkit.audio import io
from speechkit.data.corpora import expresso
from speechkit.data.corpora.expresso import ExpressoError, SplitEntry, prepare_expresso, short_segments
from speechkit.data.datasets import ExpressoDataset, collate_audio


def test_short_segments_by_hand():
    # whole file, no window: one piece
    assert short_segments(4.0, (None, None), None) == [(0.0, 4.0)]
    # a 40 s file in 15 s pieces; the 10 s rest is kept
    assert short_segments(40.0, (None, None), None) == [(0.0, 15.0), (15.0, 30.0), (30.0, 40.0)]
    # regions clipped to the window (5, 20): (1, 2) falls outside, (4, 6) -> (5, 6), (19.8, 25) -> 0.2 s dropped
    assert short_segments(30.0, (5.0, 20.0), [(1.0, 2.0), (4.0, 6.0), (7.0, 9.0), (19.8, 25.0)]) == [
        (5.0, 6.0), (7.0, 9.0)]
    # a long region: 15 s, then a 0.3 s remainder dropped
    assert short_segments(60.0, (None, None), [(2.0, 17.3)]) == [(2.0, 17.0)]


def test_read_vad_segments(mini_expresso, tmp_path):
    vad = expresso.read_vad_segments(mini_expresso)
    dialogues = [e.stem for e in expresso.read_splits(mini_expresso)["train"] if "-" in e.stem.split("_")[0]]
    assert dialogues and all((s, ch) in vad for s in dialogues for ch in (1, 2))
    (tmp_path / "VAD_segments.txt").write_text("a-b_default_001/channel3\t(1.0, 2.0)\n")
    with pytest.raises(ExpressoError, match=r"VAD_segments\.txt:1: channel must be"):
        expresso.read_vad_segments(tmp_path)
    (tmp_path / "VAD_segments.txt").write_text("ex01_narration_longform_00001\t(1.0, 2.0) (3.5, 4)\n")
    assert expresso.read_vad_segments(tmp_path) == {("ex01_narration_longform_00001", None): [(1.0, 2.0),
                                                                                               (3.5, 4.0)]}
    assert expresso.read_vad_segments(tmp_path / "nowhere") == {}


@pytest.fixture(scope="module")
def prepared(mini_expresso, tmp_path_factory):
    return prepare_expresso(mini_expresso, tmp_path_factory.mktemp("expresso16k"), jobs=2)


def _rows(folder, split):
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


def test_read_speech_segments_keep_labels_and_text(mini_expresso, prepared):
    splits = expresso.read_splits(mini_expresso)
    texts = expresso.read_transcriptions(mini_expresso)
    for split in ("train", "dev", "test"):
        rows = {r["id"]: r for r in _rows(prepared, split) if r["kind"] == "read"}
        stems = [e.stem for e in splits[split] if "-" not in e.stem.split("_")[0]]
        assert sorted(rows) == sorted(stems)  # every read file is one whole segment (all are under 15 s)
        for stem in stems:
            r, info = rows[stem], expresso.parse_stem(stem)
            assert (r["speaker"], r["style"], r["text"]) == (info.speaker, info.style, texts[stem])
            wav, sr = io.load(prepared / r["audio"])
            assert sr == 16000 and len(wav) == r["num_samples"]
            assert abs(len(wav) / 16000 - io.info(expresso.audio_path(mini_expresso, stem)).duration) < 1e-3
            assert r["audio"].startswith(f"{split}/{info.speaker}/read-{info.style}/")


def test_dialogues_are_cut_per_speaker_inside_the_split_window(mini_expresso, prepared):
    vad = expresso.read_vad_segments(mini_expresso)
    windows = {(split, e.stem): e for split, es in expresso.read_splits(mini_expresso).items() for e in es}
    conv = [r for split in ("train", "dev", "test") for r in _rows(prepared, split) if r["kind"] == "conversational"]
    assert {"train", "test"} <= {r["split"] for r in conv}  # one dialogue per pair: its head is test, the rest train
    for r in conv:
        spk_a, spk_b = r["stem"].split("_")[0].split("-")
        assert r["speaker"] == (spk_a if r["channel"] == 1 else spk_b)
        assert r["end"] - r["start"] <= 15.0 and r["text"] is None
        win = windows[(r["split"], r["stem"])]
        assert (win.start is None or r["start"] >= win.start) and (win.end is None or r["end"] <= win.end)
        assert any(s <= r["start"] and r["end"] <= e for s, e in vad[(r["stem"], r["channel"])])
        # the segment is that speaker's channel: loud there, the other channel silent at the same time
        src = expresso.audio_path(mini_expresso, r["stem"])
        first, count = int(r["start"] * 48000), int((r["end"] - r["start"]) * 48000)
        own, _ = io.load(src, channel=r["channel"] - 1, frame_offset=first, num_frames=count)
        other, _ = io.load(src, channel=2 - r["channel"], frame_offset=first, num_frames=count)
        seg, _ = io.load(prepared / r["audio"])
        assert float(other.abs().max()) < 1e-3 < float(own.abs().max())
        assert abs(float(seg.pow(2).mean().sqrt()) - float(own.pow(2).mean().sqrt())) < 0.01
    # every VAD turn of a test window is a test segment, numbered in time order
    test = [r for r in conv if r["split"] == "test"]
    stem = test[0]["stem"]
    cut = windows[("test", stem)].end
    expected = [(s, e) for s, e in vad[(stem, 1)] if e <= cut]
    got = sorted((r["start"], r["end"]) for r in test if r["stem"] == stem and r["channel"] == 1)
    assert got == expected


def test_rerun_is_safe_and_resumes(mini_expresso, prepared, tmp_path):
    before = (prepared / "test.jsonl").stat().st_mtime_ns
    assert prepare_expresso(mini_expresso, prepared, jobs=2) == prepared
    assert (prepared / "test.jsonl").stat().st_mtime_ns == before
    with pytest.raises(ExpressoError, match="other settings"):
        prepare_expresso(mini_expresso, prepared, max_seconds=10.0)
    # an interrupted run (no marker, a file missing) is completed with the same result
    out = tmp_path / "copy"
    shutil.copytree(prepared, out)
    (out / expresso.MARKER).unlink()
    victim = _rows(out, "dev")[0]
    (out / victim["audio"]).unlink()
    prepare_expresso(mini_expresso, out, jobs=1)
    assert (out / victim["audio"]).is_file() and _rows(out, "dev") == _rows(prepared, "dev")


def test_silero_vad_when_the_vad_file_is_absent(mini_expresso, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name in ("audio_48khz", "splits", "read_transcriptions.txt"):
        os.symlink(mini_expresso / name, root / name)
    out = prepare_expresso(root, tmp_path / "out", splits=("test",))
    vad = expresso.read_vad_segments(mini_expresso)
    conv = [r for r in _rows(out, "test") if r["kind"] == "conversational"]
    assert conv
    for r in conv:  # silero's regions match the synthesiser's exact turns within 0.3 s
        assert any(abs(r["start"] - s) < 0.3 and (abs(r["end"] - e) < 0.3 or r["end"] <= e + 0.3)
                   for s, e in vad[(r["stem"], r["channel"])])


def test_bad_inputs(mini_expresso, tmp_path):
    with pytest.raises(ExpressoError, match="not an Expresso root"):
        prepare_expresso(tmp_path, tmp_path / "out")
    with pytest.raises(ExpressoError, match="splits must be"):
        prepare_expresso(mini_expresso, tmp_path / "out", splits=("eval",))
    # a split line naming a file that is not there: logged in errors.tsv, the rest is prepared
    root = tmp_path / "root"
    root.mkdir()
    for name in ("audio_48khz", "read_transcriptions.txt", "VAD_segments.txt"):
        os.symlink(mini_expresso / name, root / name)
    (root / "splits").mkdir()
    good = expresso.read_splits(mini_expresso)["test"][0].stem
    (root / "splits" / "test.txt").write_text(f"{good}\nus1_default_09999\n")
    (root / "splits" / "train.txt").write_text("")
    (root / "splits" / "dev.txt").write_text("")
    out = prepare_expresso(root, tmp_path / "out2")
    assert [r["stem"] for r in _rows(out, "test")] == [good]
    errors = (out / "errors.tsv").read_text()
    assert "us1_default_09999\t" in errors and "no such file" in errors


def test_dataset_items_filters_and_batches(prepared):
    ds = ExpressoDataset(prepared, "test")
    assert len(ds) == len(_rows(prepared, "test")) and len(ds.speakers) == 4
    item = ds[0]
    assert item["wav"].dtype == torch.float32 and item["wav"].dim() == 1 and item["sample_rate"] == 16000
    read = ExpressoDataset(prepared, "test", kinds=("read",), styles=("whisper",))
    assert len(read) > 0 and all(r["style"] == "whisper" and r["text"] for r in read.records)
    batch = collate_audio([read[i] for i in range(min(3, len(read)))])
    assert batch["wav"].shape == (len(batch["lengths"]), int(batch["lengths"].max()))
    assert batch["style"] == ["whisper"] * len(batch["lengths"])
    assert ExpressoDataset(prepared, "test", sample_rate=8000)[0]["sample_rate"] == 8000
    with pytest.raises(ExpressoError, match=r"nowhere/test\.jsonl: missing"):
        ExpressoDataset(prepared / "nowhere", "test")


def test_split_entry_type_unchanged():
    assert SplitEntry("a_b_001") == SplitEntry("a_b_001", None, None)
