"""``speechkit train unit_mel``: a unit-to-mel decoder (units + speaker + style -> HiFi-GAN log-mel).

Training: random segments of the units jsonl's utterances (the same data as ``speechkit train vocoder``: speakers
and styles from the file names, Expresso split lists), L1 between the predicted and the true log-mel of the
segment's audio, plus the duration predictor's MSE on log(d + 1); AdamW, linear warm-up then cosine decay, gradient
clipping. Validation: mel L1 of whole utterances. A run folder holds ``checkpoint_last.pt`` (resumed
automatically), ``log.jsonl`` and ``model/`` (a :class:`~speechkit.vocoders.UnitMelVocoder` folder with the mean
speaker embedding of each speaker's training speech).

Under ``torchrun --nproc_per_node=N`` each process takes ``optim.batch_size / N`` of every batch (DDP averages the
gradients; the global batch stays the same) and rank 0 alone logs, validates and saves.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from speechkit.precision import resolve_precision
from speechkit.train import distributed
from speechkit.train.checkpoint import LAST, load_training_state, restore_rng, resume_log, save_training_state
from speechkit.train.vocoder import epoch_indices, speaker_table_of, unit_audio_datasets
from speechkit.utils.files import write_json
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan.data import collate
from speechkit.vocoders.hifigan.losses import MelSpectrogram
from speechkit.vocoders.unitmel.config import UnitMelConfig
from speechkit.vocoders.unitmel.train_config import UnitMelTrainConfig
from speechkit.vocoders.unitmel.vocoder import UnitMelVocoder, build_unit_mel

__all__ = ["train", "run", "mel_transform"]

log = logging.getLogger(__name__)


def mel_transform(cfg: UnitMelConfig) -> MelSpectrogram:
    """The true log-mel the decoder learns (HiFi-GAN's, with ``cfg.mel``)."""
    m = cfg.mel
    return MelSpectrogram(m.sample_rate, m.n_fft, m.num_mels, m.hop_length, m.win_length, m.fmin, m.fmax)


def _lr(step: int, o) -> float:
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    progress = min(1.0, (step - o.warmup_steps) / max(1, o.max_steps - o.warmup_steps))
    return o.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (o.lr - o.min_lr)


def _decode(model, batch: dict, mel_frames: int) -> torch.Tensor:
    """The model's log-mel for a collated batch (speaker / style ids where the model has tables)."""
    return model(batch["units"], batch["speaker"] if model.speaker_embedding is not None else None,
                 batch["style"] if model.style_embedding is not None else None, mel_frames)


class _Step(nn.Module):
    """The decoder's log-mel and its duration loss in one ``forward`` (so DDP sees every parameter used)."""

    def __init__(self, model, duration: bool):
        super().__init__()
        self.model, self.duration = model, duration

    def forward(self, batch: dict, mel_frames: int):
        pred = _decode(self.model, batch, mel_frames)
        if not self.duration:
            return pred, None
        with torch.autocast(pred.device.type, enabled=False):  # the duration loss in fp32 whatever the precision
            return pred, self.model.duration_loss(batch["units"])


@torch.no_grad()
def validate(model, valid_set, mel: MelSpectrogram, device) -> dict:
    """Mel L1 of whole validation utterances."""
    if valid_set is None or len(valid_set) == 0:
        return {}
    model.eval()
    total = 0.0
    for i in range(len(valid_set)):
        b = {k: v.to(device) for k, v in collate([valid_set[i]]).items()}
        target = mel(b["audio"][:, 0])
        total += F.l1_loss(_decode(model, b, target.shape[-1]), target).item()
    model.train()
    return {"valid_mel_l1": total / len(valid_set)}


def warm_start(model: nn.Module, folder: str, speakers, styles, unit_map: str | None = None) -> int:
    """Copies the tensors of the decoder in ``folder`` into ``model`` where name and shape match; with
    ``unit_map`` (JSON list: new unit -> old unit) the unit embedding rows are taken through the map. Returns how
    many tensors were copied.

    Raises:
        VocoderError: another speaker or style list, a map of the wrong size, or nothing fits.
    """
    from speechkit.vocoders import load_unit_vocoder

    src = load_unit_vocoder(folder, mel_vocoder="griffinlim")
    if list(src.speakers or []) != list(speakers or []) or list(src.styles or []) != list(styles or []):
        raise VocoderError(f"train.init={folder}: speakers {src.speakers} / styles {src.styles} differ from this "
                           f"corpus's {speakers} / {styles}")
    theirs, ours = src.model.state_dict(), model.state_dict()
    if unit_map is not None:
        old_ids = torch.tensor(json.loads(Path(unit_map).read_text()), dtype=torch.long)
        table = theirs["unit_embedding.weight"]
        n_new = ours["unit_embedding.weight"].shape[0]
        if old_ids.shape != (n_new,) or int(old_ids.min()) < 0 or int(old_ids.max()) >= table.shape[0]:
            raise VocoderError(f"train.init_unit_map={unit_map}: needs {n_new} old unit ids in [0, {table.shape[0]})")
        theirs = {**theirs, "unit_embedding.weight": table[old_ids]}
    fit = {k: v for k, v in theirs.items() if k in ours and ours[k].shape == v.shape}
    if not fit:
        raise VocoderError(f"train.init={folder}: no tensor of that decoder fits this model")
    model.load_state_dict({**ours, **{k: v.to(ours[k].device) for k, v in fit.items()}})
    return len(fit)


def train(cfg: UnitMelTrainConfig) -> dict:
    """Trains (or resumes) a unit-to-mel decoder; returns the last logged values."""
    own = distributed.init()  # joins torchrun's process group (gloo on CPU, NCCL on GPUs) when WORLD_SIZE > 1
    device = own if cfg.train.device == "auto" or (cfg.train.device == "cuda" and own.type == "cuda") \
        else torch.device(cfg.train.device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed + distributed.rank())
    out = Path(cfg.out)
    m = cfg.model
    train_set, valid_set, speakers, styles, _ = unit_audio_datasets(cfg.data, sample_rate=m.sample_rate,
                                                                      hop=m.code_hop_size, seed=cfg.train.seed)
    mcfg = UnitMelConfig(num_units=m.num_units, num_speakers=len(speakers or []), num_styles=len(styles or []),
                         channels=m.channels, kernel_size=m.kernel_size, dilations=tuple(m.dilations),
                         post_layers=m.post_layers, dropout=m.dropout, code_hop_size=m.code_hop_size,
                         duration_predictor=m.duration_predictor, mel=m.mel, griffin_lim_iters=m.griffin_lim_iters,
                         griffin_lim_power=m.griffin_lim_power, griffin_lim_inversion=m.griffin_lim_inversion)
    model = build_unit_mel(mcfg).to(device)
    o = cfg.optim
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "embedding" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay,
                                                                                   "weight_decay": 0.0}],
                            lr=o.lr, betas=o.betas)
    step, epoch, batch_in_epoch = 0, 0, 0
    if cfg.train.init and not (cfg.train.resume and (out / LAST).is_file()):
        copied = warm_start(model, cfg.train.init, speakers, styles, cfg.train.init_unit_map)
        log.info("warm start from %s: %d tensors", cfg.train.init, copied)
    if cfg.train.resume and (out / LAST).is_file():
        state = load_training_state(out / LAST)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise VocoderError(f"{out / LAST}: does not fit this config ({str(e)[:300]})") from None
        opt.load_state_dict(state["optimizers"]["opt"])
        step, epoch, batch_in_epoch = state["step"], state["extra"]["epoch"], state["extra"]["batch_in_epoch"]
        restore_rng(state)
        if distributed.is_main():
            resume_log(out / "log.jsonl", step)
        log.info("resumed %s at step %d (epoch %d)", out / LAST, step, epoch)
    mel = mel_transform(mcfg).to(device)
    precision = resolve_precision(cfg.train.precision, device, what="unit-mel training (train.precision)")
    if distributed.is_main():
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.resolved.json", cfg.to_dict(), indent=2)
    with_duration = model.duration_predictor is not None and o.duration_weight > 0
    step_fn: nn.Module = _Step(model, with_duration)
    if distributed.world_size() > 1:
        step_fn = nn.parallel.DistributedDataParallel(
            step_fn, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=model.duration_predictor is not None and not with_duration)
    table: list = []
    last: dict = {}

    def save() -> None:
        if distributed.is_main():
            save_training_state(out, step=step, model=model, config=cfg.to_dict(), optimizers={"opt": opt},
                                extra={"epoch": epoch, "batch_in_epoch": batch_in_epoch})
            with torch.random.fork_rng(devices=[]):  # exporting builds modules: keep it off the training RNG
                if not table:
                    table.append(speaker_table_of(train_set, speakers, cfg.train.speaker_embeddings))
                export = UnitMelVocoder(build_unit_mel(mcfg), mcfg, speakers, styles, table[0])
                export.model.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
                export.save_pretrained(out / "model", extra={"step": step})
        distributed.barrier()

    def write_log(values: dict) -> None:
        if distributed.is_main():
            with open(out / "log.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(values) + "\n")
            log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))

    t0, sums, count = time.time(), {}, 0
    deadline = None if cfg.train.max_minutes is None else t0 + 60 * cfg.train.max_minutes

    def out_of_time() -> bool:  # every process stops at the same step: one over its budget stops them all
        if deadline is None:
            return False
        over = torch.tensor(float(time.time() >= deadline), device=device)
        return bool(distributed.all_reduce_mean(over) > 0)

    model.train()
    done = step >= o.max_steps
    while not done:
        train_set.set_epoch(epoch)
        batches = epoch_indices(len(train_set), o.batch_size, epoch, cfg.train.seed)
        if not batches:
            raise VocoderError(f"optim.batch_size={o.batch_size} exceeds the {len(train_set)} training records "
                               f"({distributed.world_size()} processes)")
        for indices in batches[batch_in_epoch:]:
            b = {k: v.to(device) for k, v in collate([train_set[i] for i in indices]).items()}
            for g in opt.param_groups:
                g["lr"] = _lr(step, o)
            with torch.no_grad():
                target = mel(b["audio"][:, 0])                                  # (B, mels, T_mel)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                pred, loss_dur = step_fn(b, target.shape[-1])
            loss_mel = F.l1_loss(pred.float(), target)
            loss = loss_mel
            losses = {"mel_l1": loss_mel.detach()}
            if loss_dur is not None:
                loss_dur = loss_dur.float()
                loss = loss + o.duration_weight * loss_dur
                losses["dur"] = loss_dur.detach()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_norm)
            opt.step()
            step += 1
            batch_in_epoch += 1
            count += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            done = step >= o.max_steps or out_of_time()
            if step % cfg.train.log_every == 0 or done:
                last = {"step": step, "epoch": epoch, "lr": _lr(step, o),
                        **{k: float(distributed.all_reduce_mean(v / count)) for k, v in sums.items()},
                        "sec_per_step": (time.time() - t0) / count}
                write_log(last)
                t0, sums, count = time.time(), {}, 0
            if step % cfg.train.valid_every == 0 or done:
                v = validate(model, valid_set, mel, device) if distributed.is_main() else {}
                if v:
                    write_log({"step": step, **v})
                    last.update(v)
                distributed.barrier()
            if step % cfg.train.save_every == 0 or done:
                save()
            if done:
                break
        else:
            epoch += 1
            batch_in_epoch = 0
    return last


def run(cfg) -> int:
    """Entry point of ``speechkit train unit_mel`` (``cfg``: the composed Hydra config)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue

    try:
        values = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as e:
        raise VocoderError(f"train unit_mel: required value {e.full_key} is missing (give {e.full_key}=...)") from None
    train(UnitMelTrainConfig.from_dict(values))
    return 0
