"""``speechkit train ulm``: train a unit LM (TWIST warm start or cold start) on units jsonl.

Read top to bottom: the config dataclasses (mirrored by ``speechkit/conf/ulm/config.yaml``), the learning-rate
schedule, the training loop shared with the text-LM solver (:func:`train_causal_lm`), and :func:`run`.

The loop: packed blocks (:class:`~speechkit.ulm.data.PackedBlocks`), AdamW (weight decay on matrices only, not
on norms and biases), linear warm-up then cosine decay to ``min_lr``, gradient clipping, bf16 autocast
where the hardware supports it, validation loss every ``valid_every`` steps, ``checkpoint_last.pt`` (model,
optimizer, step, RNG) every ``save_every`` steps and at the end, plus the released model folder ``model/``.
Under ``torchrun`` every process runs the same command; gradients are averaged by DDP (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
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
from speechkit.train.checkpoint import LAST, load_training_state, resume_log, save_training_state, unwrap
from speechkit.utils.files import write_json

__all__ = ["ConfigError", "OptimConfig", "LoopConfig", "UlmDataConfig", "UlmModelConfig", "UlmConfig", "lr_at",
           "train_causal_lm", "config_from_dict", "load_config", "run"]

log = logging.getLogger(__name__)


class ConfigError(SpeechkitError, ValueError):
    """A training config value breaks a rule; the message names the key and the value."""


# ------------------------------------------------------------------------------------------------ configs
@dataclass(kw_only=True)
class OptimConfig:
    """Optimisation (slamkit's TWIST defaults, scaled down for the debug preset).

    Attributes:
        max_steps: optimisation steps.
        batch_size: blocks per optimisation step, over all processes and accumulation steps (the global batch;
            it must divide by ``world_size * grad_accum``).
        grad_accum: micro-steps per optimisation step.
        lr: peak learning rate after warm-up.
        min_lr: learning rate at the end of the cosine decay.
        warmup_steps: linear warm-up from 0 to ``lr``.
        weight_decay: AdamW decoupled weight decay for matrices (rank >= 2 parameters).
        beta1, beta2: AdamW betas.
        grad_clip: max global gradient norm (0 = no clipping).
    """

    max_steps: int = 10_000
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr: float = 5e-5
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 0.5

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
    """The training loop around the optimiser.

    Attributes:
        out_dir: run folder (``checkpoint_last.pt``, ``model/``, ``log.jsonl``): the config's top-level ``out``.
        block_size: tokens per training sequence.
        precision: ``"auto"`` (bf16 autocast on GPUs that support it, else fp32), ``"bf16"`` or ``"fp32"``.
        valid_every: steps between validation runs (0 = only at the end).
        eval_blocks: validation blocks (of ``block_size`` tokens) scored each time.
        log_every: steps between progress lines.
        save_every: steps between checkpoints (0 = only at the end).
        resume: continue from ``out_dir/checkpoint_last.pt`` when it exists.
        seed: seed of the data order (and of dropout).
        device: ``"auto"`` (this torchrun process' GPU, else CPU) or a torch device string.
    """

    out_dir: str = ""
    block_size: int = 512
    precision: str = "auto"
    valid_every: int = 500
    eval_blocks: int = 64
    log_every: int = 10
    save_every: int = 1000
    resume: bool = True
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        if self.block_size < 2:
            raise ConfigError(f"train.block_size must be >= 2. Found {self.block_size}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"train.precision must be auto, bf16 or fp32. Found {self.precision!r}")
        for name in ("valid_every", "save_every", "eval_blocks"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0. Found {getattr(self, name)}")
        if self.log_every < 1:
            raise ConfigError(f"train.log_every must be >= 1. Found {self.log_every}")


@dataclass(kw_only=True)
class UlmDataConfig:
    """Attributes:
        train: units jsonl for training (``speechkit encode`` / ``speechkit sequences`` output).
        valid: units jsonl for the validation loss (``None``: no validation).
        num_units: unit vocabulary size K of the tokenizer that made the units.
        deduplicate: merge consecutive repeated units on reading.
    """

    train: str
    valid: str | None = None
    num_units: int
    deduplicate: bool = True


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
    """Attributes:
        init: ``"warm"`` (TWIST: the text LM's weights) or ``"cold"`` (random weights).
        text_lm: HF causal LM folder or hub name (warm: required; cold: its architecture, or ``None`` for
            ``size``'s Llama).
        embedding_init: new embedding rows for a warm start (``"text_stats"`` or ``"text_rows"``).
        size: the Llama of a cold start without a text LM.
    """

    init: str = "warm"
    text_lm: str | None = None
    embedding_init: str = "text_stats"
    size: UlmSizeConfig = field(default_factory=UlmSizeConfig)

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
    out: str
    data: UlmDataConfig
    model: UlmModelConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: LoopConfig

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


def config_from_dict(cls, d: dict, where: str = ""):
    """Builds a (nested) config dataclass from plain values, refusing unknown keys and missing required ones.

    A field whose annotation is itself a dataclass is built recursively from its sub-mapping.
    """
    import typing

    if not isinstance(d, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'}: expected a mapping, found {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {}
    for name, value in d.items():
        sub = hints.get(name)
        kwargs[name] = config_from_dict(sub, value, f"{where}{name}.") if dataclasses.is_dataclass(sub) else value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None


def load_config(cls, cfg):
    """A Hydra/OmegaConf config as a validated ``cls`` dataclass (``preset`` dropped; ``???`` left = error)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    try:
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as e:
        raise ConfigError(f"missing required value: {e.full_key} (set it on the command line: "
                          f"{e.full_key}=...)") from None
    except OmegaConfBaseException as e:  # e.g. an interpolation ${...} to a key that does not exist
        raise ConfigError(f"bad config value: {str(e).splitlines()[0]}") from None
    plain.pop("preset", None)
    conf = config_from_dict(cls, plain)
    conf.train.out_dir = conf.out  # the run folder is the top-level ``out``, as in every trainer's config
    conf.validate()
    return conf


# ------------------------------------------------------------------------------------------------ schedule
def lr_at(step: int, optim: OptimConfig) -> float:
    """Linear warm-up to ``lr`` over ``warmup_steps``, then cosine decay to ``min_lr`` at ``max_steps``."""
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    span = max(1, optim.max_steps - optim.warmup_steps)
    progress = min(1.0, (step - optim.warmup_steps) / span)
    return optim.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (optim.lr - optim.min_lr)


# ------------------------------------------------------------------------------------------------ loop
def _autocast(precision: str, device: torch.device):
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    use_bf16 = resolve_precision(precision, device, what="LM training (train.precision)") == "bf16"
    return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()


def _lm_loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=x, use_cache=False).logits                    # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())


@torch.no_grad()
def evaluate(model, blocks, loop: LoopConfig, micro_batch: int, device) -> float:
    """Mean token cross-entropy (nats) over the first ``loop.eval_blocks`` validation blocks, all processes."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64)
    for x, y in blocks.eval_batches(loop.eval_blocks, micro_batch, distributed.rank(), distributed.world_size()):
        with _autocast(loop.precision, device):
            loss = _lm_loss(model, x.to(device), y.to(device))
        total += torch.tensor([float(loss) * y.numel(), y.numel()], dtype=torch.float64)
    model.train()
    total = distributed.all_reduce_mean(total.to(device)).cpu()
    return float(total[0] / total[1]) if total[1] > 0 else float("nan")


def _param_groups(model, weight_decay: float) -> list[dict]:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_causal_lm(model, train_blocks, valid_blocks, *, optim: OptimConfig, loop: LoopConfig,
                    save_model: Callable[[Path], None], config: dict) -> dict:
    """Trains an HF causal LM on packed blocks; shared by the unit-LM and text-LM solvers.

    Args:
        model: transformers causal LM (any device; moved to this process' device).
        train_blocks: :class:`PackedBlocks` of the training stream.
        valid_blocks: :class:`PackedBlocks` for the validation loss, or ``None``.
        optim: optimiser settings.
        loop: loop settings.
        save_model: writes the released model folder given its path (main process only).
        config: the run's resolved config (kept in checkpoints).

    Returns:
        ``{"step", "train_loss", "valid_loss", "best_valid_loss"}`` at the end of training. ``out/model`` is the
        last model, ``out/best`` the one with the lowest validation loss.
    """
    device = distributed.init()  # joins the torchrun process group when there is one
    if loop.device != "auto":
        device = torch.device(loop.device)
    rank, world = distributed.rank(), distributed.world_size()
    if optim.batch_size % (world * optim.grad_accum):
        raise ConfigError(f"optim.batch_size={optim.batch_size} must divide by world_size ({world}) x "
                          f"optim.grad_accum ({optim.grad_accum})")
    micro = optim.batch_size // (world * optim.grad_accum)
    out = Path(loop.out_dir)
    if distributed.is_main():
        out.mkdir(parents=True, exist_ok=True)

    model.to(device).train()
    opt = torch.optim.AdamW(_param_groups(model, optim.weight_decay), lr=optim.lr,
                            betas=(optim.beta1, optim.beta2))
    step, best = 0, float("inf")
    if loop.resume and (out / LAST).is_file():
        state = load_training_state(out)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizers"]["adamw"])
        torch.set_rng_state(state["rng"]["torch"])
        step, best = state["step"], state["extra"].get("best_valid_loss", best)
        if distributed.is_main():
            resume_log(out / "log.jsonl", step)
        log.info("resumed from %s at step %d", out / LAST, step)
    ddp = model
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    metrics = {"step": step, "train_loss": float("nan"), "valid_loss": float("nan")}
    history = out / "log.jsonl"

    def record(entry: dict) -> None:
        if distributed.is_main():
            with open(history, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def checkpoint() -> None:
        if distributed.is_main():
            save_training_state(out, step=step, model=model, config=config, optimizers={"adamw": opt},
                                extra={"best_valid_loss": best})
            save_model(out / "model")
        distributed.barrier()

    if distributed.is_main():
        log.info("training on %d process(es) (%s), micro-batch %d x %d accumulation step(s), from step %d", world,
                 device, micro, optim.grad_accum, step)
    record({"step": step, "world_size": world, "micro_batch": micro, "device": str(device)})
    t0, tokens = time.time(), 0
    while step < optim.max_steps:
        # seeded by step: dropout differs per process and per step, and a resumed run draws what the uninterrupted
        # one would have drawn (the same weights, bit for bit)
        torch.manual_seed(loop.seed * 7919 + step + rank)
        lr = lr_at(step, optim)
        for group in opt.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for m in range(optim.grad_accum):
            x, y = train_blocks.train_batch(step, batch_size=optim.batch_size, micro_step=m, micro_batch=micro,
                                            rank=rank, world_size=world, seed=loop.seed)
            x, y = x.to(device), y.to(device)
            sync = world == 1 or m == optim.grad_accum - 1
            with (nullcontext() if sync else ddp.no_sync()), _autocast(loop.precision, device):
                loss = _lm_loss(ddp, x, y) / optim.grad_accum
                loss.backward()
            loss_sum += loss.item()
            tokens += y.numel() * world
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip or float("inf"))
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        train_loss = float(distributed.all_reduce_mean(torch.tensor(loss_sum, device=device)))
        metrics.update(step=step, train_loss=train_loss)
        last = step == optim.max_steps
        if (step % loop.log_every == 0 or last) and distributed.is_main():
            rate = tokens / max(time.time() - t0, 1e-9)
            log.info("step %d/%d  loss %.4f  lr %.2e  grad_norm %.3f  %.0f tok/s", step, optim.max_steps,
                     train_loss, lr, float(grad_norm), rate)
            record({"step": step, "train_loss": train_loss, "lr": lr, "grad_norm": float(grad_norm),
                    "tokens_per_s": rate})
        if valid_blocks is not None and ((loop.valid_every and step % loop.valid_every == 0) or last):
            # the plain model: a rank with no validation block must not leave a DDP forward (and its buffer
            # broadcast) waiting on the others
            valid_loss = evaluate(unwrap(ddp), valid_blocks, loop, micro, device)
            if valid_loss < best:  # the best model so far, beside the last one (fairseq's checkpoint_best)
                best = valid_loss
                if distributed.is_main():
                    save_model(out / "best")
                    write_json(out / "best" / "valid_loss.json", {"step": step, "valid_loss": best})
                distributed.barrier()
            metrics.update(valid_loss=valid_loss, best_valid_loss=best)
            if distributed.is_main():
                log.info("step %d  valid_loss %.4f  (best %.4f)", step, valid_loss, best)
            record({"step": step, "valid_loss": valid_loss})
        if (loop.save_every and step % loop.save_every == 0) or last:
            checkpoint()
    if step == 0 or not (out / "model").is_dir():  # nothing to train (already done) but no model folder yet
        checkpoint()
    return metrics


def run(cfg) -> int:
    """Entry point of ``speechkit train ulm``: builds the unit LM, packs the data, trains."""
    from speechkit.ulm import UnitLM
    from speechkit.ulm.data import PackedBlocks, read_unit_sequences

    conf = load_config(UlmConfig, cfg)
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
    metrics = train_causal_lm(lm.model, train_blocks, valid_blocks, optim=conf.optim, loop=conf.train,
                              save_model=lm.save_pretrained, config=dataclasses.asdict(conf))
    if distributed.is_main():
        print(json.dumps(metrics))
    distributed.cleanup()
    return 0
