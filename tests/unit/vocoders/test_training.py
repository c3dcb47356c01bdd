"""Vocoder training: data segments, losses, discriminators, one solver run with resume, and the Hydra config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from speechkit.audio import io
from speechkit.data.manifest import UnitRecord, write_units_jsonl
from speechkit.vocoders import CodeHiFiGANVocoder, VocoderError
from speechkit.vocoders.hifigan.data import DataError, UnitAudioDataset, collate, name_function
from speechkit.vocoders.hifigan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from speechkit.vocoders.hifigan.factory import build_code_hifigan
from speechkit.vocoders.hifigan.losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)


def make_corpus(root: Path, n: int = 6, seconds: float = 0.6, sr: int = 24000) -> Path:
    """Expresso-named wavs (2 speakers x 2 styles) at 24 kHz and a units jsonl of deduplicated random units, with
    a per-unit F0 (Hz, every third unit unvoiced; speaker ex02 an octave above ex01)."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        spk, style = ("ex01", "ex02")[i % 2], ("happy", "sad")[(i // 2) % 2]
        stem = f"{spk}_{style}_{i:05d}"
        t = np.arange(int(seconds * sr)) / sr
        wav = 0.3 * np.sin(2 * np.pi * (150 + 50 * i) * t) + 0.01 * rng.standard_normal(len(t))
        path = root / "audio" / spk / f"{stem}.wav"
        io.save(path, wav.astype(np.float32), sr)
        frames = int(seconds * 50)
        units, counts = torch.unique_consecutive(torch.from_numpy(rng.integers(0, 20, frames // 2).repeat(2)),
                                                 return_counts=True)
        f0 = [0.0 if j % 3 == 0 else (100.0 if spk == "ex01" else 200.0) + 10 * (j % 5) for j in range(len(units))]
        records.append(UnitRecord(stem, str(path.relative_to(root)), units.tolist(), counts.tolist(), f0))
    return write_units_jsonl(root / "units.jsonl", records)


def test_dataset_segments_align_units_and_audio(tmp_path):
    units_path = make_corpus(tmp_path)
    from speechkit.data.manifest import read_units_jsonl

    records = read_units_jsonl(units_path)
    ds = UnitAudioDataset(records, sample_rate=16000, hop=320, segment_frames=8, audio_root=tmp_path,
                          speakers=[0, 1] * 3, styles=[0, 0, 1, 1, 0, 0])
    item = ds[3]
    assert item.units.shape == (8,) and item.audio.shape == (8 * 320,) and (item.speaker, item.style) == (1, 1)
    whole = UnitAudioDataset(records, sample_rate=16000, hop=320, segment_frames=None, audio_root=tmp_path)[3]
    assert len(whole.units) == 30 and float(whole.audio.abs().max()) == pytest.approx(0.95, abs=1e-4)
    # the segment is the same slice of units and audio
    start = next(s for s in range(len(whole.units) - 7) if torch.equal(whole.units[s:s + 8], item.units)
                 and torch.allclose(whole.audio[s * 320:(s + 8) * 320], item.audio))
    assert start >= 0
    # segments longer than an utterance tile it, as released
    long = UnitAudioDataset(records, sample_rate=16000, hop=320, segment_frames=50, audio_root=tmp_path)[0]
    assert long.units.shape == (50,) and long.audio.shape == (50 * 320,)
    batch = collate([ds[0], ds[1]])
    assert batch["units"].shape == (2, 8) and batch["audio"].shape == (2, 1, 2560)
    # units that do not belong to the audio
    bad = [UnitRecord("x", records[0].audio, [1] * 80)]
    with pytest.raises(DataError, match="record 'x': 80 unit frames but 30 audio frames"):
        UnitAudioDataset(bad, sample_rate=16000, hop=320, segment_frames=8, audio_root=tmp_path)[0]


def test_name_functions():
    p = "root/audio_48khz/read/ex01/happy/base/ex01_happy_00012.wav"
    assert name_function("expresso", "speaker")(p) == "ex01"
    assert name_function("expresso", "style")(p) == "happy"
    assert name_function("grandparent", "speaker")(p) == "happy"
    assert name_function("prefix", "speaker")("a/p225_003.wav") == "p225"
    assert name_function("none", "speaker") is None
    with pytest.raises(DataError, match="data.speaker must be one of"):
        name_function("folder", "speaker")


def test_losses_on_known_values():
    real, fake = [torch.ones(2, 3), torch.zeros(1, 4)], [torch.zeros(2, 3), torch.full((1, 4), 0.5)]
    # real: (1-1)^2=0 and (1-0)^2=1; fake: 0^2=0 and 0.5^2=0.25
    assert float(discriminator_loss(real, fake)) == pytest.approx(0 + 0 + 1 + 0.25)
    assert float(generator_adversarial_loss(fake)) == pytest.approx(1 + 0.25)
    fm = feature_matching_loss([[torch.ones(3), torch.zeros(2)]], [[torch.zeros(3), torch.full((2,), 2.0)]])
    assert float(fm) == pytest.approx(1 + 2)


def test_duration_loss_follows_the_released_rule():
    cfg_model = build_code_hifigan(__import__("tests.unit.vocoders.test_vocoder", fromlist=["x"]).tiny_config(
        duration_predictor=__import__("speechkit.vocoders.hifigan.config", fromlist=["x"]).DurationPredictorConfig(
            hidden_dim=8, dropout=0.0)))
    units = torch.tensor([[3, 3, 5, 5, 5, 7, 2, 2, 9]])  # runs 2,3,1,2,1: first and last left out -> 3,1,2
    log_pred = cfg_model.log_durations(torch.tensor([[5, 7, 2]]))[0]
    expected = torch.mean((log_pred - torch.log(torch.tensor([4.0, 2.0, 3.0]))) ** 2)
    assert cfg_model.duration_loss(units).item() == pytest.approx(expected.item(), rel=1e-5)


def test_discriminators_shapes_and_released_sizes():
    y = torch.randn(2, 1, 3000)
    real, fake, fr, fg = MultiPeriodDiscriminator(scale=0.125)(y, y * 0.5)
    assert len(real) == len(fake) == 5 and all(len(f) == 6 for f in fr)
    real, fake, fr, fg = MultiScaleDiscriminator(scale=0.125)(y, y * 0.5)
    assert len(real) == 3 and all(len(f) == 8 for f in fg)
    full = MultiScaleDiscriminator()
    assert full.discriminators[0].convs[5].out_channels == 1024
    assert sum(p.numel() for p in full.parameters()) == pytest.approx(29.6e6, rel=0.02)  # hifi-gan's MSD
    assert sum(p.numel() for p in MultiPeriodDiscriminator().parameters()) == pytest.approx(41.1e6, rel=0.02)


def _compose(overrides, task: str = "vocoder"):
    from speechkit.cli.train import compose

    return compose(task, overrides)


@pytest.mark.slow
def test_solver_trains_exports_and_resumes(tmp_path):
    from speechkit.train.vocoder import run

    units = make_corpus(tmp_path, n=8)
    base = ["preset=debug", f"data.units={units}", f"data.audio_root={tmp_path}", "data.speaker=expresso",
            "data.style=expresso", "model.num_units=20", f"out={tmp_path / 'run'}"]
    assert run(_compose(base)) == 0
    out = tmp_path / "run"
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss_g" in x] == [1, 2, 3, 4]
    assert any("valid_mel_l1" in x for x in lines)
    voc = CodeHiFiGANVocoder.from_pretrained(out / "model")
    assert voc.speakers == ["ex01", "ex02"] and voc.styles == ["happy", "sad"]
    # each speaker's mean speaker embedding over its training speech is exported with the model
    from speechkit.metrics.speaker import SpeakerEncoder

    table, enc = voc.speaker_table, SpeakerEncoder()
    assert table.names == ["ex01", "ex02"] and table.utterances == {"ex01": 3, "ex02": 3}  # the 2 last: valid
    mean = np.mean([enc.embed(*io.load(tmp_path / "audio" / "ex02" / f"ex02_{s}_{i:05d}.wav"))
                    for i, s in ((1, "happy"), (3, "sad"), (5, "happy"))], axis=0)
    np.testing.assert_allclose(table.matrix[1], mean / np.linalg.norm(mean), atol=1e-6)
    wav = voc([1, 2, 3], speaker="ex02", style="sad", dur_prediction=True)
    assert wav.ndim == 1 and torch.isfinite(wav).all()
    official = CodeHiFiGANVocoder.from_pretrained(out / "official" / "g_00000004")
    assert torch.equal(official([1, 2, 3], speaker=1, style=1), voc([1, 2, 3], speaker=1, style=1))
    assert all("loss_d" in x for x in lines if "loss_g" in x)
    # resume: 2 more steps continue from step 4 (the 5th generator-only, as before a discriminator_start)
    assert run(_compose(base + ["optim.max_steps=6", "train.discriminator_start=5"])) == 0
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    new = {x["step"]: x for x in lines if "loss_g" in x and x["step"] > 4}
    assert sorted(new) == [5, 6] and "loss_d" not in new[5] and "loss_d" in new[6]


def test_train_and_valid_lists_select_records(tmp_path):
    from speechkit.train.vocoder import _datasets
    from speechkit.vocoders.hifigan.train_config import VocoderTrainConfig

    units = make_corpus(tmp_path, n=8)
    (tmp_path / "train.txt").write_text("# a comment\nex01_happy_00000\nex02_happy_00001\t(0.5s,)\nex01_sad_00002\n")
    (tmp_path / "dev.txt").write_text("ex02_sad_00003\n")
    values = _compose(["preset=debug", f"data.units={units}", f"data.audio_root={tmp_path}", "data.speaker=expresso",
                       "data.style=expresso", "model.num_units=20", f"out={tmp_path / 'run'}",
                       f"data.train_list={tmp_path / 'train.txt'}", f"data.valid_list={tmp_path / 'dev.txt'}"])
    from omegaconf import OmegaConf

    cfg = VocoderTrainConfig.from_dict(OmegaConf.to_container(values, resolve=True))
    train, valid, speakers, styles, _ = _datasets(cfg, 320)
    assert [r.id for r in train.records] == ["ex01_happy_00000", "ex02_happy_00001", "ex01_sad_00002"]
    assert [r.id for r in valid.records] == ["ex02_sad_00003"]
    assert speakers == ["ex01", "ex02"] and styles == ["happy", "sad"] and valid.speakers == [1]
    (tmp_path / "dev.txt").write_text("nothing_like_it_00001\n")
    with pytest.raises(VocoderError, match="none of its 1 names is the audio stem"):
        _datasets(cfg, 320)


def test_config_errors_name_the_key(tmp_path):
    from speechkit.train.vocoder import run

    with pytest.raises(VocoderError, match="required value data.units is missing"):
        run(_compose(["preset=debug", "model.num_units=20", f"out={tmp_path}"]))
    with pytest.raises(VocoderError, match="segment_size must be a positive multiple of the hop"):
        run(_compose(["preset=debug", "data.units=x", "data.segment_size=1000", "model.num_units=20",
                      f"out={tmp_path}"]))


@pytest.mark.slow
def test_torchrun_ddp_two_processes(tmp_path):
    import socket
    import subprocess
    import sys

    units = make_corpus(tmp_path, n=8)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "-m", "speechkit.cli.main", "train", "vocoder", "preset=debug", f"data.units={units}",
           f"data.audio_root={tmp_path}", "data.speaker=expresso", "model.num_units=20", f"out={tmp_path / 'ddp'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = [json.loads(x)["step"] for x in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert steps.count(4) == 2  # one train line + one validation line, written once (rank 0)
    assert CodeHiFiGANVocoder.from_pretrained(tmp_path / "ddp" / "model").speakers == ["ex01", "ex02"]


def test_channels_last_training_path_gives_the_same_gradients():
    from tests.unit.vocoders.test_vocoder import tiny_config

    torch.manual_seed(0)
    model = build_code_hifigan(tiny_config())
    model.generator.apply_weight_norm()
    units = torch.randint(0, 20, (2, 6))
    grads = []
    for channels_last in (False, True):
        model.zero_grad()
        wav = model(units, channels_last=channels_last)
        (wav ** 2).sum().backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
    for k, g in grads[0].items():
        torch.testing.assert_close(grads[1][k], g, rtol=1e-4, atol=1e-6)


def test_f0_frames_and_statistics():
    from speechkit.vocoders.hifigan.data import frame_f0
    from speechkit.vocoders.hifigan.f0 import F0Stats, normalize_f0

    r = UnitRecord("a", "a.wav", [1, 2, 3], [2, 1, 3], [100.0, 0.0, 120.0])
    assert frame_f0(r).tolist() == [100.0, 100.0, 0.0, 120.0, 120.0, 120.0]
    with pytest.raises(DataError, match="no 'f0' values"):
        frame_f0(UnitRecord("b", "b.wav", [1], [2]))
    with pytest.raises(DataError, match="2 F0 values fit neither"):
        frame_f0(UnitRecord("c", "c.wav", [1, 2, 3], [1, 1, 1], [1.0, 2.0]))
    stats = F0Stats.compute([("x", torch.tensor([100.0, 0.0, 120.0])), ("y", torch.tensor([200.0, 220.0]))])
    assert stats.get("x")[0] == pytest.approx(110.0) and stats.get("nobody") == stats.pooled
    assert normalize_f0(torch.tensor([0.0, 110.0]), *stats.get("x"))[0] == 0
    assert F0Stats.from_dict(stats.to_dict()) == stats


@pytest.mark.slow
def test_f0_conditioned_training(tmp_path):
    from speechkit.train.vocoder import run

    units = make_corpus(tmp_path, n=8)
    assert run(_compose(["preset=debug", f"data.units={units}", f"data.audio_root={tmp_path}", "data.speaker=expresso",
                         "model.num_units=20", "model.f0=continuous", f"out={tmp_path / 'run'}"])) == 0
    voc = CodeHiFiGANVocoder.from_pretrained(tmp_path / "run" / "model")
    assert voc.config.f0 == "continuous" and set(voc.f0_stats.speakers) == {"ex01", "ex02"}
    assert voc.f0_stats.get("ex02")[0] > 1.5 * voc.f0_stats.get("ex01")[0]
    f0 = voc.normalize_f0([0.0, 210.0, 230.0], speaker="ex02")
    assert f0[0] == 0 and torch.isfinite(f0).all()
    assert voc([1, 2, 3], speaker="ex02", f0=f0).shape == (3 * 320,)
    official = CodeHiFiGANVocoder.from_pretrained(tmp_path / "run" / "official" / "g_00000004")
    assert official.config.f0 == "continuous"
    with pytest.raises(VocoderError, match="carries no F0 statistics"):
        official.normalize_f0([100.0])


def test_time_budget_stops_saves_and_resumes(tmp_path):
    from speechkit.train.vocoder import run

    units = make_corpus(tmp_path, n=6)
    base = ["preset=debug", f"data.units={units}", f"data.audio_root={tmp_path}", "model.num_units=20",
            f"out={tmp_path / 'run'}", "optim.max_steps=50"]
    assert run(_compose(base + ["train.max_minutes=0"])) == 0  # a spent budget: one step, then save and export
    out = tmp_path / "run"
    steps = [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()]
    assert max(steps) == 1
    assert json.loads((out / "model" / "config.json").read_text())["step"] == 1
    assert run(_compose(base + ["optim.max_steps=3"])) == 0  # no budget: resumes at step 2
    steps = [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines() if "loss_g" in x]
    assert steps == [1, 2, 3]


def test_warm_start_copies_the_body_of_a_vocoder_of_another_tokenizer(tmp_path):
    from speechkit.train.vocoder import run, warm_start

    units = make_corpus(tmp_path, n=6)
    base = ["preset=debug", f"data.units={units}", f"data.audio_root={tmp_path}", "data.speaker=expresso",
            "data.style=expresso", "optim.max_steps=2"]
    assert run(_compose(base + ["model.num_units=20", f"out={tmp_path / 'first'}"])) == 0
    first = CodeHiFiGANVocoder.from_pretrained(tmp_path / "first" / "model")
    # a model over 30 units: the body and the speaker / style tables fit, the unit embedding does not
    fresh = build_code_hifigan(first.config.__class__.from_dict({**first.config.to_dict(), "num_units": 30}))
    copied, skipped = warm_start(fresh, tmp_path / "first" / "model")
    assert skipped == ["unit_embedding.weight"] and "speaker_embedding.weight" in copied
    src = first.model.state_dict()
    assert all(torch.equal(fresh.state_dict()[k], src[k]) for k in copied)
    with pytest.raises(VocoderError, match="no model.safetensors"):
        warm_start(fresh, tmp_path)
    # through the solver: the run starts from those tensors and trains on
    assert run(_compose(base + ["model.num_units=30", f"out={tmp_path / 'second'}",
                                f"train.init={tmp_path / 'first' / 'model'}", "optim.max_steps=1"])) == 0
    assert CodeHiFiGANVocoder.from_pretrained(tmp_path / "second" / "model").vocab_size == 30


def test_bf16_training_steps_are_finite_and_bad_precision_is_refused(tmp_path):
    from speechkit.train.vocoder import run

    units = make_corpus(tmp_path, n=6)
    base = ["preset=debug", f"data.units={units}", f"data.audio_root={tmp_path}", "model.num_units=20",
            "optim.max_steps=2", "train.discriminator_start=1"]  # one generator-only step, one adversarial step
    assert run(_compose(base + ["train.precision=bf16", f"out={tmp_path / 'bf16'}"])) == 0
    rows = [json.loads(x) for x in (tmp_path / "bf16" / "log.jsonl").read_text().splitlines() if "loss_g" in x]
    assert [r["step"] for r in rows] == [1, 2] and "loss_d" in rows[1]
    assert all(np.isfinite(v) for r in rows for k, v in r.items() if isinstance(v, float))
    with pytest.raises(VocoderError, match="train.precision must be 'fp32' or 'bf16'. Found 'fp16'"):
        run(_compose(base + ["train.precision=fp16", f"out={tmp_path / 'x'}"]))
