"""DPO pieces (speechkit.ulm.dpo), the DPO trainer (speechkit train dpo) and auto-BLEU (speechkit.metrics.diversity)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from speechkit.cli.main import main
from speechkit.metrics.diversity import auto_bleu, mean_auto_bleu
from speechkit.ulm import UnitLM
from speechkit.ulm.dpo import (
    PairsError,
    PreferencePair,
    append_pairs,
    continuation_logps,
    dpo_loss,
    pairs_done,
    read_pairs,
)
from speechkit.ulm.model import token_log_likelihood
from tests.unit.ulm.conftest import tiny_config

K = 20


@pytest.fixture(scope="module")
def lm():
    return UnitLM.cold_start(tiny_config("llama", max_position_embeddings=256), num_units=K, seed=0)


# ------------------------------------------------------------------------------------------------ log-probs, loss
def test_continuation_logps_is_the_sequence_minus_the_prompt_under_an_independent_scorer(lm):
    prompts = [[3, 4, 5], [1, 2, 3, 4, 5, 6, 7, 8], [9]]
    conts = [[7, 7, 1, 2], [5], [0, 1, 2, 3, 4, 5]]
    got = continuation_logps(lm.model, lm.vocab, prompts, conts).detach()
    for i, (p, c) in enumerate(zip(prompts, conts, strict=True)):
        head = lm.vocab.token_ids(p, append_eos=False)
        whole = head + [u + lm.vocab.unit_offset for u in c]
        # the summed log-likelihood of every token after the first, whole sequence minus prompt alone (unpadded)
        both = token_log_likelihood(lm.model, [whole, head], reduction="sum", pad_id=lm.vocab.pad_id)
        assert got[i].item() == pytest.approx((both[0] - both[1]).item(), abs=1e-4), i


def test_continuation_logps_carries_gradients(lm):
    x = continuation_logps(lm.model, lm.vocab, [[1, 2]], [[3, 4]])
    x.sum().backward()
    grads = [p.grad for p in lm.model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    lm.model.zero_grad(set_to_none=True)


def test_dpo_loss_matches_its_formula():
    pc, pr = torch.tensor([-10.0, -3.0]), torch.tensor([-12.0, -2.0])
    rc, rr = torch.tensor([-11.0, -3.5]), torch.tensor([-11.0, -2.5])
    beta = 0.5
    loss, stats = dpo_loss(pc, pr, rc, rr, beta)
    margins = [beta * ((-10 + 11) - (-12 + 11)), beta * ((-3 + 3.5) - (-2 + 2.5))]  # 1.0 and 0.0
    expected = sum(math.log1p(math.exp(-m)) for m in margins) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert stats["reward_accuracy"].item() == 0.5  # the second margin is 0: not positive
    assert stats["reward_margin"].item() == pytest.approx(0.5)
    assert stats["chosen_reward"].item() == pytest.approx(beta * (1.0 + 0.5) / 2)


def test_dpo_loss_is_log2_at_the_reference_and_its_gradient_prefers_chosen():
    pc, pr = torch.tensor([-5.0], requires_grad=True), torch.tensor([-6.0], requires_grad=True)
    loss, _ = dpo_loss(pc, pr, pc.detach(), pr.detach(), beta=0.1)
    assert loss.item() == pytest.approx(math.log(2))
    loss.backward()
    assert pc.grad.item() < 0 < pr.grad.item()  # descending raises chosen, lowers rejected


# ------------------------------------------------------------------------------------------------ pairs files
def _pair(i, **kw):
    return PreferencePair(**{"id": f"p{i}", "prompt": [1, 2], "chosen": [3], "rejected": [4], **kw})


def test_pairs_roundtrip_and_resume_cuts_a_torn_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    append_pairs(path, [_pair(0, chosen_score=-1.5), _pair(1)])
    with open(path, "a") as f:
        f.write('{"id": "p2", "prompt": [1')  # killed mid-line
    assert pairs_done(path) == {"p0", "p1"}
    got = read_pairs(path, num_units=K)
    assert [p.id for p in got] == ["p0", "p1"] and got[0].chosen_score == -1.5 and got[1].rejected == [4]
    (tmp_path / "other.jsonl").write_text('{"id": "p0"}\n[1, 2]\n')  # not this job's file: refused, not resumed
    with pytest.raises(PairsError, match="other.jsonl:2: not a pair record"):
        pairs_done(tmp_path / "other.jsonl")


@pytest.mark.parametrize("line,rule", [
    ("not json", "not JSON"),
    ('{"prompt": [1]}', "'id'"),
    ('{"id": "a", "prompt": [1], "chosen": [], "rejected": [2]}', "non-empty list"),
    ('{"id": "a", "prompt": [1], "chosen": [25], "rejected": [2]}', "[0, 20)"),
    ('{"id": "a", "prompt": [1.5], "chosen": [2], "rejected": [2]}', "integers"),
])
def test_bad_pairs_are_refused_naming_file_line_and_rule(tmp_path, line, rule):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"id": "ok", "prompt": [1], "chosen": [2], "rejected": [3]}\n' + line + "\n")
    with pytest.raises(PairsError, match=rf"pairs.jsonl:2: .*{__import__('re').escape(rule)}"):
        read_pairs(path, num_units=K)


def test_missing_empty_and_repeated_pairs_are_refused(tmp_path):
    with pytest.raises(PairsError, match="no such"):
        read_pairs(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PairsError, match="no preference pairs"):
        read_pairs(tmp_path / "empty.jsonl")
    append_pairs(tmp_path / "twice.jsonl", [_pair(0), _pair(0)])
    with pytest.raises(PairsError, match="twice.jsonl:2: id 'p0' appears twice"):
        read_pairs(tmp_path / "twice.jsonl")


# ------------------------------------------------------------------------------------------------ auto-BLEU
def test_auto_bleu_counts_repeated_bigrams():
    assert auto_bleu([1, 2, 3, 4]) == 0.0
    assert auto_bleu([1, 2, 1, 2]) == pytest.approx(2 / 3)  # (1,2) twice of three bigrams
    assert auto_bleu([5, 5, 5, 5]) == 1.0
    assert auto_bleu("the cat the cat sat".split()) == pytest.approx(2 / 4)
    assert auto_bleu([1]) is None and auto_bleu([1, 1], n=1) == 1.0
    assert mean_auto_bleu([[1, 2, 3], [5, 5, 5], [7]]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        auto_bleu([1, 2], n=0)


# ------------------------------------------------------------------------------------------------ the trainer
@pytest.fixture()
def dpo_data(tmp_path, lm):
    """A unit LM folder and pairs whose chosen continuations use low units and rejected ones high units."""
    lm.save_pretrained(tmp_path / "init")
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 16), ("valid", 6)):
        rows = [PreferencePair(id=f"{split}{i}", prompt=torch.randint(0, K, (6,), generator=g).tolist(),
                               chosen=torch.randint(0, K // 2, (5,), generator=g).tolist(),
                               rejected=torch.randint(K // 2, K, (5,), generator=g).tolist()) for i in range(n)]
        append_pairs(tmp_path / f"{split}.jsonl", rows)
    return tmp_path


def _argv(d, out, *extra):
    return ["train", "dpo", "preset=debug", f"data.train={d / 'train.jsonl'}", f"data.valid={d / 'valid.jsonl'}",
            f"model.init={d / 'init'}", f"out={out}", *extra]


def test_dpo_training_learns_the_preference_and_exports_a_unit_lm(dpo_data, capsys):
    out = dpo_data / "run"
    assert main(_argv(dpo_data, out, "optim.max_steps=12")) == 0
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r.get("step") == 0 and "valid_loss" in r)
    last = [r for r in rows if "valid_loss" in r][-1]
    assert first["valid_loss"] == pytest.approx(math.log(2), abs=1e-5)  # the policy starts as the reference
    assert last["step"] == 12 and last["valid_loss"] < math.log(2) - 0.05 and last["valid_reward_accuracy"] == 1.0

    aligned = UnitLM.from_pretrained(out / "model")
    ref = UnitLM.from_pretrained(dpo_data / "init")
    assert aligned.info["dpo"]["beta"] == 0.1
    pairs = read_pairs(dpo_data / "valid.jsonl")

    def margin(model):
        with torch.no_grad():
            c = continuation_logps(model.model, model.vocab, [p.prompt for p in pairs], [p.chosen for p in pairs])
            r = continuation_logps(model.model, model.vocab, [p.prompt for p in pairs], [p.rejected for p in pairs])
        return (c - r).mean().item()

    assert margin(aligned) > margin(ref) + 1.0  # held-out chosen continuations gained on rejected ones


@pytest.mark.parametrize("override,message", [
    ("model.init=/nonexistent", "model.init: /nonexistent: not a unit-LM folder"),
    ("data.train=/nonexistent.jsonl", "data.train: /nonexistent.jsonl: no such preference-pairs file"),
    ("dpo.beta=0", "dpo.beta must be > 0"),
    ("optim.batch_size=64", "optim.batch_size=64 exceeds the 16 pairs"),
])
def test_bad_dpo_configs_are_refused_by_name(dpo_data, capsys, override, message):
    assert main(_argv(dpo_data, dpo_data / "bad", override)) != 0
    assert message in capsys.readouterr().err
