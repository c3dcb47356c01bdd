"""The training-loop core every ``speechkit train`` solver uses.

A solver keeps what is its own (data, model, the losses of one step, validation, what it exports) and hands the
rest to a :class:`TrainLoop`:

- **set-up**: joins torchrun's process group, picks the device (``cpu`` | ``cuda`` | ``auto``), threads, seeds
  ``seed + rank``;
- **schedule**: :func:`warmup_cosine` (linear warm-up, cosine decay to ``min_lr``) and :meth:`TrainLoop.set_lr`;
- **precision**: :meth:`TrainLoop.autocast` (bf16 where the kernels exist, else fp32 with one warning line);
- **resume**: :meth:`TrainLoop.resume` loads ``checkpoint_last.pt`` (``weights_only=True``) into the model,
  optimizers and schedulers, restores the RNG and trims ``log.jsonl`` to the checkpoint's step, so a run killed at
  any moment and resumed ends with the weights of the uninterrupted run, bit for bit;
- **epochs**: :meth:`TrainLoop.batches` walks each epoch's batches from where the checkpoint left off;
- **logging and cadence**: :meth:`TrainLoop.advance` counts the step, averages the step's losses (over steps and
  processes) and decides when to log, validate and save (``log_every``, ``valid_every``, ``save_every``, the last
  step, a wall-clock budget every process agrees on);
- **checkpoints**: :meth:`TrainLoop.save` writes the training state and runs the solver's export on rank 0 only,
  with the export kept off the training RNG;
- **DDP**: :meth:`TrainLoop.ddp` wraps a module for torchrun (gloo on CPU, NCCL on GPUs).

The shape of a solver::

    loop = TrainLoop(cfg.out, cfg.train, max_steps=o.max_steps, config=cfg.to_dict(), what="unit-mel training")
    model, opt = build(...).to(loop.device), AdamW(...)
    state = loop.resume(model, {"opt": opt})
    for batch in loop.batches(lambda epoch: epoch_indices(n, o.batch_size, epoch, seed)):
        loop.set_lr(opt, warmup_cosine(loop.step, o.lr, o.min_lr, o.warmup_steps, o.max_steps))
        with loop.autocast():
            loss = ...
        ...; opt.step()
        loop.advance({"loss": loss.detach()})
        if loop.due(loop.valid_every):
            loop.log({"step": loop.step, **validate(...)})
        if loop.due(loop.save_every):
            loop.save(model, {"opt": opt}, export=...)
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speechkit.errors import SpeechkitError
from speechkit.precision import resolve_precision
from speechkit.train import distributed
from speechkit.train.checkpoint import LAST, load_training_state, restore_rng, resume_log, save_training_state

__all__ = ["TrainLoop", "warmup_cosine", "pick_device"]

log = logging.getLogger(__name__)


def warmup_cosine(step: int, lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """The learning rate at ``step``: linear warm-up from ``lr / warmup_steps`` to ``lr`` over ``warmup_steps``,
    then a cosine from ``lr`` down to ``min_lr`` at ``max_steps`` (held there after)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)


def pick_device(requested: str) -> torch.device:
    """This process' device for ``train.device``: ``auto`` = its torchrun GPU when there is one, else the CPU;
    ``cuda`` = its torchrun GPU; anything else as torch spells it. Joins torchrun's process group."""
    own = distributed.init()
    if requested == "auto" or (requested == "cuda" and own.type == "cuda"):
        return own
    return torch.device(requested)


def _get(cfg: Any, name: str, default: Any = None) -> Any:
    return getattr(cfg, name, default) if cfg is not None else default


