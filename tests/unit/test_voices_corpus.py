"""data_prep/voices_corpus.py: English phone labels for MBROLA voices of other languages, and the merged manifest."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("voices_corpus", ROOT / "data_prep" / "voices_corpus.py")
vc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vc)


def test_each_foreign_row_takes_the_english_phoneme_it_came_from():
    english = "_ 50\ndZ 65 0 120\naU 64\nh 30\nf 104\nI 18\n_ 40\n"
    # dZ split in two, aU in two, h dropped (French has no /h/), f shortened (German voiceless consonants)
    foreign = "_ 50\nd 26 0 120\nZ 39\na 38\nw 26\nf 75\ni 18\n_ 40\n"
    assert vc.english_labels(foreign, english) == ["_", "dZ", "dZ", "aU", "aU", "f", "I", "_"]
    assert vc.english_labels(english, english) == ["_", "dZ", "aU", "h", "f", "I", "_"]


def test_streams_that_do_not_map_are_refused():
    with pytest.raises(ValueError, match="do not map"):
        vc.english_labels("a 10\nb 10\nc 10\nd 10\ne 10\n", "x 50\n")  # five rows for one: beyond any split


@pytest.mark.skipif(not all((Path("/usr/share/mbrola") / v / v).exists() for v in ("en1", "de4", "fr1")),
                    reason="needs the MBROLA voices en1, de4, fr1")
def test_a_small_corpus_has_labels_for_every_file_and_merges_with_a_manifest(tmp_path):
    inventory = tmp_path / "phones.txt"
    # the English voice's phonemes of a few sentences, as the corpus's inventory would list them
    from speechkit.data.phonemize import espeak_pho, pho_phones
    from speechkit.synth.sentences import generate_sentences

    phones = {p for t in generate_sentences(200, seed=0) for p in pho_phones(espeak_pho(t, "mb-en1"))}
    inventory.write_text("".join(f"{p}\n" for p in ["_", *sorted(phones - {"_"})]))
    corpus = tmp_path / "corpus_audio"
    corpus.mkdir()
    (tmp_path / "c.tsv").write_text(f"{corpus}\na/x.wav\t16000\n")
    (tmp_path / "c.labels.jsonl").write_text(json.dumps({"id": "a/x", "audio": "a/x", "units": [0] * 50,
                                                         "duration": [1] * 50}) + "\n")
    out = tmp_path / "voices"
    cmd = [sys.executable, str(ROOT / "data_prep" / "voices_corpus.py"), str(out), "--per-voice", "2",
           "--inventory", str(inventory), "--merge", str(tmp_path / "c.tsv"), str(tmp_path / "c.labels.jsonl")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import soundfile as sf

    rows = (out / "train.tsv").read_text().splitlines()
    assert Path(rows[0]) == (out / "audio").resolve() and len(rows) > 1
    labels = {json.loads(line)["id"]: json.loads(line)["units"] for line in (out / "train.labels.jsonl").open()}
    for row in rows[1:]:
        rel, samples = row.split("\t")
        info = sf.info(out / "audio" / rel)
        assert info.samplerate == 16000 and info.frames == int(samples)
        frames = labels[rel.removesuffix(".wav")]
        assert abs(len(frames) - int(samples) / 320) <= 1
        assert 0 in frames and len(set(frames)) > 5  # silence and several phones
    # a second run renders nothing again and writes the same labels
    before = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")}
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")} == before
    merged = (out / "merged.tsv").read_text().splitlines()
    assert merged[0] == str(out.resolve()) and merged[1] == "corpus/a/x.wav\t16000" and len(merged) == len(rows) + 1
    ids = [json.loads(line)["id"] for line in (out / "merged.labels.jsonl").open()]
    assert ids[0] == "corpus/a/x" and all(i.startswith("audio/") for i in ids[1:]) and len(ids) == len(merged) - 1
    assert (out / "corpus").resolve() == corpus.resolve()
