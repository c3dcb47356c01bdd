"""load_asr and the local Hugging Face CTC backend (a tiny random model written to disk, no download)."""

from __future__ import annotations

import json

import pytest
import torch

from speechkit.errors import SpeechkitError
from speechkit.metrics.asr import HFCTCASR, PocketSphinxASR, load_asr


@pytest.fixture()
def ctc_folder(tmp_path):
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    vocab = {"<pad>": 0, "|": 1, "<unk>": 2, "a": 3, "b": 4}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                               word_delimiter_token="|")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True, return_attention_mask=False)
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
                         num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, pad_token_id=0)
    model = Wav2Vec2ForCTC(cfg)
    with torch.no_grad():  # every frame says "b": greedy CTC collapses it to one "b"
        model.lm_head.weight.zero_()
        model.lm_head.bias.fill_(-10.0)
        model.lm_head.bias[4] = 10.0
    model.save_pretrained(tmp_path)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(tmp_path)
    return tmp_path


def test_local_ctc_model_transcribes(ctc_folder, tmp_path):
    asr = load_asr(ctc_folder)
    assert isinstance(asr, HFCTCASR)
    assert asr.transcribe(torch.randn(16000) * 0.1) == "b"
    from speechkit.audio import io

    io.save(tmp_path / "x.wav", torch.randn(44100) * 0.1, 44100)
    assert asr.transcribe_file(tmp_path / "x.wav") == "b"


def test_load_asr_by_name_and_bad_folder(tmp_path):
    assert isinstance(load_asr("pocketsphinx"), PocketSphinxASR)
    with pytest.raises(SpeechkitError, match="config.json does not exist|does not exist"):
        load_asr(tmp_path / "nothing")
