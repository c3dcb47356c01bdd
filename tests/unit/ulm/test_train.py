import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from speechkit.data.manifest import UnitRecord, read_units_jsonl, write_units_jsonl
from speechkit.errors import SpeechkitError
from speechkit.train.ulm import OptimConfig, lr_at
from speechkit.ulm import UnitLM
from speechkit.ulm.data import DataError, PackedBlocks, split_records
from tests.unit.ulm.conftest import save_tiny_lm

ROOT = Path(__file__).resolve().parents[3]


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    o = OptimConfig(max_steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-4)
    lrs = [lr_at(s, o) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lr_at(100, o) == pytest.approx(1e-4) and lrs[55] == pytest.approx(5.5e-4)


def test_packed_blocks_targets_and_process_split():
    blocks = PackedBlocks(torch.arange(100), block_size=8)
    x, y = blocks.train_batch(3, batch_size=4, micro_step=0, micro_batch=4, rank=0, world_size=1, seed=0)
    assert x.shape == y.shape == (4, 8) and torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
    # 2 processes x 2 accumulation steps x micro-batch 1 cover exactly the one-process global batch
    parts = [blocks.train_batch(3, batch_size=4, micro_step=m, micro_batch=1, rank=r, world_size=2, seed=0)[0]
             for m in range(2) for r in range(2)]
    assert torch.equal(torch.cat(parts), x)
    other = blocks.train_batch(4, batch_size=4, micro_step=0, micro_batch=4, rank=0, world_size=1, seed=0)[0]
    assert not torch.equal(other, x)
    evals = list(blocks.eval_batches(max_blocks=100, batch_size=5))
    firsts = torch.cat([e[0][:, 0] for e in evals])
    assert firsts.tolist() == list(range(0, 96, 8))  # consecutive, non-overlapping
    with pytest.raises(DataError, match="toy: 5 tokens, fewer than one block of 9"):
        PackedBlocks(torch.arange(5), block_size=8, name="toy")


def test_split_records_dedups_merges_durations_and_splits_by_id(tmp_path):
    recs = [UnitRecord(f"u{i}", "", [1, 1, 2, 2, 2, 3] if i % 2 else [4], [1, 2, 1, 1, 1, 5] if i % 2 else [3])
            for i in range(200)]
    counts = split_records(recs, tmp_path, valid_fraction=0.1, min_units=2)
    assert counts["dropped"] == 100 and counts["train"] + counts["valid"] == 100 and 2 < counts["valid"] < 25
    train = read_units_jsonl(tmp_path / "train.jsonl")
    assert train[0].units == [1, 2, 3] and train[0].duration == [3, 3, 5]
    again = tmp_path / "again"
    split_records(recs[::-1], again, valid_fraction=0.1, min_units=2)
    assert {r.id for r in read_units_jsonl(again / "valid.jsonl")} == {
        r.id for r in read_units_jsonl(tmp_path / "valid.jsonl")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A learnable toy unit corpus (rising runs of units) and a tiny Llama text LM."""
    d = tmp_path_factory.mktemp("ulm_corpus")
    g = torch.Generator().manual_seed(0)

    def utts(n, prefix):
        out = []
        for i in range(n):
            start, length = int(torch.randint(0, 10, (1,), generator=g)), int(torch.randint(5, 15, (1,), generator=g))
            out.append(UnitRecord(f"{prefix}{i}", "", [(start + k) % 20 for k in range(length)]))
        return out

    write_units_jsonl(d / "train.jsonl", utts(200, "t"))
    write_units_jsonl(d / "valid.jsonl", utts(30, "v"))
    save_tiny_lm(d / "textlm", "llama")
    return d


def _overrides(corpus, out, *extra):
    return ["preset=debug", f"data.train={corpus / 'train.jsonl'}", f"data.valid={corpus / 'valid.jsonl'}",
            "data.num_units=20", f"model.text_lm={corpus / 'textlm'}", f"out={out}", *extra]


def _train(corpus, out, *extra):
    from speechkit.cli.train import compose
    from speechkit.train.ulm import run

    assert run(compose("ulm", _overrides(corpus, out, *extra))) == 0
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_debug_preset_trains_a_loadable_unit_lm_and_lowers_validation_loss(corpus, tmp_path):
    history = _train(corpus, tmp_path / "run", "optim.max_steps=30", "train.valid_every=10", "train.keep_every=10")
    valid = [h["valid_loss"] for h in history if "valid_loss" in h]
    assert len(valid) == 3 and valid[-1] < valid[0] - 0.3, valid
    lm = UnitLM.from_pretrained(tmp_path / "run" / "model")
    assert lm.info["init"] == "warm" and lm.num_units == 20
    # the trained LM prefers a rising run to a shuffled one
    ll = lm.log_likelihood([[3, 4, 5, 6, 7, 8], [3, 8, 5, 7, 4, 6]])
    assert ll[0] > ll[1]
    # out/best holds the model of the lowest validation loss, with its step
    best = json.loads((tmp_path / "run" / "best" / "valid_loss.json").read_text())
    assert best["valid_loss"] == min(valid) and best["step"] == 10 * (1 + valid.index(min(valid)))
    assert UnitLM.from_pretrained(tmp_path / "run" / "best").num_units == 20
    # train.keep_every: the model of every 10th step is kept beside model/; the one of the best step is best/
    kept = sorted(p.name for p in (tmp_path / "run").glob("model_*"))
    assert kept == ["model_000010", "model_000020", "model_000030"]
    weights = {name: load_file(next((tmp_path / "run" / name).glob("*.safetensors"))) for name in kept}
    best_weights = load_file(next((tmp_path / "run" / "best").glob("*.safetensors")))
    at_best = weights[f"model_{best['step']:06d}"]
    assert all(torch.equal(at_best[k], best_weights[k]) for k in best_weights)
    key = "model.embed_tokens.weight"
    assert not torch.equal(weights["model_000010"][key], weights["model_000030"][key])


def test_resume_after_interruption_equals_an_uninterrupted_run(corpus, tmp_path):
    from speechkit.cli.train import compose
    from speechkit.train.ulm import UlmConfig, load_config, train_causal_lm
    from speechkit.ulm.data import read_unit_sequences

    def setup(out):
        conf = load_config(UlmConfig, compose("ulm", _overrides(corpus, out, "model.init=cold")))
        lm = UnitLM.cold_start(corpus / "textlm", 20, seed=0)
        lm.model.config.attention_dropout = 0.0
        seqs = read_unit_sequences(conf.data.train)
        blocks = PackedBlocks.from_sequences([lm.token_ids(s) for s in seqs], conf.train.block_size)
        return conf, lm, blocks

    conf, lm, blocks = setup(tmp_path / "straight")
    train_causal_lm(lm.model, blocks, None, out=conf.out, optim=conf.optim, loop=conf.train,
                    save_model=lm.save_pretrained, config={})

    conf2, lm2, blocks2 = setup(tmp_path / "interrupted")

    def crash(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # dies right after the step-3 checkpoint
        train_causal_lm(lm2.model, blocks2, None, out=conf2.out, optim=conf2.optim, loop=conf2.train,
                        save_model=crash, config={})
    conf3, lm3, blocks3 = setup(tmp_path / "interrupted")
    out = train_causal_lm(lm3.model, blocks3, None, out=conf3.out, optim=conf3.optim, loop=conf3.train,
                          save_model=lm3.save_pretrained, config={})
    assert out["step"] == 6
    a, b = lm.model.state_dict(), lm3.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_autocast_runs_on_cpu(corpus, tmp_path):
    history = _train(corpus, tmp_path / "bf16", "train.precision=bf16", "optim.max_steps=2")
    assert all(torch.isfinite(torch.tensor(h.get("train_loss", 0.0))) for h in history)


def test_config_errors_name_the_key(corpus, tmp_path):
    from speechkit.cli.train import compose
    from speechkit.train.ulm import run

    with pytest.raises(SpeechkitError, match=r"required value data.train is missing"):
        run(compose("ulm", ["preset=debug"]))
    with pytest.raises(SpeechkitError, match=r"data.valid: .*nope.jsonl: no such units file"):
        run(compose("ulm", _overrides(corpus, tmp_path, f"data.valid={tmp_path / 'nope.jsonl'}")))
    with pytest.raises(SpeechkitError, match=r"optim.batch_size=5 must divide by world_size \(1\) x optim.grad_accum"):
        run(compose("ulm", _overrides(corpus, tmp_path, "optim.batch_size=5", "optim.grad_accum=2")))
    with pytest.raises(SpeechkitError, match=r"train.block_size=512 exceeds the model's context \(128\)"):
        run(compose("ulm", _overrides(corpus, tmp_path, "train.block_size=512")))
    with pytest.raises(SpeechkitError, match="model.init must be 'warm' or 'cold'"):
        run(compose("ulm", _overrides(corpus, tmp_path, "model.init=hot")))
    with pytest.raises(SpeechkitError, match=r"optim.lr2: Key 'lr2' not in 'OptimConfig'"):
        run(compose("ulm", _overrides(corpus, tmp_path, "+optim.lr2=1")))


@pytest.mark.slow
def test_torchrun_two_gloo_processes_match_one_process(corpus, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    args = ["-m", "speechkit.cli.main", "train", "ulm", *_overrides(corpus, tmp_path / "x", "optim.max_steps=4")]
    one = subprocess.run([sys.executable, *args, f"out={tmp_path / 'one'}"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args,
                          f"out={tmp_path / 'two'}"], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    a = load_file(str(tmp_path / "one" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "model" / "model.safetensors"))
    before = UnitLM.warm_start(corpus / "textlm", 20).model.state_dict()
    assert any(not torch.equal(a[k], before[k]) for k in a)  # it trained
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    ones = [json.loads(x) for x in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    twos = [json.loads(x) for x in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert len(twos) == len(ones)  # one process writes the log
    assert ones[0]["world_size"] == 1 and twos[0]["world_size"] == 2 and twos[0]["micro_batch"] == 2


def test_cli_sequences_builds_train_and_valid(tmp_path, capsys):
    from speechkit.cli.main import main

    recs = [UnitRecord(f"utt{i}", "", [i % 7, i % 7, 3, 3, 5], [2, 1, 1, 4, 1]) for i in range(40)]
    write_units_jsonl(tmp_path / "units.0.jsonl", recs[:20])
    write_units_jsonl(tmp_path / "units.1.jsonl", recs[20:] + [UnitRecord("short", "", [3, 3, 3], [1, 1, 1])])
    assert main(["sequences", str(tmp_path / "units.0.jsonl"), str(tmp_path / "units.1.jsonl"), "-o",
                 str(tmp_path / "ulm"), "--valid-fraction", "0.2", "--min-units", "2"]) == 0
    assert "dropped 1 shorter than 2 units" in capsys.readouterr().out
    train = read_units_jsonl(tmp_path / "ulm" / "train.jsonl")
    valid = read_units_jsonl(tmp_path / "ulm" / "valid.jsonl")
    assert len(train) + len(valid) == 40 and valid
    assert train[0].units[-2:] == [3, 5] and sum(train[0].duration) == 9


def test_cli_sequences_include_keeps_the_listed_stems(tmp_path, capsys):
    from speechkit.cli.main import main

    recs = [UnitRecord(f"spk/utt{i}", f"/corpus/spk/utt{i}.wav", [1, 2, 3]) for i in range(10)]
    write_units_jsonl(tmp_path / "units.jsonl", recs)
    (tmp_path / "train.txt").write_text("# split\nutt1\nutt4\t(0.0, 1.2)\nutt7\nnot_there\n")
    assert main(["sequences", str(tmp_path / "units.jsonl"), "-o", str(tmp_path / "ulm"), "--valid-fraction", "0",
                 "--include", str(tmp_path / "train.txt")]) == 0
    assert sorted(r.id for r in read_units_jsonl(tmp_path / "ulm" / "train.jsonl")) == ["spk/utt1", "spk/utt4",
                                                                                         "spk/utt7"]
    assert main(["sequences", str(tmp_path / "units.jsonl"), "-o", str(tmp_path / "x"), "--include",
                 str(tmp_path / "missing.txt")]) == 1
    assert "missing.txt: no such file (--include)" in capsys.readouterr().err


def test_split_records_always_keeps_one_validation_utterance(tmp_path):
    recs = [UnitRecord(f"u{i}", "", [1, 2, 3]) for i in range(3)]
    counts = split_records(recs, tmp_path, valid_fraction=0.01)
    assert counts["valid"] == 1 and counts["train"] == 2
    assert split_records(recs, tmp_path / "none", valid_fraction=0.0)["valid"] == 0
