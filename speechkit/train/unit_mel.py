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
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from speechkit.train.loop import TrainLoop, warmup_cosine
from speechkit.train.vocoder import epoch_indices, speaker_table_of, unit_audio_datasets
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
    from speechkit.vocoders import UnitVocoder

    src = UnitVocoder.from_pretrained(folder, mel_vocoder="griffinlim")
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
    loop = TrainLoop(cfg.out, cfg.train, max_steps=cfg.optim.max_steps, config=cfg.to_dict(),
                     what="unit-mel training", error=VocoderError)
    device, m, o = loop.device, cfg.model, cfg.optim
    train_set, valid_set, speakers, styles, _ = unit_audio_datasets(cfg.data, sample_rate=m.sample_rate,
                                                                      hop=m.code_hop_size, seed=cfg.train.seed)
    mcfg = UnitMelConfig(num_units=m.num_units, num_speakers=len(speakers or []), num_styles=len(styles or []),
                         channels=m.channels, kernel_size=m.kernel_size, dilations=tuple(m.dilations),
                         post_layers=m.post_layers, dropout=m.dropout, code_hop_size=m.code_hop_size,
                         duration_predictor=m.duration_predictor, mel=m.mel, griffin_lim_iters=m.griffin_lim_iters,
                         griffin_lim_power=m.griffin_lim_power, griffin_lim_inversion=m.griffin_lim_inversion)
    model = build_unit_mel(mcfg).to(device)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "embedding" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay,
                                                                                   "weight_decay": 0.0}],
                            lr=o.lr, betas=o.betas)
    if cfg.train.init and not loop.resuming:
        copied = warm_start(model, cfg.train.init, speakers, styles, cfg.train.init_unit_map)
        log.info("warm start from %s: %d tensors", cfg.train.init, copied)
    loop.resume(model, {"opt": opt})
    mel = mel_transform(mcfg).to(device)
    with_duration = model.duration_predictor is not None and o.duration_weight > 0
    step_fn = loop.ddp(_Step(model, with_duration),
                       find_unused_parameters=model.duration_predictor is not None and not with_duration)
    table: list = []

    def export() -> None:
        if not table:
            table.append(speaker_table_of(train_set, speakers, cfg.train.speaker_embeddings))
        out = UnitMelVocoder(build_unit_mel(mcfg), mcfg, speakers, styles, table[0])
        out.model.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
        out.save_pretrained(loop.out / "model", extra={"step": loop.step})

    model.train()
    for indices in loop.batches(lambda epoch: epoch_indices(len(train_set), o.batch_size, epoch, cfg.train.seed),
                                on_epoch=train_set.set_epoch):
        b = {k: v.to(device) for k, v in collate([train_set[i] for i in indices]).items()}
        lr = warmup_cosine(loop.step, o.lr, o.min_lr, o.warmup_steps, o.max_steps)
        loop.set_lr(opt, lr)
        with torch.no_grad():
            target = mel(b["audio"][:, 0])                                  # (B, mels, T_mel)
        with loop.autocast():
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
        loop.advance(losses, log_extra=lambda: {"lr": warmup_cosine(loop.step, o.lr, o.min_lr, o.warmup_steps,
                                                                     o.max_steps)})
        if loop.due(cfg.train.valid_every):
            v = validate(model, valid_set, mel, device) if loop.is_main else {}
            if v:
                loop.log({"step": loop.step, **v})
            loop.barrier()
        if loop.due(cfg.train.save_every):
            loop.save(model, {"opt": opt}, export=export)
    return loop.last


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
