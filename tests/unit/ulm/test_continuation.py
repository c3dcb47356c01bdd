"""SpeechContinuation and ``speechkit continue`` with a tiny random encoder, unit LM and vocoder."""

from pathlib import Path

import pytest
import torch

from speechkit.audio import io
from speechkit.cli.main import main
from speechkit.pipeline import PipelineError, SpeechContinuation
from speechkit.ulm import UnitLM
from tests.unit.test_pipeline import K, speech_like, tiny_encoder, tiny_vocoder
from tests.unit.ulm.conftest import tiny_config


@pytest.fixture(scope="module")
def sc():
    lm = UnitLM.cold_start(tiny_config("llama", max_position_embeddings=512), num_units=K, seed=0)
    return SpeechContinuation(tiny_encoder(), lm, tiny_vocoder())


def test_continuation_is_prompt_plus_sampled_units_through_the_vocoder(sc):
    wav = speech_like(2.0)
    out = sc(wav, 16000, seconds=1.0, seed=3, speaker="a")
    enc = sc.encoder(wav, sample_rate=16000)
    n_new = int(torch.tensor(len(enc["units"]) / 2.0).ceil())
    new = sc.lm.generate(enc["units"], max_new_tokens=n_new, temperature=0.8, seed=3)
    assert 0 < len(new) <= n_new and int(new.max()) < K
    expected = sc.vocoder(torch.cat([enc["units"], new]), speaker="a", dur_prediction=True)
    assert torch.equal(out, expected)
    assert torch.equal(sc(wav, 16000, seconds=1.0, seed=3, speaker="a"), out)  # seeded
    alone = sc(wav, 16000, seconds=1.0, seed=3, speaker="a", include_prompt=False)
    assert torch.equal(alone, sc.vocoder(new, speaker="a", dur_prediction=True))


def test_without_duration_prediction_the_prompt_keeps_its_timing(sc):
    plain = SpeechContinuation(sc.encoder, sc.lm, sc.vocoder, dur_prediction=False)
    wav = speech_like(1.5, sr=22050)
    enc = sc.encoder(wav, sample_rate=22050)
    out = plain(torch.stack([wav, wav]), 22050, seconds=0.5, seed=0, speaker=1)
    new = plain.continue_units(enc["units"], int(torch.tensor(len(enc["units"]) / 1.5 * 0.5).ceil()), seed=0)
    median = max(1, int(enc["durations"].float().median()))
    assert len(out) == (int(enc["durations"].sum()) + median * len(new)) * sc.vocoder.code_hop_size


def test_long_prompts_are_cut_to_the_lm_context(sc):
    small = UnitLM.cold_start(tiny_config("llama", max_position_embeddings=40), num_units=K, seed=0)
    short = SpeechContinuation(sc.encoder, small, sc.vocoder)
    units = torch.randint(0, K, (200,))
    new = short.continue_units(units, 10, seed=1)
    assert torch.equal(new, small.generate(units[-28:], max_new_tokens=10, temperature=0.8, seed=1))
    with pytest.raises(PipelineError, match="do not fit the unit LM's context of 40"):
        short.continue_units(units, 39)


def test_errors(sc, tmp_path):
    other = UnitLM.cold_start(tiny_config("llama"), num_units=K + 1)
    with pytest.raises(PipelineError, match=rf"unit vocabularies differ: encoder {K}, unit LM {K + 1}"):
        SpeechContinuation(sc.encoder, other, sc.vocoder)
    with pytest.raises(PipelineError, match="seconds must be > 0"):
        sc(speech_like(), 16000, seconds=0)
    with pytest.raises(PipelineError, match=r"/encoder: no such encoder folder"):
        SpeechContinuation.from_pretrained(tmp_path)


