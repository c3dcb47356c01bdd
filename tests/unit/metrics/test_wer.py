import pytest

from speechkit.metrics.wer import cer, normalize_text, wer


def test_normalisation_is_case_and_punctuation_blind():
    assert normalize_text("Hello,  World! It's   DONE.") == "hello world it's done"
    assert normalize_text("snake_case—dash") == "snake case dash"


def test_wer_counts_substitutions_deletions_insertions_over_reference_words():
    assert wer("the cat sat", "the cat sat") == 0.0
    assert wer("the cat sat", "the bat sat") == pytest.approx(1 / 3)
    assert wer("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert wer("the cat sat", "the cat sat down here") == pytest.approx(2 / 3)
    # corpus-level: total errors / total reference words, not a mean of per-utterance rates
    assert wer(["a b c d", "e"], ["a b c d", "x"]) == pytest.approx(1 / 5)
    assert wer(["Hello, world!"], ["hello word"]) == 0.5


def test_cer_and_bad_arguments():
    assert cer("abcd", "abed") == pytest.approx(0.25)
    with pytest.raises(ValueError, match="2 references and 1 hypotheses"):
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="all references are empty"):
        wer(["", "!!"], ["a", "b"])
