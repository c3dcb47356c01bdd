import pickle

import pytest
import torch

from speechkit.train.checkpoint import (
    CheckpointError,
    load_pretrained,
    load_training_state,
    save_pretrained,
    save_training_state,
)


def test_training_state_roundtrip_restores_model_and_optimizer(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    save_training_state(tmp_path, step=7, model=model, config={"lr": 1e-3}, optimizers={"opt": opt},
                        extra={"epoch": 2})
    state = load_training_state(tmp_path)
    assert state["step"] == 7 and state["config"] == {"lr": 1e-3} and state["extra"] == {"epoch": 2}
    fresh = torch.nn.Linear(4, 3)
    fresh.load_state_dict(state["model"])
    assert torch.equal(fresh.weight, model.weight)
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    opt2.load_state_dict(state["optimizers"]["opt"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_foreign_pickles_are_refused_not_executed(tmp_path, capsys):
    path = tmp_path / "checkpoint_last.pt"
    torch.save({"model": {}, "step": 1, "payload": Evil()}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(CheckpointError, match=r"checkpoint_last\.pt: not a loadable checkpoint"):
        load_training_state(path)
    assert "pwned" not in capsys.readouterr().out
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_training_state(tmp_path / "nothing")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a speechkit training checkpoint"):
        load_training_state(tmp_path / "other.pt")


def test_pretrained_folder_roundtrip(tmp_path):
    sd = {"w": torch.arange(6.0).view(2, 3).t(), "b": torch.ones(2)}  # a non-contiguous tensor is fine
    save_pretrained(tmp_path / "m", sd, {"dim": 3}, files={"speakers.txt": "us1\nus2\n"})
    state, cfg = load_pretrained(tmp_path / "m")
    assert cfg == {"dim": 3} and torch.equal(state["w"], sd["w"])
    assert (tmp_path / "m" / "speakers.txt").read_text() == "us1\nus2\n"
    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        load_pretrained(tmp_path)
