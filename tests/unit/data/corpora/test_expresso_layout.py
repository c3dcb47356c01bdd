import pytest

from speechkit.data.corpora.expresso import (
    ExpressoError,
    SplitEntry,
    audio_path,
    parse_stem,
    read_splits,
    read_transcriptions,
)


@pytest.mark.parametrize(
    "stem, kind, speaker, style, substyle",
    [
        ("ex01_default_00358", "read", "ex01", "default", None),
        ("ex02_default_emphasis_00183", "read", "ex02", "default", "emphasis"),
        ("ex03_narration_longform_00001", "read", "ex03", "narration", "longform"),
        ("ex04-ex01_animal-animaldir_005", "conversational", "ex04-ex01", "animal-animaldir", None),
        ("ex01-ex02_default_008", "conversational", "ex01-ex02", "default", None),
    ],
)
def test_parse_stem_real_expresso_names(stem, kind, speaker, style, substyle):
    s = parse_stem(stem)
    assert (s.kind, s.speaker, s.style, s.substyle) == (kind, speaker, style, substyle)


def test_audio_path_follows_release_layout(tmp_path):
    read = audio_path(tmp_path, "ex03_happy_00085")
    assert read == tmp_path / "audio_48khz/read/ex03/happy/base/ex03_happy_00085.wav"
    assert audio_path(tmp_path, "ex01_default_longform_00001").parts[-2] == "longform"
    assert audio_path(tmp_path, "ex04-ex01_laughing_001") == (
        tmp_path / "audio_48khz/conversational/ex04-ex01/laughing/ex04-ex01_laughing_001.wav")
    with pytest.raises(ExpressoError, match="not an Expresso file stem"):
        parse_stem("random_name")


def test_read_splits_and_segments(tmp_path):
    (tmp_path / "splits").mkdir()
    header = '# If only one segment is extracted, it will have the format: "{filename}\\t(...)"\n'
    (tmp_path / "splits" / "test.txt").write_text(header + "ex01-ex02_default_008\t(,60.0s)\nex01_sad_00380\n")
    (tmp_path / "splits" / "dev.txt").write_text(header + "ex01-ex02_enunciated_001\t(50.27s,100.54s)\n")
    (tmp_path / "splits" / "train.txt").write_text(header + "ex01-ex02_default_008\t(60.0s,)\n")
    s = read_splits(tmp_path)
    assert s["test"] == [SplitEntry("ex01-ex02_default_008", None, 60.0), SplitEntry("ex01_sad_00380")]
    assert s["dev"] == [SplitEntry("ex01-ex02_enunciated_001", 50.27, 100.54)]
    assert s["train"] == [SplitEntry("ex01-ex02_default_008", 60.0, None)]
    (tmp_path / "splits" / "dev.txt").write_text("x_y_001\t[1,2]\n")
    with pytest.raises(ExpressoError, match=r"dev\.txt:1: segment must look like"):
        read_splits(tmp_path)


def test_read_transcriptions(tmp_path):
    (tmp_path / "read_transcriptions.txt").write_text("ex05_confused_00001\tReady for bed, lamb chop?\n\n")
    assert read_transcriptions(tmp_path) == {"ex05_confused_00001": "Ready for bed, lamb chop?"}
    (tmp_path / "read_transcriptions.txt").write_text("no tab here\n")
    with pytest.raises(ExpressoError, match=r"read_transcriptions\.txt:1: expected 'stem<TAB>text'"):
        read_transcriptions(tmp_path)
