"""Speaker embeddings stored with a vocoder, and the Resynthesizer's voice choice from them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from speechkit.audio import io
from speechkit.pipeline import PipelineError, Resynthesizer
from speechkit.vocoders import CodeHiFiGANVocoder
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan.voices import FILENAME, SpeakerTable, compute_speaker_table, read_speaker_table
from tests.unit.test_pipeline import tiny_encoder, tiny_vocoder

#: three synthetic "voices": pitch and spectral tilt (resemblyzer tells them apart at cosine < 0.65)
VOICES = {"a": (100.0, 0.6), "b": (180.0, 0.8), "c": (260.0, 0.4)}


def voice(name: str, seed: int, seconds: float = 2.0, sr: int = 16000) -> torch.Tensor:
    f0, tilt = VOICES[name]
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sr)) / sr
    vibrato = 1 + 0.05 * torch.sin(2 * torch.pi * (3 + torch.rand(1, generator=g)) * t)
    phase = 2 * torch.pi * torch.cumsum(f0 * vibrato, 0) / sr
    x = sum(tilt**k * torch.sin(k * phase) for k in range(1, 30))
    env = 0.5 + 0.5 * torch.sin(2 * torch.pi * (2 + 2 * torch.rand(1, generator=g)) * t)
    return (x * env / x.abs().max() * 0.5).float()


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> SpeakerTable:
    d = tmp_path_factory.mktemp("voices")
    files = {}
    for name in VOICES:
        files[name] = [io.save(d / f"{name}{i}.wav", voice(name, i), 16000) for i in range(3)]
    table = compute_speaker_table(files, max_utterances=2)
    table.folder = d
    return table


def test_table_is_the_mean_of_each_speakers_embeddings(table):
    from speechkit.metrics.speaker import SpeakerEncoder

    assert table.names == ["a", "b", "c"] and table.utterances == {"a": 2, "b": 2, "c": 2}
    assert table.seconds["a"] == pytest.approx(4.0, abs=0.01)
    enc = SpeakerEncoder()
    d = table.folder  # the files the table was computed from (2 of 3: the first and the last), as written (16-bit)
    mean = np.mean([enc.embed(*io.load(d / f"b{i}.wav")) for i in (0, 2)], axis=0)
    np.testing.assert_allclose(table.matrix[1], mean / np.linalg.norm(mean), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(table.matrix, axis=1), 1.0, atol=1e-12)
    # an unseen utterance of each voice is closest to its own speaker
    for name in VOICES:
        sims = table.similarities(enc.embed(voice(name, 7), 16000))
        assert max(sims, key=sims.get) == name and sims[name] > 0.9


def test_saved_with_the_vocoder_in_both_formats(tmp_path, table):
    voc = tiny_vocoder()
    voc.speaker_table = table
    back = CodeHiFiGANVocoder.from_pretrained(voc.save_pretrained(tmp_path / "ours"))
    np.testing.assert_allclose(back.speaker_table.matrix, table.matrix, atol=1e-6)
    ckpt = voc.export_official(tmp_path / "official")
    assert (tmp_path / "official" / FILENAME).is_file()
    assert CodeHiFiGANVocoder.from_pretrained(ckpt).speaker_table.names == ["a", "b", "c"]
    assert CodeHiFiGANVocoder.from_pretrained(tiny_vocoder().save_pretrained(tmp_path / "none")).speaker_table is None


def test_bad_tables_name_the_file_and_the_rule(tmp_path, table):
    (tmp_path / FILENAME).write_text("{not json")
    with pytest.raises(VocoderError, match=f"{FILENAME}: not a speaker-embedding file"):
        read_speaker_table(tmp_path)
    data = json.loads(table.to_json())
    data["encoder"] = "ecapa"
    (tmp_path / FILENAME).write_text(json.dumps(data))
    with pytest.raises(VocoderError, match="embeddings from 'ecapa'"):
        read_speaker_table(tmp_path)
    with pytest.raises(VocoderError, match="not in the vocoder's speakers"):
        CodeHiFiGANVocoder(tiny_vocoder().model, tiny_vocoder().config, ["x", "y", "z"], speaker_table=table)
    with pytest.raises(VocoderError, match="one length"):
        SpeakerTable({"a": np.ones(3), "b": np.ones(4)})
    with pytest.raises(VocoderError, match="non-zero"):
        SpeakerTable({"a": np.zeros(3)})


def test_resynthesizer_keeps_the_voice_by_embedding_without_synthesis(table, monkeypatch):
    voc = tiny_vocoder()
    voc.speaker_table = table
    rs = Resynthesizer(tiny_encoder(), voc)
    calls = []
    monkeypatch.setattr(rs, "match_speaker_by_synthesis", lambda *a, **k: calls.append(a) or 0)
    for name in VOICES:
        wav = voice(name, 11)
        enc = rs.encoder(wav, sample_rate=16000)
        assert rs.match_speaker(wav, 16000, enc["units"], enc["durations"]) == name
        assert torch.equal(rs(wav, 16000), rs.vocoder(enc["units"], speaker=name, durations=enc["durations"]))
    assert calls == []  # no vocoder pass per candidate speaker
    # voice_match="synthesis" and vocoders without a table take the analysis-by-synthesis path
    rs_syn = Resynthesizer(tiny_encoder(), voc, voice_match="synthesis")
    monkeypatch.setattr(rs_syn, "match_speaker_by_synthesis", lambda *a, **k: calls.append(a) or 2)
    assert rs_syn.match_speaker(voice("a", 1), 16000, enc["units"], enc["durations"]) == 2 and len(calls) == 1


def test_voice_match_option_is_checked():
    with pytest.raises(PipelineError, match="voice_match must be auto, embedding or synthesis. Found 'x'"):
        Resynthesizer(tiny_encoder(), tiny_vocoder(), voice_match="x")
    with pytest.raises(PipelineError, match="stores no speaker embeddings"):
        Resynthesizer(tiny_encoder(), tiny_vocoder(), voice_match="embedding")
