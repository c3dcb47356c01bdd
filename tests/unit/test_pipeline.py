"""Resynthesizer and ``speechkit resynth`` with a tiny random encoder and vocoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechkit.audio import io
from speechkit.pipeline import PipelineError, Resynthesizer, SpeechContinuation
from speechkit.units import HubertFeatureReader, KMeansQuantizer, SpeechEncoder
from speechkit.units.hubert import HubertConfig, build_hubert
from speechkit.vocoders import CodeHiFiGANVocoder
from speechkit.vocoders.hifigan.config import CodeHiFiGANConfig, DurationPredictorConfig, GeneratorConfig
from speechkit.vocoders.hifigan.factory import build_code_hifigan

K = 12


def tiny_encoder(seed: int = 0) -> SpeechEncoder:
    torch.manual_seed(seed)
    cfg = HubertConfig(conv_layers=[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2, embed_dim=16, num_layers=1,
                       num_heads=2, ffn_dim=32, conv_pos=16, conv_pos_groups=4)
    reader = HubertFeatureReader(build_hubert(cfg), cfg, layer=1)
    feats = reader(torch.randn(32000) * 0.3)
    return SpeechEncoder(reader, KMeansQuantizer(feats[torch.randperm(len(feats))[:K]]))


def tiny_vocoder(seed: int = 0) -> CodeHiFiGANVocoder:
    torch.manual_seed(seed)
    cfg = CodeHiFiGANConfig(num_units=K, embedding_dim=8, num_speakers=3, num_styles=2,
                            duration_predictor=DurationPredictorConfig(hidden_dim=8),
                            generator=GeneratorConfig(upsample_initial_channel=32, resblock_kernel_sizes=(3,),
                                                      resblock_dilation_sizes=((1, 3, 5),)))
    model = build_code_hifigan(cfg)
    with torch.no_grad():
        model.speaker_embedding.weight.mul_(4.0)  # speakers that sound clearly different
        model.generator.conv_post.weight.mul_(2.0)
    return CodeHiFiGANVocoder(model, cfg, ["a", "b", "c"], ["plain", "loud"])


@pytest.fixture(scope="module")
def rs() -> Resynthesizer:
    return Resynthesizer(tiny_encoder(), tiny_vocoder())


def speech_like(seconds: float = 1.5, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return 0.3 * torch.sin(2 * torch.pi * (120 + 60 * torch.sin(2 * torch.pi * 2 * t)) * t) * (0.6 + 0.4 * torch.sin(
        2 * torch.pi * 3 * t))


def test_any_rate_and_stereo_in_vocoder_rate_out(rs):
    wav = speech_like(sr=22050)
    out = rs(torch.stack([wav, wav]), sample_rate=22050, speaker="b")
    enc = rs.encoder(wav, sample_rate=22050)
    assert rs.output_sample_rate == 16000
    assert len(out) == int(enc["durations"].sum()) * 320
    assert torch.equal(out, rs.vocoder(enc["units"], speaker="b", durations=enc["durations"]))


def test_conversion_to_another_speaker_and_style(rs):
    wav = speech_like()
    a = rs(wav, 16000, speaker="a", style="plain")
    c = rs(wav, 16000, speaker=2, style="loud")
    assert a.shape == c.shape and float((a - c).abs().max()) > 1e-3


def test_keeping_the_voice_picks_the_speaker_that_sounds_like_the_input(rs):
    enc = rs.encoder(speech_like(), sample_rate=16000)
    for spk in (0, 1, 2):
        voiced = rs.vocoder(enc["units"], speaker=spk, durations=enc["durations"])
        assert rs.match_speaker(voiced, 16000, enc["units"], enc["durations"]) == spk


def test_duration_prediction_option():
    rs = Resynthesizer(tiny_encoder(), tiny_vocoder(), dur_prediction=True)
    enc = rs.encoder(speech_like(), sample_rate=16000)
    out = rs(speech_like(), 16000, speaker="a")
    assert len(out) == int(rs.vocoder.model.predict_durations(enc["units"][None]).sum()) * 320


def test_errors(rs, tmp_path):
    with pytest.raises(PipelineError, match="too short"):
        rs(torch.zeros(100), 16000)
    with pytest.raises(PipelineError, match="non-empty"):
        rs(torch.zeros(2, 3, 4), 16000)
    with pytest.raises(PipelineError, match="missing encoder/"):
        Resynthesizer.from_pretrained(tmp_path)
    enc = tiny_encoder()
    enc.quantizer = KMeansQuantizer(torch.randn(K + 1, 16))
    with pytest.raises(PipelineError, match=f"makes {K + 1} units but the vocoder reads {K}"):
        Resynthesizer(enc, tiny_vocoder())
    from speechkit.vocoders import VocoderError

    with pytest.raises(VocoderError, match="unknown speaker"):
        rs(speech_like(), 16000, speaker="zz")


def test_from_pretrained_and_cli(rs, tmp_path, capsys):
    from speechkit.cli.main import main

    rs.encoder.save_pretrained(tmp_path / "bundle" / "encoder")
    rs.vocoder.save_pretrained(tmp_path / "bundle" / "vocoder")
    again = Resynthesizer.from_pretrained(tmp_path / "bundle")
    wav = speech_like(sr=24000)
    assert torch.equal(again(wav, 24000, speaker="c"), rs(wav, 24000, speaker="c"))
    io.save(tmp_path / "in.wav", wav, 24000)
    assert main(["resynth", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "--model",
                 str(tmp_path / "bundle"), "--speaker", "c", "--style", "1"]) == 0
    out, sr = io.load(tmp_path / "out.wav")
    assert sr == 16000
    np.testing.assert_allclose(out.numpy(), rs(wav, 24000, speaker="c", style=1).numpy(), atol=1 / 32767)
    assert main(["resynth", "--list-speakers", "--model", str(tmp_path / "bundle")]) == 0
    assert "speakers: a, b, c" in capsys.readouterr().out
    assert main(["resynth", str(tmp_path / "in.wav"), "-o", str(tmp_path / "x.wav"), "--model",
                 str(tmp_path / "bundle"), "--speaker", "nobody"]) == 1
    assert "speechkit: error: speaker='nobody': unknown speaker" in capsys.readouterr().err
    assert main(["resynth", str(tmp_path / "in.wav"), "-o", str(tmp_path / "x.wav"), "--model",
                 str(tmp_path / "missing")]) == 1
    assert "missing encoder/" in capsys.readouterr().err


def test_f0_conditioned_vocoder_gets_normalised_f0():
    torch.manual_seed(0)
    cfg = CodeHiFiGANConfig(num_units=K, embedding_dim=8, f0="continuous", num_speakers=2,
                            generator=GeneratorConfig(upsample_initial_channel=32, resblock_kernel_sizes=(3,),
                                                      resblock_dilation_sizes=((1, 3, 5),)))
    vocoder = CodeHiFiGANVocoder(build_code_hifigan(cfg), cfg)
    with pytest.raises(PipelineError, match="need_f0=True"):
        Resynthesizer(tiny_encoder(), vocoder)(speech_like(), 16000, speaker=0)
    encoder = tiny_encoder()
    encoder.need_f0 = True
    rs = Resynthesizer(encoder, vocoder)
    enc = encoder(speech_like(), sample_rate=16000)
    inputs = rs.vocoder_inputs(enc)
    f0 = inputs["f0"]
    assert len(f0) == int(enc["durations"].sum()) and (f0 != 0).any()
    voiced = f0[torch.repeat_interleave(enc["f0"], enc["durations"]) > 0]
    assert abs(float(voiced.mean())) < 1e-4  # the utterance's own statistics
    out = rs(speech_like(), 16000)  # keeps the voice: matched speaker, F0 passed along
    assert torch.equal(out, rs(speech_like(), 16000, speaker=rs.match_speaker(
        speech_like(), 16000, inputs["units"], inputs["durations"], f0=f0)))


def _devices(module: torch.nn.Module) -> set[str]:
    return {t.device.type for t in [*module.parameters(), *module.buffers()]}


def test_to_moves_every_part_and_dtype_turns_the_fast_paths_on_and_off(tmp_path):
    from speechkit.precision import resolve_precision

    rs = Resynthesizer(tiny_encoder(), tiny_vocoder())
    assert rs.to("cpu") is rs
    expected = resolve_precision("bf16", "cpu", what="test")  # bf16 where this CPU computes in it, else fp32
    rs.to(dtype=torch.bfloat16)
    assert rs.vocoder.precision == expected
    assert rs.encoder.reader.autocast == (torch.bfloat16 if expected == "bf16" else None)
    rs.to(dtype=torch.float32)
    assert rs.vocoder.precision == "fp32" and rs.encoder.reader.autocast is None
    with pytest.raises(ValueError, match="dtype must be torch.float32, torch.bfloat16 or torch.float16"):
        rs.to(dtype=torch.int8)
    rs.encoder.save_pretrained(tmp_path / "bundle" / "encoder")
    rs.vocoder.save_pretrained(tmp_path / "bundle" / "vocoder")
    loaded = Resynthesizer.from_pretrained(tmp_path / "bundle", device="cpu", dtype=torch.bfloat16)
    assert loaded.vocoder.precision == expected
    rs.to("meta")  # no GPU here: the meta device shows that every parameter and buffer moves
    assert _devices(rs.encoder) == {"meta"} and _devices(rs.vocoder) == {"meta"}


def test_default_bundle_from_an_installed_wheel(tmp_path, monkeypatch):
    """Without a checkout, SPEECHKIT_DEFAULT_MODEL says where the default bundle is; where it is nowhere, the
    error says what to do."""
    from speechkit.errors import SpeechkitError

    rs = Resynthesizer(tiny_encoder(), tiny_vocoder())
    rs.encoder.save_pretrained(tmp_path / "copy" / "encoder")
    rs.vocoder.save_pretrained(tmp_path / "copy" / "vocoder")
    monkeypatch.setenv("SPEECHKIT_DEFAULT_MODEL", str(tmp_path / "copy"))
    loaded = Resynthesizer.from_pretrained()
    assert loaded.vocoder.speakers == ["a", "b", "c"]  # the tiny bundle, not checkpoints/default
    monkeypatch.setenv("SPEECHKIT_DEFAULT_MODEL", str(tmp_path / "nowhere"))
    with pytest.raises(SpeechkitError, match="the default bundle is not there.*SPEECHKIT_DEFAULT_MODEL"):
        Resynthesizer.from_pretrained()
    with pytest.raises(SpeechkitError, match="the default bundle is not there"):
        SpeechContinuation.from_pretrained()
