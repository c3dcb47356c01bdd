import numpy as np
import pytest
import torch

from speechkit.audio import io
from speechkit.data.corpora import expresso
from speechkit.metrics.asr import PocketSphinxASR
from speechkit.metrics.wer import wer
from speechkit.synth.tts import MBROLA_VOICES, Prosody, synthesize


@pytest.fixture(scope="module")
def asr():
    return PocketSphinxASR()


def test_pocketsphinx_recognises_clear_synthetic_speech(asr, tmp_path):
    text = "please remember to close the window tomorrow"
    syn = synthesize(text, MBROLA_VOICES["us2"], Prosody(tempo=1.3))
    io.save(tmp_path / "u.wav", syn.wav, syn.sample_rate)
    assert wer(text, asr.transcribe_file(tmp_path / "u.wav")) <= 0.25
    with pytest.raises(ValueError, match="1-D"):
        asr.transcribe(np.zeros((2, 100), np.float32))


@pytest.mark.slow
def test_corpus_test_split_is_recognisable(asr, mini_expresso):
    """The sanity figure of the data: pocketsphinx WER on the test split stays in the range seen on MBROLA voices."""
    texts = expresso.read_transcriptions(mini_expresso)
    stems = [e.stem for e in expresso.read_splits(mini_expresso)["test"] if e.stem in texts]
    assert len(stems) >= 15
    hyps = [asr.transcribe_file(expresso.audio_path(mini_expresso, s)) for s in stems]
    assert wer([texts[s] for s in stems], hyps) < 0.6


def test_a_transcript_does_not_depend_on_earlier_files(asr):
    """pocketsphinx adapts its cepstral mean across utterances; PocketSphinxASR resets it per file, so results
    do not depend on file order (or on how --jobs splits the files)."""
    import torch
    from pocketsphinx import Decoder

    wavs = []
    for text, voice in [("the cat sat on the mat", "us1"), ("open the door please", "us3"),
                        ("we will cook dinner tonight", "en1")]:
        syn = synthesize(text, MBROLA_VOICES[voice], Prosody(tempo=1.1))
        wavs.append(io.resample(torch.from_numpy(syn.wav), syn.sample_rate, 16000))
    noise = torch.randn(48000, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    primed = []
    for w in wavs:
        asr.transcribe(noise)  # a very different file decoded just before
        primed.append(asr.transcribe(w))
    fresh = []
    for w in wavs:
        d = Decoder(samprate=16000, loglevel="FATAL")
        d.start_utt()
        d.process_raw((np.clip(w.numpy(), -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
        d.end_utt()
        fresh.append(d.hyp().hypstr.strip() if d.hyp() else "")
    assert primed == fresh and any(fresh)


def test_closed_vocabulary_recognition_picks_one_listed_word():
    words = ["dog", "car", "key", "sky", "pet"]
    asr = PocketSphinxASR(words=words)
    for word in ("dog", "sky"):
        syn = synthesize(word, MBROLA_VOICES["us2"])
        assert asr.transcribe(io.resample(torch.from_numpy(syn.wav), syn.sample_rate, 16000)) == word
    # noise still gets one of the words: the grammar allows nothing else
    assert asr.transcribe(np.random.default_rng(0).normal(0, 0.05, 16000).astype(np.float32)) in words + [""]
    with pytest.raises(ValueError, match=r"\['qqzx'\]: not in the pronouncing dictionary"):
        PocketSphinxASR(words=["dog", "qqzx"])