class TrainLoop:
    """Step counting, epochs, resume, logging, checkpoints, precision and DDP for one training run.

    Args:
        out: the run folder (``checkpoint_last.pt``, ``log.jsonl``).
        settings: the config's ``train`` section; read: ``log_every``, ``valid_every``, ``save_every`` (0 = only at
            the end), ``resume``, ``seed``, ``device``, ``threads``, ``precision``, ``max_minutes`` (each optional).
        max_steps: optimisation steps of the whole run.
        config: the resolved config as plain values (kept in every checkpoint; written to ``config.resolved.json``).
        what: the solver, named in messages (``"unit-mel training"``).
        error: the exception type for a checkpoint that does not fit the model.
        seed_rank: seed ``seed + rank`` (False: ``seed`` on every process).
    """

    def __init__(self, out: str | Path, settings: Any, *, max_steps: int, config: dict | None = None,
                 what: str = "training", error: type[Exception] = SpeechkitError, seed_rank: bool = True):
        self.out = Path(out)
        self.what, self.error = what, error
        self.max_steps = int(max_steps)
        self.log_every = int(_get(settings, "log_every", 100) or 1)
        self.valid_every = int(_get(settings, "valid_every", 0) or 0)
        self.save_every = int(_get(settings, "save_every", 0) or 0)
        self.resume_enabled = bool(_get(settings, "resume", True))
        self.seed = int(_get(settings, "seed", 0))
        self.device = pick_device(str(_get(settings, "device", "cpu")))
        threads = int(_get(settings, "threads", 0) or 0)
        if threads > 0:
            torch.set_num_threads(threads)
        torch.manual_seed(self.seed + (distributed.rank() if seed_rank else 0))
        requested = str(_get(settings, "precision", "fp32"))
        if requested == "auto":
            requested = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        self.precision = resolve_precision(requested, self.device, what=f"{what} (train.precision)")
        minutes = _get(settings, "max_minutes", None)
        self.t_start = time.time()
        self.deadline = None if minutes is None else self.t_start + 60 * float(minutes)
        self.config = config
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.done = self.max_steps <= 0
        self.last: dict = {}
        self._sums: dict[str, Any] = {}
        self._count = 0
        self._t0 = time.time()
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if config is not None:
                from speechkit.utils.files import write_json

                write_json(self.out / "config.resolved.json", config, indent=2)

    # ------------------------------------------------------------------------------------------------ processes
    @property
    def rank(self) -> int:
        return distributed.rank()

    @property
    def world_size(self) -> int:
        return distributed.world_size()

    @property
    def is_main(self) -> bool:
        return distributed.is_main()

    def ddp(self, module: nn.Module, **kwargs) -> nn.Module:
        """``module`` wrapped in DistributedDataParallel under torchrun (itself otherwise)."""
        if self.world_size == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, **kwargs)

    def barrier(self) -> None:
        distributed.barrier()

    # ------------------------------------------------------------------------------------------------ precision
    def autocast(self):
        """bf16 autocast when ``train.precision`` asked for it and the kernels exist; otherwise a no-op."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    @staticmethod
    def set_lr(optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer], lr: float) -> None:
        for opt in optimizers if isinstance(optimizers, Sequence) else [optimizers]:
            for group in opt.param_groups:
                group["lr"] = lr

    # ------------------------------------------------------------------------------------------------ resume
    @property
    def checkpoint(self) -> Path:
        return self.out / LAST

    @property
    def resuming(self) -> bool:
        """True when this run continues from ``checkpoint_last.pt``."""
        return self.resume_enabled and self.checkpoint.is_file()

    def resume(self, model: nn.Module, optimizers: dict | None = None, schedulers: dict | None = None, *,
               rng: bool = True) -> dict | None:
        """Loads the last checkpoint into ``model``, ``optimizers`` and ``schedulers`` (by name) when there is one
        and ``train.resume`` is on; sets the step and epoch position, restores the RNG (``rng``) and trims
        ``log.jsonl``. Returns the checkpoint's ``extra`` values, or ``None`` when starting afresh.

        Raises:
            self.error: the checkpoint does not fit the model (another config).
        """
        if not self.resuming:
            return None
        state = load_training_state(self.checkpoint)
        try:
            model.load_state_dict(state["model"])
            for name, opt in (optimizers or {}).items():
                opt.load_state_dict(state["optimizers"][name])
            for name, sched in (schedulers or {}).items():
                sched.load_state_dict(state["schedulers"][name])
        except (RuntimeError, KeyError, ValueError) as e:
            raise self.error(f"{self.checkpoint}: does not fit this config ({type(e).__name__}: "
                             f"{str(e)[:300]})") from None
        extra = dict(state.get("extra") or {})
        self.step = int(state["step"])
        self.epoch = int(extra.get("epoch", 0))
        self.batch_in_epoch = int(extra.get("batch_in_epoch", 0))
        if rng:
            restore_rng(state)
        if self.is_main:
            resume_log(self.out / "log.jsonl", self.step)
        log.info("resumed %s at step %d (epoch %d)", self.checkpoint, self.step, self.epoch)
        self.done = self.step >= self.max_steps
        return extra

    # ------------------------------------------------------------------------------------------------ epochs
    def batches(self, epoch_batches: Callable[[int], Sequence], *, on_epoch: Callable[[int], None] | None = None,
                on_epoch_end: Callable[[int], None] | None = None) -> Iterator:
        """The batches left of the run: ``epoch_batches(epoch)`` lists an epoch's batches (the same list for the
        same epoch), walked from the resumed position until :attr:`done`. ``on_epoch(epoch)`` runs before an
        epoch's first batch is taken (e.g. ``dataset.set_epoch``), ``on_epoch_end(epoch)`` after its last.

        Raises:
            self.error: an epoch has no batch (the batch size exceeds the data).
        """
        while not self.done:
            if on_epoch is not None:
                on_epoch(self.epoch)
            batches = epoch_batches(self.epoch)
            if not batches:
                raise self.error(f"{self.what}: an epoch has no batch (optim.batch_size exceeds the training data "
                                 f"over {self.world_size} process(es))")
            for batch in batches[self.batch_in_epoch:]:
                yield batch
                if self.done:
                    return
            if on_epoch_end is not None:
                on_epoch_end(self.epoch)
            self.epoch += 1
            self.batch_in_epoch = 0

    # ------------------------------------------------------------------------------------------------ cadence
    def out_of_time(self) -> bool:
        """True once the wall-clock budget is spent on any process (all processes stop at the same step)."""
        if self.deadline is None:
            return False
        over = time.time() >= self.deadline
        if self.world_size == 1:
            return over
        return bool(distributed.all_reduce_mean(torch.tensor(float(over), device=self.device)) > 0)

    def advance(self, losses: dict[str, Any] | None = None, *, log_extra: Callable[[], dict] | None = None,
                force_log: bool = False) -> bool:
        """Counts one optimisation step: adds ``losses`` (tensors stay on the device until a log line) to the
        running means, decides :attr:`done` (``max_steps`` or the budget) and writes a log line when due
        (``log_every``, the last step, or ``force_log``): ``step``, ``epoch``, the losses averaged over the steps
        since the last line and over processes, ``sec_per_step`` and ``log_extra()``. Returns :attr:`done`."""
        self.step += 1
        self.batch_in_epoch += 1
        self._count += 1
        for k, v in (losses or {}).items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self.done = self.step >= self.max_steps or self.out_of_time()
        if self.step % self.log_every == 0 or self.done or force_log:
            means = {k: float(distributed.all_reduce_mean(torch.as_tensor(v, dtype=torch.float64, device=self.device)
                                                          / self._count)) for k, v in self._sums.items()}
            row = {"step": self.step, "epoch": self.epoch, **(log_extra() if log_extra else {}), **means,
                   "sec_per_step": (time.time() - self._t0) / self._count}
            self.last = dict(row)
            self.log(row)
            self._t0, self._sums, self._count = time.time(), {}, 0
        return self.done

    def due(self, every: int) -> bool:
        """True on every ``every``-th step (never for 0) and on the last step."""
        return self.done or (every > 0 and self.step % every == 0)

    def log(self, values: dict, *, keep: bool = True) -> None:
        """Appends ``values`` to ``log.jsonl`` and the logger (rank 0); ``keep`` merges them into :attr:`last`."""
        if keep:
            self.last.update(values)
        if not self.is_main:
            return
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(values) + "\n")
        log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))

    # ------------------------------------------------------------------------------------------------ checkpoints
    def save(self, model: nn.Module, optimizers: dict | None = None, schedulers: dict | None = None, *,
             extra: dict | None = None, export: Callable[[], None] | None = None) -> None:
        """Runs ``export`` (the released model folder), then writes ``checkpoint_last.pt`` (model, optimizers,
        schedulers, step, epoch position, ``extra``, RNG), on rank 0, the export off the training RNG; all
        processes wait for it.

        The export comes first so that a checkpoint never runs ahead of its export: killed between the two, the
        run resumes from the previous checkpoint and exports again. (The other order lost the last export when
        a kill landed after the final checkpoint: the resumed run was already done and never exported.)"""
        if self.is_main:
            if export is not None:
                with torch.random.fork_rng(devices=[]):  # building export modules must not move the training RNG
                    export()
            save_training_state(self.out, step=self.step, model=model, config=self.config or {},
                                optimizers=optimizers, schedulers=schedulers,
                                extra={"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, **(extra or {})})
        self.barrier()
