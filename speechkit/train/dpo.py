"""``speechkit train dpo``: align a unit LM with its preference pairs by DPO (slamkit's last training stage).

Read top to bottom: the config dataclasses (the one source of every default: ``speechkit/conf/dpo/config.yaml``
only names :class:`DpoConfig` and the presets), then :func:`train`.

The policy starts as ``model.init`` (a :class:`~speechkit.ulm.UnitLM` folder) and the reference is the same model,
frozen: its log-probabilities of every pair are computed once at the start (again on resume: they are a
deterministic function of the folder and the pairs). Each step draws ``optim.batch_size`` pairs (a seeded
permutation per epoch), scores chosen and rejected continuations given their prompt with the policy, and takes
an AdamW step on :func:`~speechkit.ulm.dpo.dpo_loss`; warm-up then cosine decay, gradient clipping. Validation
(``data.valid``): the DPO loss and the implicit rewards' accuracy on held-out pairs. Outputs in ``out``:
``checkpoint_last.pt`` (resumed automatically), ``model/`` (the aligned ``UnitLM``), ``log.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from speechkit.train.loop import TrainLoop, warmup_cosine
from speechkit.train.ulm import ConfigError, OptimConfig
from speechkit.utils.config import MISSING, from_values

__all__ = ["DpoConfig", "DpoDataConfig", "DpoLossConfig", "DpoLoopConfig", "DpoModelConfig", "train", "run"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ configs
@dataclass(kw_only=True)
class DpoDataConfig:
    train: str = MISSING
    """Preference pairs jsonl (``data_prep/dpo_pairs.py`` output: ``{"id", "prompt", "chosen", "rejected"}`` a
    line; required)."""
    valid: str | None = None
    """Held-out pairs for the validation DPO loss and reward accuracy (``None``: none)."""


@dataclass(kw_only=True)
class DpoModelConfig:
    init: str = MISSING
    """The unit LM to align (a ``UnitLM`` folder, e.g. ``checkpoints/default/ulm``); also the frozen reference
    (required)."""


@dataclass(kw_only=True)
class DpoLossConfig:
    beta: float = 0.1
    """Inverse temperature of the implicit reward: larger keeps the policy closer to the reference (TRL's and
    slamkit's default 0.1)."""

    def validate(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"dpo.beta must be > 0. Found {self.beta}")


@dataclass(kw_only=True)
class DpoLoopConfig:
    """The loop around the optimiser (the run folder is the config's top-level ``out``)."""

    precision: str = "fp32"
    """``fp32``, ``bf16`` (autocast; falls back to fp32 with a warning where the kernels are missing) or ``auto``."""
    valid_every: int = 50
    """Steps between validations (0: only at the end)."""
    log_every: int = 10
    """Steps between progress lines (also appended to ``out/log.jsonl``)."""
    save_every: int = 100
    """Steps between checkpoints (0: only at the end)."""
    resume: bool = True
    """Continue from ``out/checkpoint_last.pt`` when it exists."""
    seed: int = 0
    """Seed of the pair order."""
    device: str = "auto"
    """``auto`` (a GPU when there is one, else the CPU) or a torch device."""

    def validate(self) -> None:
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"train.precision must be auto, bf16 or fp32. Found {self.precision!r}")
        for name in ("valid_every", "save_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0. Found {getattr(self, name)}")
        if self.log_every < 1:
            raise ConfigError(f"train.log_every must be >= 1. Found {self.log_every}")


def _optim_defaults() -> OptimConfig:
    return OptimConfig(max_steps=200, batch_size=16, lr=5e-5, min_lr=5e-6, warmup_steps=10, weight_decay=0.0)


@dataclass(kw_only=True)
class DpoConfig:
    """The config of ``speechkit train dpo``."""

    data: DpoDataConfig = field(default_factory=DpoDataConfig)
    model: DpoModelConfig = field(default_factory=DpoModelConfig)
    dpo: DpoLossConfig = field(default_factory=DpoLossConfig)
    optim: OptimConfig = field(default_factory=_optim_defaults)
    out: str = MISSING
    """Run folder: ``checkpoint_last.pt``, ``model/`` (``UnitLM.from_pretrained``), ``log.jsonl`` (required)."""
    train: DpoLoopConfig = field(default_factory=DpoLoopConfig)

    def validate(self) -> None:
        for key in ("train", "valid"):
            path = getattr(self.data, key)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"data.{key}: {path}: no such preference-pairs file")
        if not (Path(self.model.init) / "unit_lm.json").is_file():
            raise ConfigError(f"model.init: {self.model.init}: not a unit-LM folder (no unit_lm.json)")
        if self.optim.grad_accum != 1:
            raise ConfigError(f"optim.grad_accum: DPO steps take whole batches; must be 1. Found "
                              f"{self.optim.grad_accum}")
        self.dpo.validate()
        self.optim.validate()
        self.train.validate()


