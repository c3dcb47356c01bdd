"""``speechkit train ulm``: train a unit LM (TWIST warm start or cold start) on units jsonl.

Read top to bottom: the config dataclasses (the one source of every default: ``speechkit/conf/ulm/config.yaml``
only names :class:`UlmConfig` and the presets; ``speechkit train ulm --print-config`` shows the composed values), the
learning-rate schedule, the training loop shared with the text-LM solver (:func:`train_causal_lm`), and :func:`run`.

The loop: packed blocks (:class:`~speechkit.ulm.data.PackedBlocks`), AdamW (weight decay on matrices only, not
on norms and biases), linear warm-up then cosine decay to ``min_lr``, gradient clipping, bf16 autocast
where the hardware supports it, validation loss every ``valid_every`` steps, ``checkpoint_last.pt`` (model,
optimizer, step, RNG) every ``save_every`` steps and at the end, plus the released model folder ``model/``.
Under ``torchrun`` every process runs the same command; gradients are averaged by DDP (gloo on CPU, NCCL on GPU).
Device, resume, precision, logging and checkpoints are :class:`~speechkit.train.loop.TrainLoop`'s; the per-step
seed, gradient accumulation and the best-validation model (``best/``) are this loop's own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from speechkit.errors import SpeechkitError
from speechkit.precision import resolve_precision
from speechkit.train import distributed
from speechkit.train.loop import TrainLoop, warmup_cosine
from speechkit.utils.config import MISSING, from_values
from speechkit.utils.files import write_json

__all__ = ["ConfigError", "OptimConfig", "LoopConfig", "UlmDataConfig", "UlmModelConfig", "UlmConfig", "lr_at",
           "train_causal_lm", "load_config", "run"]

log = logging.getLogger(__name__)


class ConfigError(SpeechkitError, ValueError):
    """A training config value breaks a rule; the message names the key and the value."""


# ------------------------------------------------------------------------------------------------ configs
@dataclass(kw_only=True)
class OptimConfig:
    """Optimisation (slamkit's TWIST defaults, scaled down for the debug preset)."""

    max_steps: int = 10_000
    """Optimisation steps."""
    batch_size: int = 32
    """Global batch in blocks: over all processes and accumulation steps (it must divide by
    ``world_size * grad_accum``)."""
    grad_accum: int = 1
    """Micro-steps per optimisation step."""
    lr: float = 1e-3
    """Peak learning rate after warm-up (slamkit's TWIST default)."""
    min_lr: float = 5e-5
    """Learning rate at the end of the cosine decay."""
    warmup_steps: int = 100
    """Linear warm-up steps from 0 to ``lr``."""
    weight_decay: float = 0.1
    """AdamW decoupled weight decay on matrices (rank >= 2 parameters; not on norms / biases)."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.95
    """AdamW beta2."""
    grad_clip: float = 0.5
    """Max global gradient norm (0 disables clipping)."""

    def validate(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ConfigError(f"optim.{name} must be >= 1. Found {getattr(self, name)}")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"optim.min_lr must be in [0, optim.lr={self.lr}]. Found {self.min_lr}")
        if self.warmup_steps < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ConfigError("optim.warmup_steps, optim.grad_clip and optim.weight_decay must be >= 0")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError(f"optim.beta1/beta2 must be in [0, 1). Found {self.beta1}, {self.beta2}")


@dataclass(kw_only=True)
class LoopConfig:
    """The training loop around the optimiser (the run folder is the config's top-level ``out``)."""

    block_size: int = 512
    """Tokens per training sequence (utterances / documents are packed back to back)."""
    precision: str = "auto"
    """``auto`` (bf16 autocast on GPUs that support it, else fp32), ``bf16`` or ``fp32``."""
    valid_every: int = 500
    """Steps between validation losses (0: only at the end)."""
    eval_blocks: int = 64
    """Validation blocks (of ``block_size`` tokens) scored each time."""
    log_every: int = 10
    """Steps between progress lines (also appended to ``out/log.jsonl``)."""
    save_every: int = 1000
    """Steps between checkpoints (0: only at the end)."""
    keep_every: int = 0
    """Also export ``out/model_<step>`` (six digits) every this many steps (0: only ``out/model``), as the Vocos
    trainer does: the models of a learning curve, for probes such as StoryCloze at several token counts."""
    resume: bool = True
    """Continue from ``out/checkpoint_last.pt`` when it exists."""
    seed: int = 0
    """Seed of the data order, dropout and new embedding rows / initialisation."""
    device: str = "auto"
    """``auto`` (this process' GPU under torchrun, LOCAL_RANK, else the CPU) or a torch device (``cpu``,
    ``cuda:1``)."""

    def validate(self) -> None:
        if self.block_size < 2:
            raise ConfigError(f"train.block_size must be >= 2. Found {self.block_size}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"train.precision must be auto, bf16 or fp32. Found {self.precision!r}")
        for name in ("valid_every", "save_every", "eval_blocks", "keep_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0. Found {getattr(self, name)}")
        if self.log_every < 1:
            raise ConfigError(f"train.log_every must be >= 1. Found {self.log_every}")


@dataclass(kw_only=True)
class UlmDataConfig:
    train: str = MISSING
    """Units jsonl to train on (``speechkit encode`` / ``speechkit sequences`` output: ``{"id", "units", ...}`` a
    line; required)."""
    valid: str | None = None
    """Units jsonl for the validation loss (``None``: no validation)."""
    num_units: int = MISSING
    """Unit vocabulary size K of the tokenizer that made the units (required)."""
    deduplicate: bool = True
    """Merge consecutive repeated units when reading."""


@dataclass(kw_only=True)
class UlmSizeConfig:
    """The Llama architecture of a cold start without a text LM (``model.text_lm: null``)."""

    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 2048

    def llama_config(self):
        from transformers import LlamaConfig

        return LlamaConfig(vocab_size=8, hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
                           num_attention_heads=self.num_attention_heads, intermediate_size=self.intermediate_size,
                           max_position_embeddings=self.max_position_embeddings, tie_word_embeddings=True)


@dataclass(kw_only=True)
class UlmModelConfig:
    init: str = "warm"
    """``warm``: TWIST, the text LM's transformer weights; ``cold``: the same architecture, random weights."""
    text_lm: str | None = None
    """Hugging Face causal LM folder or hub name (OPT, Llama, Qwen2, ...): ``warm`` needs one; ``cold`` takes its
    architecture, or with ``None`` the Llama of ``size``."""
    embedding_init: str = "text_stats"
    """New unit embeddings of a warm start: ``text_stats`` (N(mean, std) of the text rows) or ``text_rows``."""
    size: UlmSizeConfig = field(default_factory=UlmSizeConfig)
    """The cold start's Llama when ``text_lm`` is ``None``."""

    def validate(self) -> None:
        if self.init not in ("warm", "cold"):
            raise ConfigError(f"model.init must be 'warm' or 'cold'. Found {self.init!r}")
        if self.init == "warm" and not self.text_lm:
            raise ConfigError("model.init=warm needs model.text_lm (a Hugging Face causal LM folder or name); "
                              "model.init=cold trains without one")
        if self.size.hidden_size % self.size.num_attention_heads:
            raise ConfigError(f"model.size.hidden_size ({self.size.hidden_size}) must be a multiple of "
                              f"model.size.num_attention_heads ({self.size.num_attention_heads})")


@dataclass(kw_only=True)
class UlmConfig:
    """The config of ``speechkit train ulm``."""

    data: UlmDataConfig = field(default_factory=UlmDataConfig)
    model: UlmModelConfig = field(default_factory=UlmModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    out: str = MISSING
    """Run folder: ``checkpoint_last.pt``, ``model/`` (``UnitLM.from_pretrained``), ``best/``, ``log.jsonl``
    (required)."""
    train: LoopConfig = field(default_factory=LoopConfig)

    def validate(self) -> None:
        if self.data.num_units < 1:
            raise ConfigError(f"data.num_units must be >= 1. Found {self.data.num_units}")
        for key in ("train", "valid"):
            path = getattr(self.data, key)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"data.{key}: {path}: no such units file")
        self.model.validate()
        self.optim.validate()
        self.train.validate()


def load_config(cls, cfg):
    """A composed Hydra config (or plain values) as a validated ``cls`` dataclass; see
    :func:`speechkit.utils.config.from_values`."""
    return from_values(cls, cfg, error=ConfigError, what="training config")


# ------------------------------------------------------------------------------------------------ schedule
def lr_at(step: int, optim: OptimConfig) -> float:
    """Linear warm-up to ``lr`` over ``warmup_steps``, then cosine decay to ``min_lr`` at ``max_steps``."""
    return warmup_cosine(step, optim.lr, optim.min_lr, optim.warmup_steps, optim.max_steps)


# ------------------------------------------------------------------------------------------------ loop
def _autocast(precision: str, device: torch.device):
    """The autocast of ``train.precision`` on ``device`` (what :meth:`TrainLoop.autocast` does), for a model used
    outside a training run."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    use_bf16 = resolve_precision(precision, device, what="LM training (train.precision)") == "bf16"
    return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()


def _lm_loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=x, use_cache=False).logits                    # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())


@torch.no_grad()
def evaluate(model, blocks, eval_blocks: int, micro_batch: int, core: TrainLoop) -> float:
    """Mean token cross-entropy (nats) over the first ``eval_blocks`` validation blocks, all processes."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64)
    for x, y in blocks.eval_batches(eval_blocks, micro_batch, core.rank, core.world_size):
        with core.autocast():
            loss = _lm_loss(model, x.to(core.device), y.to(core.device))
        total += torch.tensor([float(loss) * y.numel(), y.numel()], dtype=torch.float64)
    model.train()
    total = distributed.all_reduce_mean(total.to(core.device)).cpu()
    return float(total[0] / total[1]) if total[1] > 0 else float("nan")


def _param_groups(model, weight_decay: float) -> list[dict]:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_causal_lm(model, train_blocks, valid_blocks, *, out: str | Path, optim: OptimConfig, loop: LoopConfig,
                    save_model: Callable[[Path], None], config: dict) -> dict:
    """Trains an HF causal LM on packed blocks; shared by the unit-LM and text-LM solvers.

    Args:
        model: transformers causal LM (any device; moved to this process' device).
        train_blocks: :class:`PackedBlocks` of the training stream.
        valid_blocks: :class:`PackedBlocks` for the validation loss, or ``None``.
        out: the run folder (``checkpoint_last.pt``, ``model/``, ``best/``, ``log.jsonl``).
        optim: optimiser settings.
        loop: loop settings.
        save_model: writes the released model folder given its path (main process only).
        config: the run's resolved config (kept in checkpoints).

    Returns:
        ``{"step", "train_loss", "valid_loss", "best_valid_loss"}`` at the end of training. ``out/model`` is the
        last model, ``out/best`` the one with the lowest validation loss.
    """
    core = TrainLoop(out, loop, max_steps=optim.max_steps, config=config, what="LM training", error=ConfigError)
    device, rank, world = core.device, core.rank, core.world_size
    if optim.batch_size % (world * optim.grad_accum):
        raise ConfigError(f"optim.batch_size={optim.batch_size} must divide by world_size ({world}) x "
                          f"optim.grad_accum ({optim.grad_accum})")
    micro = optim.batch_size // (world * optim.grad_accum)

    model.to(device).train()
    opt = torch.optim.AdamW(_param_groups(model, optim.weight_decay), lr=optim.lr,
                            betas=(optim.beta1, optim.beta2))
    state = core.resume(model, {"adamw": opt})
    best = float((state or {}).get("best_valid_loss", float("inf")))
    ddp = core.ddp(model)
    metrics = {"step": core.step, "train_loss": float("nan"), "valid_loss": float("nan")}

    def checkpoint() -> None:
        core.save(model, {"adamw": opt}, extra={"best_valid_loss": best}, export=lambda: save_model(core.out / "model"))

    if core.is_main:
        log.info("training on %d process(es) (%s), micro-batch %d x %d accumulation step(s), from step %d", world,
                 device, micro, optim.grad_accum, core.step)
    core.log({"step": core.step, "world_size": world, "micro_batch": micro, "device": str(device)}, keep=False)
    t0, tokens = time.time(), 0
    while not core.done:
        # seeded by step: dropout differs per process and per step, and a resumed run draws what the uninterrupted
        # one would have drawn (the same weights, bit for bit)
        torch.manual_seed(core.seed * 7919 + core.step + rank)
        lr = lr_at(core.step, optim)
        core.set_lr(opt, lr)
        loss_sum = 0.0
        for m in range(optim.grad_accum):  # accumulation: DDP syncs gradients on the last micro-step only
            x, y = train_blocks.train_batch(core.step, batch_size=optim.batch_size, micro_step=m, micro_batch=micro,
                                            rank=rank, world_size=world, seed=core.seed)
            x, y = x.to(device), y.to(device)
            sync = world == 1 or m == optim.grad_accum - 1
            with (nullcontext() if sync else ddp.no_sync()), core.autocast():
                loss = _lm_loss(ddp, x, y) / optim.grad_accum
                loss.backward()
            loss_sum += loss.item()
            tokens += y.numel() * world
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip or float("inf"))
        opt.step()
        opt.zero_grad(set_to_none=True)
        core.step += 1
        core.done = core.step >= optim.max_steps
        train_loss = float(distributed.all_reduce_mean(torch.tensor(loss_sum, device=device)))
        metrics.update(step=core.step, train_loss=train_loss)
        if core.due(core.log_every):  # this step's loss (not a mean since the last line, as TrainLoop.advance logs)
            core.log({"step": core.step, "train_loss": train_loss, "lr": lr, "grad_norm": float(grad_norm),
                      "tokens_per_s": tokens / max(time.time() - t0, 1e-9)})
        if valid_blocks is not None and core.due(core.valid_every):
            # the plain model: a rank with no validation block must not leave a DDP forward (and its buffer
            # broadcast) waiting on the others
            valid_loss = evaluate(model, valid_blocks, loop.eval_blocks, micro, core)
            if valid_loss < best:  # the best model so far, beside the last one (fairseq's checkpoint_best)
                best = valid_loss
                if core.is_main:
                    save_model(core.out / "best")
                    write_json(core.out / "best" / "valid_loss.json", {"step": core.step, "valid_loss": best})
                core.barrier()
            metrics.update(valid_loss=valid_loss, best_valid_loss=best)
            core.log({"step": core.step, "valid_loss": valid_loss})
        if loop.keep_every and core.step % loop.keep_every == 0 and core.is_main:
            save_model(core.out / f"model_{core.step:06d}")  # re-exported, identical, if a resume re-runs it
        if core.due(core.save_every):
            checkpoint()
    if core.step == 0 or not (core.out / "model").is_dir():  # nothing to train (already done) but no model folder
        checkpoint()
    return metrics


def run(cfg) -> int:
    """Entry point of ``speechkit train ulm``: builds the unit LM, packs the data, trains."""
    from speechkit.ulm import UnitLM
    from speechkit.ulm.data import PackedBlocks, read_unit_sequences

    conf = from_values(UlmConfig, cfg, error=ConfigError, what="unit-LM training config")
    if conf.model.init == "warm":
        lm = UnitLM.warm_start(conf.model.text_lm, conf.data.num_units, embedding_init=conf.model.embedding_init,
                               seed=conf.train.seed)
    else:
        arch = conf.model.text_lm if conf.model.text_lm else conf.model.size.llama_config()
        lm = UnitLM.cold_start(arch, conf.data.num_units, seed=conf.train.seed)
    context = lm.max_positions
    if context is not None and conf.train.block_size > context:
        raise ConfigError(f"train.block_size={conf.train.block_size} exceeds the model's context ({context})")

    def blocks(path: str) -> PackedBlocks:
        seqs = read_unit_sequences(path, deduplicate=conf.data.deduplicate)
        return PackedBlocks.from_sequences((lm.token_ids(s) for s in seqs), conf.train.block_size, name=path)

    train_blocks = blocks(conf.data.train)
    valid_blocks = blocks(conf.data.valid) if conf.data.valid else None
    n_params = sum(p.numel() for p in lm.model.parameters())
    if distributed.is_main():
        log.info("%s init: %s; %.2fM parameters; %d training tokens", conf.model.init, lm, n_params / 1e6,
                 train_blocks.num_tokens)
    lm.info.update(train_tokens=train_blocks.num_tokens, max_steps=conf.optim.max_steps)
    metrics = train_causal_lm(lm.model, train_blocks, valid_blocks, out=conf.out, optim=conf.optim, loop=conf.train,
                              save_model=lm.save_pretrained, config=dataclasses.asdict(conf))
    if distributed.is_main():
        print(json.dumps(metrics))
    distributed.cleanup()
    return 0
