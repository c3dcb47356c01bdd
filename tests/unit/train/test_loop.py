"""TrainLoop's checkpoint/export order: a run killed right after a checkpoint resumes with its export current."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import speechkit.train.loop as loop_mod
from speechkit.train.loop import TrainLoop


class _Killed(Exception):
    pass


def _run(out, max_steps, kill_after_checkpoint_at=None, monkeypatch=None):
    """A tiny run that saves (and exports the step it has reached) every step; optionally dies right after
    writing the checkpoint of step ``kill_after_checkpoint_at``, before anything else happens."""
    if kill_after_checkpoint_at is not None:
        real = loop_mod.save_training_state

        def save_then_die(*args, **kwargs):
            real(*args, **kwargs)
            if kwargs["step"] == kill_after_checkpoint_at:
                raise _Killed

        monkeypatch.setattr(loop_mod, "save_training_state", save_then_die)
    settings = SimpleNamespace(log_every=1, save_every=1, seed=0, device="cpu")
    loop = TrainLoop(out, settings, max_steps=max_steps)
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loop.resume(model, {"opt": opt})
    while not loop.done:
        opt.zero_grad()
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
        loop.advance({"loss": torch.tensor(0.0)})
        step = loop.step
        loop.save(model, {"opt": opt}, export=lambda step=step: (out / "exported_step").write_text(str(step)))
    return loop


def test_kill_after_the_last_checkpoint_leaves_the_export_current(tmp_path, monkeypatch):
    out = tmp_path / "run"
    with pytest.raises(_Killed):
        _run(out, 3, kill_after_checkpoint_at=3, monkeypatch=monkeypatch)
    monkeypatch.undo()
    loop = _run(out, 3)  # resumes: already at max_steps, so it trains and exports nothing more
    assert loop.step == 3
    assert (out / "exported_step").read_text() == "3", "the export fell behind the checkpoint"


def test_kill_between_export_and_checkpoint_redoes_the_step(tmp_path, monkeypatch):
    out = tmp_path / "run"

    def die_at_step_2(*args, **kwargs):
        if kwargs["step"] == 2:
            raise _Killed  # exported step 2, but no checkpoint of it
        return real(*args, **kwargs)

    real = loop_mod.save_training_state
    monkeypatch.setattr(loop_mod, "save_training_state", die_at_step_2)
    with pytest.raises(_Killed):
        _run(out, 3)
    assert (out / "exported_step").read_text() == "2"
    monkeypatch.undo()
    loop = _run(out, 3)
    assert loop.step == 3 and (out / "exported_step").read_text() == "3"
