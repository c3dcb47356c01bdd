"""CodeHiFiGANVocoder: our format, export to the official one, and errors for bad files and bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from speechkit.vocoders import CodeHiFiGANVocoder, HiFiGANVocoder, VocoderError
from speechkit.vocoders.hifigan.config import CodeHiFiGANConfig, DurationPredictorConfig, GeneratorConfig
from speechkit.vocoders.hifigan.factory import build_code_hifigan

DATA = Path(__file__).resolve().parents[2] / "data" / "vocoders"


@pytest.fixture(scope="module")
def expresso():
    return CodeHiFiGANVocoder.from_pretrained(DATA / "expresso" / "g_00000000")


def tiny_config(**kw) -> CodeHiFiGANConfig:
    return CodeHiFiGANConfig(num_units=20, embedding_dim=8, generator=GeneratorConfig(
        upsample_initial_channel=16, upsample_rates=(4, 4), upsample_kernel_sizes=(8, 8),
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),)), **kw)


def test_save_and_load_our_format(tmp_path, expresso):
    units = np.load(DATA / "expresso" / "reference.npz")["units"]
    expresso.save_pretrained(tmp_path / "voc")
    assert sorted(p.name for p in (tmp_path / "voc").iterdir()) == ["config.json", "model.safetensors",
                                                                   "speakers.txt", "styles.txt"]
    again = CodeHiFiGANVocoder.from_pretrained(tmp_path / "voc")
    assert again.speakers == expresso.speakers and again.styles == expresso.styles
    assert again.config == expresso.config
    a = expresso(units, speaker="lj", style="confused", dur_prediction=True)
    assert torch.equal(a, again(units, speaker="lj", style="confused", dur_prediction=True))
    assert torch.equal(a, again(units, speaker=2, style=2, dur_prediction=True))  # ids work as names do


def test_export_official_matches_official_keys_shapes_and_config(tmp_path, expresso):
    ckpt = expresso.export_official(tmp_path / "official", step=1234)
    assert ckpt.name == "g_00001234"
    ours = torch.load(ckpt, weights_only=True)["generator"]
    theirs = torch.load(DATA / "expresso" / "g_00000000", weights_only=True)["generator"]
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    cfg = json.loads((tmp_path / "official" / "config.json").read_text())
    official = json.loads((DATA / "expresso" / "config.json").read_text())
    for key in ("num_embeddings", "embedding_dim", "model_in_dim", "num_speakers", "num_styles", "upsample_rates",
                "upsample_kernel_sizes", "upsample_initial_channel", "resblock_kernel_sizes",
                "resblock_dilation_sizes", "dur_predictor_params", "sampling_rate"):
        assert cfg[key] == official[key], key
    assert cfg["multispkr"] and cfg["multistyle"]
    assert (tmp_path / "official" / "speakers.txt").read_text() == (DATA / "expresso" / "speakers.txt").read_text()
    # round trip through the official format: weight norm re-folds to the very same weights
    back = CodeHiFiGANVocoder.from_pretrained(ckpt)
    for k, v in expresso.model.state_dict().items():
        assert torch.equal(back.model.state_dict()[k], v), k


def test_mel_vocoder_round_trip(tmp_path):
    voc = HiFiGANVocoder.from_pretrained(DATA / "mel_v3" / "g_00000000")
    voc.save_pretrained(tmp_path / "mel")
    mel = torch.from_numpy(np.load(DATA / "mel_v3" / "reference.npz")["mel"])
    assert torch.equal(voc(mel), HiFiGANVocoder.from_pretrained(tmp_path / "mel")(mel))
    with pytest.raises(VocoderError, match="mel must be"):
        voc(torch.zeros(40, 5))
    with pytest.raises(VocoderError, match="not a mel_hifigan model"):
        HiFiGANVocoder.from_pretrained(_our_code_folder(tmp_path))


def _our_code_folder(tmp_path: Path) -> Path:
    cfg = tiny_config()
    CodeHiFiGANVocoder(build_code_hifigan(cfg), cfg).save_pretrained(tmp_path / "code")
    return tmp_path / "code"


def test_bad_checkpoint_files_name_the_file(tmp_path):
    cfg = DATA / "base" / "config.json"
    with pytest.raises(VocoderError, match="no such checkpoint file"):
        CodeHiFiGANVocoder.from_pretrained(tmp_path / "g_missing", config_path=cfg)
    corrupt = tmp_path / "g_00000001"
    corrupt.write_bytes(b"\x80\x04garbage")
    with pytest.raises(VocoderError, match=f"{corrupt}: not a loadable checkpoint"):
        CodeHiFiGANVocoder.from_pretrained(corrupt, config_path=cfg)
    wrong = tmp_path / "g_00000002"
    torch.save({"model": {"w": torch.zeros(2)}}, wrong)
    with pytest.raises(VocoderError, match=f"{wrong}: not a HiFi-GAN generator checkpoint"):
        CodeHiFiGANVocoder.from_pretrained(wrong, config_path=cfg)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_loading_never_runs_pickled_code(tmp_path, capsys):
    evil = tmp_path / "g_00000003"
    torch.save({"generator": {"conv_pre.weight": torch.zeros(1)}, "x": _Evil()}, evil)
    with pytest.raises(VocoderError, match="not a loadable checkpoint"):
        CodeHiFiGANVocoder.from_pretrained(evil, config_path=DATA / "base" / "config.json")
    assert "pwned" not in capsys.readouterr().out


def test_config_and_weights_that_disagree(tmp_path):
    official = json.loads((DATA / "expresso" / "config.json").read_text())
    shutil.copy(DATA / "expresso" / "g_00000000", tmp_path / "g_00000000")
    for change, message in [({"num_speakers": 9}, "num_speakers is 9 but the checkpoint's table has 7 rows"),
                            ({"multistyle": False}, "the generator input is 48 channels but the config's "
                                                    "conditioning is 32"),
                            ({"f0_quantizer_path": "x/g_1"}, "VQ-VAE F0"),
                            ({"upsample_rates": [5, 4]}, "upsample_kernel_sizes needs one kernel per upsample rate")]:
        (tmp_path / "config.json").write_text(json.dumps({**official, **change}))
        with pytest.raises(VocoderError, match=message):
            CodeHiFiGANVocoder.from_pretrained(tmp_path / "g_00000000")
    (tmp_path / "config.json").write_text(json.dumps({**official, "num_embeddings": 50}))
    with pytest.raises(VocoderError, match=r"unit_embedding.weight has shape \(100, 16\), the config implies \(50"):
        CodeHiFiGANVocoder.from_pretrained(tmp_path / "g_00000000")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(VocoderError, match="config.json: not a JSON config"):
        CodeHiFiGANVocoder.from_pretrained(tmp_path / "g_00000000")


def test_bad_inputs_get_clear_errors(expresso):
    units = [1, 2, 3]
    cases = [
        (dict(units=[]), "empty unit sequence"),
        (dict(units=[-1, -1]), "all 2 ids are negative"),
        (dict(units=[1, 100]), r"units must be < 100 .* Found 100"),
        (dict(units=[[1, 2], [3, 4]]), r"units must be 1-D"),
        (dict(units=[0.5, 1.0]), "units must be integers"),
        (dict(units=units, speaker="ex09"), r"speaker='ex09': unknown speaker; known: \['ex03'"),
        (dict(units=units, style="angry"), "style='angry': unknown style"),
        (dict(units=units, speaker=7), r"speaker id must be in 0..6. Found 7"),
        (dict(units=units, speaker=1.5), "speaker must be a name or an integer id"),
        (dict(units=units, speaker=torch.tensor([0.5])), "speaker must be a name or an integer id"),
        (dict(units="1 2 x"), "a string must hold numbers"),
        (dict(units=units, f0=[0.0] * 3), "not conditioned on F0"),
        (dict(units=units, durations=[1, 0, 2]), "durations must be 3 positive integers"),
        (dict(units=units, durations=[1, 1, 1], dur_prediction=True), "not both"),
    ]
    for kwargs, message in cases:
        with pytest.raises(VocoderError, match=message):
            expresso(**kwargs)


def test_inputs_without_optional_tables():
    cfg = tiny_config()
    voc = CodeHiFiGANVocoder(build_code_hifigan(cfg), cfg)
    with pytest.raises(VocoderError, match="no speaker input"):
        voc([1, 2], speaker="ex01")
    with pytest.raises(VocoderError, match="no duration predictor"):
        voc([1, 2], dur_prediction=True)
    assert voc(torch.tensor([[1, 2, -1, 3]])).shape == (3 * 16,)
    cfg = tiny_config(f0="continuous", num_speakers=3)
    voc = CodeHiFiGANVocoder(build_code_hifigan(cfg), cfg)
    with pytest.raises(VocoderError, match="f0 is required"):
        voc([1, 2])
    with pytest.raises(VocoderError, match="speaker='a': this vocoder has no speakers.txt list"):
        voc([1, 2], speaker="a", f0=[1.0, 0.0])
    with pytest.raises(VocoderError, match="cannot be aligned"):
        voc([1, 2, 3], f0=[1.0, 0.0])
    with pytest.raises(VocoderError, match="whole number of frames per unit"):
        voc([1, -1, 3], f0=[1.0, 0.0])
    # negative units drop their F0 frames too: same as giving only the kept ones
    f0 = torch.tensor([1.0, 1.1, 0.0, 0.0, -0.5, -0.4])
    assert torch.equal(voc([1, -1, 3], f0=f0), voc([1, 3], f0=f0[[0, 1, 4, 5]]))


def test_speaker_vector_conditioning():
    cfg = tiny_config(speaker_embedding_dim=5)
    voc = CodeHiFiGANVocoder(build_code_hifigan(cfg), cfg)
    a = voc([1, 2], speaker=np.ones(5))
    assert a.shape == (32,) and not torch.equal(a, voc([1, 2], speaker=-np.ones(5)))
    with pytest.raises(VocoderError, match="speaker vector of 5 values"):
        voc([1, 2])


def test_config_validation_names_field_and_value():
    with pytest.raises(VocoderError, match="f0 must be one of .* Found 'yes'"):
        tiny_config(f0="yes").validate()
    with pytest.raises(VocoderError, match="exclusive"):
        tiny_config(num_speakers=2, speaker_embedding_dim=3).validate()
    with pytest.raises(VocoderError, match="duration_predictor.kernel_size must be odd"):
        tiny_config(duration_predictor=DurationPredictorConfig(kernel_size=4)).validate()
    with pytest.raises(VocoderError, match="upsample_initial_channel must be >= 2"):
        GeneratorConfig(upsample_initial_channel=8).validate()
    cfg = tiny_config(num_styles=3, duration_predictor=DurationPredictorConfig())
    assert CodeHiFiGANConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_official_style_inputs(expresso):
    units = np.load(DATA / "expresso" / "reference.npz")["units"]
    a = expresso(units, speaker=1, style=3)
    # textlesslib passes (1, T) LongTensors and (1, 1) speaker / style tensors; strings of codes work too
    assert torch.equal(a, expresso(torch.from_numpy(units)[None], speaker=torch.LongTensor([[1]]),
                                   style=np.array([3])))
    assert torch.equal(a, expresso(" ".join(map(str, units)), speaker=1, style=3))
