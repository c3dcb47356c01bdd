"""Pairing rules of `eval folder`."""

from __future__ import annotations

import pytest
import torch

from speechkit.audio import io
from speechkit.metrics.folder import EvalError, pair_files, read_transcripts


def _wav(path):
    io.save(path, torch.randn(1600) * 0.1, 16000)


def test_pairs_by_relative_path_then_by_unique_stem(tmp_path):
    for p in ("hyp/x/a.wav", "hyp/b.flac", "ref/x/a.wav", "ref/test/spk/b.wav", "ref/other.wav"):
        _wav(tmp_path / p)
    (tmp_path / "t.tsv").write_text("# comment\na\tHello there\nb\tgood bye\n")
    pairs = pair_files(tmp_path / "hyp", tmp_path / "ref", tmp_path / "t.tsv")
    assert [(p.id, p.ref.relative_to(tmp_path).as_posix(), p.text) for p in pairs] == [
        ("b", "ref/test/spk/b.wav", "good bye"), ("x/a", "ref/x/a.wav", "Hello there")]
    _wav(tmp_path / "ref/again/b.wav")  # the stem is no longer unique: no pairing by stem
    with pytest.raises(EvalError, match="1 hypothesis file.*no match in --ref.*: b "):
        pair_files(tmp_path / "hyp", tmp_path / "ref")


def test_transcripts_format(tmp_path):
    (tmp_path / "t.tsv").write_text("a\tone\na two\n")
    with pytest.raises(EvalError, match=r"t\.tsv:2: expected 'stem<TAB>text'"):
        read_transcripts(tmp_path / "t.tsv")
    (tmp_path / "t.tsv").write_text("a\tone\na\ttwo\n")
    with pytest.raises(EvalError, match="appears twice"):
        read_transcripts(tmp_path / "t.tsv")
    with pytest.raises(EvalError, match="no such file"):
        read_transcripts(tmp_path / "none.tsv")
