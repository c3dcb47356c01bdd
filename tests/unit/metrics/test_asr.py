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


def test_forced_alignment_finds_the_dictionary_phones_where_the_synthesiser_put_them(asr):
    """align() gives the pronouncing dictionary's phones of the transcript (ARPAbet), in order, with speech
    where MBROLA spoke; transcription afterwards is unchanged (alignment runs on a decoder of its own)."""
    text = "please remember to close the window tomorrow"
    syn = synthesize(text, MBROLA_VOICES["us2"], Prosody(tempo=1.2))
    wav = io.resample(torch.from_numpy(syn.wav), syn.sample_rate, 16000)
    before = asr.transcribe(wav)
    segments = asr.align(wav, "Please remember, to close the window tomorrow!")
    phones = [p for p, _, _ in segments if p != "_"]

    def pronounced(i: int, words: list[str]) -> bool:  # the phones from i on are one pronunciation per word
        if not words:
            return i == len(phones)
        variants = [asr._decoder.lookup_word(w) for w in (words[0], f"{words[0]}(2)", f"{words[0]}(3)")]
        return any(pronounced(i + len(v.split()), words[1:]) for v in variants
                   if v and phones[i : i + len(v.split())] == v.split())

    assert pronounced(0, text.split())
    assert all(s < e for _, s, e in segments)
    assert all(a[2] <= b[1] + 1e-9 for a, b in zip(segments, segments[1:], strict=False))
    spoken = [(s, e) for p, s, e in syn.phonemes if p != "_"]
    voiced = [(s, e) for p, s, e in segments if p != "_"]
    assert abs(voiced[0][0] - spoken[0][0]) < 0.06 and abs(voiced[-1][1] - spoken[-1][1]) < 0.06
    assert asr.transcribe(wav) == before
    with pytest.raises(ValueError, match="not in the pronouncing dictionary"):
        asr.align(wav, "please frobnicate the qwxzv")
    with pytest.raises(ValueError, match="too short"):
        asr.align(wav[:800], "please")


def test_alignment_does_not_depend_on_the_file_aligned_before(asr):
    syn = synthesize("open the door please", MBROLA_VOICES["us3"], Prosody(tempo=1.1))
    wav = io.resample(torch.from_numpy(syn.wav), syn.sample_rate, 16000)
    first = asr.align(wav, "open the door please")
    noise = 0.3 * torch.randn(32000, generator=torch.Generator().manual_seed(1))
    try:
        asr.align(noise, "we will cook dinner tonight")
    except ValueError:
        pass
    assert asr.align(wav, "open the door please") == first
    with pytest.raises(ValueError, match="1-D"):
        asr.align(np.zeros((2, 16000), np.float32), "open")
