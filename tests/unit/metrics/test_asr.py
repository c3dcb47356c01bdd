import numpy as np
import pytest

from speechkit.audio import io
from speechkit.data.corpora import expresso
from speechkit.data.corpora.tts import MBROLA_VOICES, Prosody, synthesize
from speechkit.metrics.asr import PocketSphinxASR
from speechkit.metrics.wer import wer


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