# ------------------------------------------------------------------------------------------------ training
def _logps(model, vocab, pairs, which: str, batch: int = 32) -> torch.Tensor:
    from speechkit.ulm.dpo import continuation_logps

    out = []
    for i in range(0, len(pairs), batch):
        chunk = pairs[i : i + batch]
        out.append(continuation_logps(model, vocab, [p.prompt for p in chunk], [getattr(p, which) for p in chunk]))
    return torch.cat(out)


@torch.no_grad()
def _reference(model, vocab, pairs) -> tuple[torch.Tensor, torch.Tensor]:
    was = model.training
    model.eval()
    try:
        return _logps(model, vocab, pairs, "chosen").cpu(), _logps(model, vocab, pairs, "rejected").cpu()
    finally:
        model.train(was)


@torch.no_grad()
def _validate(model, vocab, pairs, ref, beta: float) -> dict:
    from speechkit.ulm.dpo import dpo_loss

    ref_c, ref_r = ref
    model.eval()
    pc, pr = _logps(model, vocab, pairs, "chosen").cpu(), _logps(model, vocab, pairs, "rejected").cpu()
    model.train()
    loss, stats = dpo_loss(pc, pr, ref_c, ref_r, beta)
    return {"valid_loss": float(loss), "valid_reward_accuracy": float(stats["reward_accuracy"]),
            "valid_reward_margin": float(stats["reward_margin"])}


def train(cfg: DpoConfig) -> dict:
    """Aligns ``cfg.model.init`` with the pairs of ``cfg.data.train`` (or resumes); returns the last logged values."""
    from speechkit.train.vocoder import epoch_indices
    from speechkit.ulm import UnitLM
    from speechkit.ulm.dpo import dpo_loss, read_pairs

    o, t = cfg.optim, cfg.train
    loop = TrainLoop(cfg.out, t, max_steps=o.max_steps, config=dataclasses.asdict(cfg), what="DPO training",
                     error=ConfigError)
    lm = UnitLM.from_pretrained(cfg.model.init, dtype=torch.float32)
    train_pairs = read_pairs(cfg.data.train, lm.num_units)
    valid_pairs = read_pairs(cfg.data.valid, lm.num_units) if cfg.data.valid else []
    if len(train_pairs) < o.batch_size:
        raise ConfigError(f"optim.batch_size={o.batch_size} exceeds the {len(train_pairs)} pairs of "
                          f"{cfg.data.train}")
    model, vocab = lm.model.to(loop.device), lm.vocab
    ref_train = _reference(model, vocab, train_pairs)
    ref_valid = _reference(model, vocab, valid_pairs) if valid_pairs else None
    if loop.is_main:
        log.info("DPO of %s on %d pairs (%d held out), beta %g, from step %d", cfg.model.init, len(train_pairs),
                 len(valid_pairs), cfg.dpo.beta, loop.step)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=o.lr, betas=(o.beta1, o.beta2),
                            weight_decay=o.weight_decay)
    loop.resume(model, {"adamw": opt})
    lm.info.update(dpo={"pairs": str(cfg.data.train), "beta": cfg.dpo.beta, "steps": o.max_steps,
                        "reference": str(cfg.model.init)})

    def validation() -> dict:
        if not valid_pairs or not loop.due(t.valid_every):
            return {}
        return _validate(model, vocab, valid_pairs, ref_valid, cfg.dpo.beta)

    if loop.step == 0 and valid_pairs:  # the starting point: policy == reference, loss log 2
        loop.log({"step": 0, **_validate(model, vocab, valid_pairs, ref_valid, cfg.dpo.beta)}, keep=False)
    for indices in loop.batches(lambda epoch: epoch_indices(len(train_pairs), o.batch_size, epoch, t.seed)):
        loop.set_lr(opt, warmup_cosine(loop.step, o.lr, o.min_lr, o.warmup_steps, o.max_steps))
        batch = [train_pairs[i] for i in indices]
        idx = torch.tensor(indices)
        with loop.autocast():
            pc = _logps(model, vocab, batch, "chosen", batch=len(batch))
            pr = _logps(model, vocab, batch, "rejected", batch=len(batch))
        loss, stats = dpo_loss(pc.float(), pr.float(), ref_train[0][idx].to(pc.device),
                               ref_train[1][idx].to(pc.device), cfg.dpo.beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip or float("inf"))
        opt.step()
        loop.advance({"loss": loss.detach(), **stats, "grad_norm": gnorm.detach()}, log_extra=validation)
        if loop.due(t.save_every):
            loop.save(model, {"adamw": opt}, export=lambda: lm.save_pretrained(loop.out / "model"))
    return loop.last


def run(cfg) -> int:
    """Entry point of ``speechkit train dpo`` (``cfg``: the composed Hydra config); resumes from
    ``<out>/checkpoint_last.pt``."""
    last = train(from_values(DpoConfig, cfg, error=ConfigError, what="train dpo"))
    print(json.dumps(last))
    return 0
