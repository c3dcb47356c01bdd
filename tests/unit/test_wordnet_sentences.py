"""data_prep/wordnet_sentences.py: usage examples out of WordNet data lines, and the keep rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "wordnet_sentences", Path(__file__).resolve().parents[2] / "data_prep" / "wordnet_sentences.py")
wn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wn)

LINE = ('01821203 30 v 01 pant 0 003 @ 00002325 v 0000 | breathe noisily, as when exhausted; '
        '"The runners reached the finish line, panting heavily"; "he panted"\n')


def test_examples_come_from_the_gloss_and_the_rule_keeps_plain_sentences(tmp_path):
    assert wn.examples(LINE) == ["The runners reached the finish line, panting heavily", "he panted"]
    assert wn.examples("  1 This software and database is being provided") == []  # the licence header
    assert wn.usable("The runners reached the finish line, panting heavily")
    assert not wn.usable("he panted")                       # under 5 words
    assert not wn.usable("they sold 300 tickets in an hour")  # digits
    assert not wn.usable("the word `Sahara' is a proper name here")
    for name in wn.POS_FILES:
        (tmp_path / name).write_text("  1 licence text\n" + (LINE if name == "data.verb" else "") + LINE)
    assert wn.wordnet_sentences(tmp_path) == ["The runners reached the finish line, panting heavily"]
    (tmp_path / "data.adv").unlink()
    with pytest.raises(SystemExit, match="data.adv: no WordNet data file .*wordnet-base"):
        wn.wordnet_sentences(tmp_path)