def test_cli_continue(sc, tmp_path, capsys):
    sc.encoder.save_pretrained(tmp_path / "m" / "encoder")
    sc.lm.save_pretrained(tmp_path / "m" / "ulm")
    sc.vocoder.save_pretrained(tmp_path / "m" / "vocoder")
    io.save(tmp_path / "prompt.wav", speech_like(2.0, sr=24000), 24000)
    args = ["continue", str(tmp_path / "prompt.wav"), "-o", str(tmp_path / "out.wav"), "--model", str(tmp_path / "m"),
            "--seconds", "1", "--seed", "0", "--speaker", "b", "--prompt-seconds", "1.5"]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    first, sr = io.load(tmp_path / "out.wav")
    assert sr == 16000 and len(first) > 0
    assert main(args) == 0 and torch.allclose(io.load(tmp_path / "out.wav")[0], first)
    assert main(["continue", str(tmp_path / "prompt.wav"), "-o", str(tmp_path / "x.wav"), "--encoder",
                 str(tmp_path / "m" / "encoder")]) == 1  # a part alone: the others are not taken from the default
    assert "no ulm: give a model folder or the ulm path" in capsys.readouterr().err


def test_default_model_folder_is_found_from_any_working_directory(tmp_path, monkeypatch):
    from speechkit import hub

    monkeypatch.chdir(tmp_path)
    repo_root = Path(hub.__file__).resolve().parents[1]
    assert hub.local_model_dir("checkpoints/cards") == repo_root / "checkpoints" / "cards"
    (tmp_path / "checkpoints" / "cards").mkdir(parents=True)  # the working directory wins when it has the folder
    assert hub.local_model_dir("checkpoints/cards") == Path("checkpoints/cards")
    assert hub.local_model_dir("no/such/folder") == Path("no/such/folder")


def test_stop_on_eos_false_gives_the_asked_length_where_the_lm_would_end_at_once(sc):
    lm = UnitLM.cold_start(tiny_config("llama", max_position_embeddings=512), num_units=K, seed=0)
    with torch.no_grad():  # an LM that always ends the utterance: the end token's logit dominates
        lm.model.get_output_embeddings().bias = torch.nn.Parameter(torch.zeros(lm.model.config.vocab_size))
        lm.model.get_output_embeddings().bias[lm.vocab.eos_id] = 1e4
    ending = SpeechContinuation(sc.encoder, lm, sc.vocoder)
    wav = speech_like(2.0)
    units = sc.encoder(wav, sample_rate=16000)["units"]
    assert len(ending.continue_units(units, 12, seed=0)) == 0
    new = ending.continue_units(units, 12, seed=0, stop_on_eos=False)
    assert len(new) == 12 and int(new.max()) < K  # only units are drawn
    assert len(ending(wav, 16000, seconds=1.0, seed=0, speaker="a", include_prompt=False)) == 0
    full = ending(wav, 16000, seconds=1.0, seed=0, speaker="a", include_prompt=False, stop_on_eos=False)
    n_new = int(torch.tensor(len(units) / 2.0).ceil())
    assert torch.equal(full, sc.vocoder(ending.continue_units(units, n_new, seed=0, stop_on_eos=False), speaker="a",
                                         dur_prediction=True))


def test_to_moves_the_unit_lm_too_and_from_pretrained_takes_device_and_dtype(tmp_path):
    from speechkit.precision import resolve_precision

    lm = UnitLM.cold_start(tiny_config("llama"), num_units=K, seed=0)
    sc = SpeechContinuation(tiny_encoder(), lm, tiny_vocoder())
    for part, name in ((sc.encoder, "encoder"), (sc.lm, "ulm"), (sc.vocoder, "vocoder")):
        part.save_pretrained(tmp_path / "bundle" / name)
    loaded = SpeechContinuation.from_pretrained(tmp_path / "bundle", device="cpu", dtype=torch.bfloat16)
    expected = resolve_precision("bf16", "cpu", what="test")
    assert loaded.vocoder.precision == expected
    assert next(loaded.lm.model.parameters()).dtype == (torch.bfloat16 if expected == "bf16" else torch.float32)
    assert loaded.to(dtype=torch.float32) is loaded and next(loaded.lm.model.parameters()).dtype == torch.float32
    sc.to("meta")
    params = [*sc.encoder.parameters(), *sc.lm.model.parameters(), *sc.vocoder.parameters()]
    assert {p.device.type for p in params} == {"meta"}
