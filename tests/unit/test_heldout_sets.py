"""data_prep/heldout_sets.py: transcripts, selection rules and the three sets, built from a fake package tree."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

_spec = importlib.util.spec_from_file_location(
    "heldout_sets", Path(__file__).resolve().parents[2] / "data_prep" / "heldout_sets.py")
hs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hs)


def test_asterisk_transcripts_and_the_phrase_rule():
    text = "; Core Asterisk Sounds\n\nbeep: [this is a simple beep tone]\nagent-pass: Please enter your password.\n" \
           "digits/1: one\nat-tone: At the sound of the tone, the time will be exactly...\nx: a: b c\n"
    t = hs.asterisk_transcripts(text)
    assert t["agent-pass"] == "Please enter your password." and t["digits/1"] == "one" and t["x"] == "a: b c"
    assert "; Core Asterisk Sounds" not in t and len(t) == 5
    assert hs.usable_phrase(t["agent-pass"])
    assert not hs.usable_phrase(t["beep"])            # bracketed non-speech
    assert not hs.usable_phrase(t["at-tone"])         # a prompt cut off for a number that follows
    assert not hs.usable_phrase("Press 1 now please")  # digits are read in ways a transcript cannot tell
    assert not hs.usable_phrase("Goodbye now.")        # fewer than 3 words


def test_fortune_sentences_keep_single_plain_sentences_and_drop_attributions():
    text = ("A light wife doth make a heavy husband.\n\t\t-- Wm. Shakespeare\n%\n"
            "Short one.\n%\n"
            "You will live to see your grandchildren, and they\nwill visit you often.\n%\n"
            "First sentence here is fine. Second sentence makes it two.\n%\n"
            "He said \"stop\" to the six old men at the door.\n%\n"
            "Call 555 1234 for a good time tonight my friend.\n%\n"
            "A light wife doth make a heavy husband.\n")
    out = hs.fortune_sentences(text)
    assert out == ["A light wife doth make a heavy husband.",
                   "You will live to see your grandchildren, and they will visit you often."]


def _fake_packages(root: Path) -> None:
    import av

    sounds = root / hs.ASTERISK_DIR
    sounds.mkdir(parents=True)
    prompts = {"p-one": "Please hold the line.", "p-two": "Your call is important to us.",
               "p-three": "Thank you for calling today.", "beep": "[beep]"}
    text = "; sounds\n" + "".join(f"{k}: {v}\n" for k, v in prompts.items())
    (root / hs.ASTERISK_TEXT).parent.mkdir(parents=True)
    (root / hs.ASTERISK_TEXT).write_bytes(gzip.compress(text.encode()))
    t = np.arange(16000) / 16000
    for name in prompts:  # G.722 as the package ships it, written by the same codec library
        with av.open(str(sounds / f"{name}.g722"), "w", format="g722") as c:
            s = c.add_stream("g722", rate=16000, layout="mono")
            frame = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 300 * t) * 32767).astype(np.int16)[None],
                                               format="s16", layout="mono")
            frame.sample_rate = 16000
            for packet in s.encode(frame):
                c.mux(packet)
            for packet in s.encode(None):
                c.mux(packet)
    klettres = {"en": ["alpha/A", "alpha/B", "syllab/dog", "syllab/ch"], "en_GB": ["alpha/a", "syllab/car"]}
    for lang, files in klettres.items():
        for f in files:
            p = root / hs.KLETTRES_DIR / lang / f"{f}.ogg"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(p), np.stack([0.1 * np.sin(2 * np.pi * 200 * t)] * 2, axis=1), 16000, format="OGG")


def test_real_sets_from_a_fake_package_tree(tmp_path):
    pkg = tmp_path / "pkg"
    _fake_packages(pkg)
    out = tmp_path / "real_phrases"
    rows = hs.build_real_phrases(pkg, out, limit=2)
    assert len(rows) == 2 and {r["id"] for r in rows} <= {"p-one", "p-two", "p-three"}  # beep never chosen
    assert rows == sorted(rows, key=lambda r: r["id"])
    wav, sr = sf.read(str(out / rows[0]["path"]))
    assert sr == 16000 and wav.ndim == 1 and 15000 < len(wav) <= 16500
    # the codec keeps a 300 Hz tone: the decoded audio correlates with it
    ref = 0.3 * np.sin(2 * np.pi * 300 * np.arange(len(wav)) / 16000)
    lag = max(range(0, 40), key=lambda k: np.dot(wav[k:8000 + k], ref[:8000]))
    assert np.corrcoef(wav[lag:8000 + lag], ref[:8000])[0, 1] > 0.9

    words = hs.build_real_words(pkg, tmp_path / "real_words", vocabulary={"a", "b", "dog", "car"})
    assert [(r["speaker"], r["text"], r["group"]) for r in words] == [
        ("klettres_en", "a", "letter"), ("klettres_en", "b", "letter"), ("klettres_en", "dog", "word"),
        ("klettres_engb", "a", "letter"), ("klettres_engb", "car", "word")]  # "ch" is no word
    w, _ = sf.read(str(tmp_path / "real_words" / words[0]["path"]))
    assert w.ndim == 1  # stereo mixed to mono

    hs._write_items(tmp_path / "real_words", words)
    back = hs.read_items(tmp_path / "real_words")
    assert [r["text"] for r in back] == [r["text"] for r in words] and Path(back[0]["path"]).is_file()


def test_test_only_voices_are_not_corpus_voices():
    from speechkit.synth import tts

    used = {v.espeak_voice for v in (*tts.MBROLA_VOICES.values(), *tts.ESPEAK_VOICES.values())}
    assert not used & set(hs.TEST_ONLY_VOICES.values())
    assert set(hs.CORPUS_VOICES) <= set(tts.MBROLA_VOICES)


def test_missing_packages_without_apt_get_name_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(hs.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match=r"no asterisk-core-sounds-en-g722_\*\.deb and no apt-get"):
        hs.fetch_packages(tmp_path / "debs")
