import json

import numpy as np
import pytest

from speechkit.audio import io
from speechkit.data.manifest import (
    ManifestEntry,
    ManifestError,
    UnitRecord,
    read_tsv,
    read_units_jsonl,
    scan_audio,
    write_tsv,
    write_units_jsonl,
)
from tests.conftest import sine


def test_tsv_roundtrip_is_fairseq_format(tmp_path):
    entries = [ManifestEntry("a/x.wav", 16000), ManifestEntry("b.flac", 3)]
    write_tsv(tmp_path / "m.tsv", tmp_path, entries)
    lines = (tmp_path / "m.tsv").read_text().splitlines()
    assert lines == [str(tmp_path.resolve()), "a/x.wav\t16000", "b.flac\t3"]
    root, back = read_tsv(tmp_path / "m.tsv")
    assert root == tmp_path.resolve() and back == entries


@pytest.mark.parametrize(
    "text, message",
    [("", "empty manifest"), ("/root\nfile.wav\n", r"m\.tsv:2: expected 'relative_path<TAB>num_samples'"),
     ("/root\na.wav\t10\nb.wav\tten\n", r"m\.tsv:3:")],
)
def test_tsv_errors_name_file_and_line(tmp_path, text, message):
    (tmp_path / "m.tsv").write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_tsv(tmp_path / "m.tsv")


def test_scan_audio_counts_samples_and_reports_bad_files(tmp_path):
    io.save(tmp_path / "spk1" / "b.wav", sine(seconds=0.5), 16000)
    io.save(tmp_path / "a.flac", np.stack([sine(seconds=0.25, sample_rate=48000)] * 2), 48000)
    (tmp_path / "broken.wav").write_bytes(b"not audio at all" * 8)
    (tmp_path / "notes.txt").write_text("ignored: not an audio extension")
    entries, errors = scan_audio(tmp_path)
    assert entries == [ManifestEntry("a.flac", 12000), ManifestEntry("spk1/b.wav", 8000)]
    assert len(errors) == 1 and errors[0][0] == "broken.wav" and "not a readable audio file" in errors[0][1]
    with pytest.raises(ManifestError, match="not a directory"):
        scan_audio(tmp_path / "a.flac")


def test_units_jsonl_roundtrip(tmp_path):
    recs = [UnitRecord("u1", "a.wav", [3, 1, 4], [2, 1, 5]), UnitRecord("u2", "b.wav", [7], None, f0=[120.0])]
    write_units_jsonl(tmp_path / "u.jsonl", recs)
    first = json.loads((tmp_path / "u.jsonl").read_text().splitlines()[0])
    assert first == {"id": "u1", "audio": "a.wav", "units": [3, 1, 4], "duration": [2, 1, 5]}
    assert read_units_jsonl(tmp_path / "u.jsonl") == recs


@pytest.mark.parametrize(
    "line, message",
    [("{not json", "not valid JSON"), ('{"id": "x"}', "key 'units'"), ('{"units": [1, "2"]}', "list of integers"),
     ('{"units": [1, 2], "duration": [1]}', "'duration' has 1 values for 2 units"),
     ('{"units": [1], "duration": [0]}', "positive integers")],
)
def test_units_jsonl_errors_name_line(tmp_path, line, message):
    (tmp_path / "u.jsonl").write_text('{"id": "ok", "units": [1]}\n' + line + "\n")
    with pytest.raises(ManifestError, match=rf"u\.jsonl:2: .*{message}"):
        read_units_jsonl(tmp_path / "u.jsonl")


def test_write_units_rejects_duplicate_ids_and_keeps_old_file(tmp_path):
    path = tmp_path / "u.jsonl"
    write_units_jsonl(path, [UnitRecord("a", "a.wav", [1])])
    before = path.read_text()
    with pytest.raises(ManifestError, match="duplicate utterance id 'b'"):
        write_units_jsonl(path, [UnitRecord("b", "", [1]), UnitRecord("b", "", [2])])
    assert path.read_text() == before
