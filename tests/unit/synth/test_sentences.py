import re

from speechkit.synth.sentences import generate_sentences


def test_thousands_of_distinct_sentences_deterministic_per_seed():
    a = generate_sentences(5000, seed=0)
    assert len(set(a)) == 5000
    assert a == generate_sentences(5000, seed=0)
    b = generate_sentences(5000, seed=1)
    assert a[:50] != b[:50]
    assert generate_sentences(10, seed=0) == a[:10]  # prefixes are stable: a bigger corpus extends a smaller one


def test_sentences_are_plain_english():
    for s in generate_sentences(2000, seed=3):
        assert re.fullmatch(r"[A-Z][A-Za-z ,']+[.?]", s), s
        assert 4 <= len(s.split()) <= 16, s
    words = {w.lower().strip(".,?") for s in generate_sentences(2000) for w in s.split()}
    assert len(words) > 300  # a real vocabulary, not a handful of words


def test_old_generator_paths_are_aliases_of_the_moved_modules():
    import importlib
    import warnings

    import speechkit.synth.storycloze
    import speechkit.synth.synthetic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = {m: importlib.import_module(f"speechkit.data.corpora.{m}") for m in ("synthetic", "storycloze")}
    assert old["synthetic"] is speechkit.synth.synthetic and old["storycloze"] is speechkit.synth.storycloze
