"""HuBERT masked-prediction pretraining (fairseq's recipe, shrunk to fit a CPU or one GPU).

One iteration: frames of the waveform encoder are masked (spans of ``mask_length`` frames starting at a fraction
``mask_prob`` of positions, replaced by a learned embedding); the transformer output of every masked frame is
projected to ``final_dim`` and scored against one embedding per target unit by cosine similarity / ``logit_temp``;
the loss is the cross-entropy of the frame's k-means label (MFCC k-means for iteration 1, HuBERT-feature k-means
for iteration 2). Unmasked frames carry no loss (fairseq's ``pred_nomask_weight: 0``). Left out from fairseq: the
feature penalty and layer drop (small effect at this scale).

Data: a tsv manifest and a labels jsonl (``speechkit encode --no-dedup``; ids = manifest paths without extension),
random crops of ``crop_seconds`` aligned to frame boundaries. Checkpoint/resume, torchrun DDP, bf16 autocast.
The trained encoder is exported to ``<out>/model`` (safetensors + config) and loads with
``HubertFeatureReader.from_pretrained(out/"model", layer=L)``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from speechkit.errors import SpeechkitError
from speechkit.train import distributed as dist
from speechkit.train.checkpoint import unwrap
from speechkit.train.loop import TrainLoop
from speechkit.units.hubert import HubertConfig, build_hubert, save_hubert
from speechkit.units.hubert.model import HubertModel
from speechkit.units.hubert.train_config import HubertTrainConfig
from speechkit.utils.config import from_values, to_plain
from speechkit.utils.files import write_json

log = logging.getLogger(__name__)


class PretrainHead(nn.Module):
    """Projection of encoder outputs and one embedding per target unit; logits are scaled cosine similarities."""

    def __init__(self, embed_dim: int, final_dim: int, num_classes: int, logit_temp: float):
        super().__init__()
        self.proj = nn.Linear(embed_dim, final_dim)
        self.label_embs = nn.Parameter(torch.empty(num_classes, final_dim).uniform_(-1, 1) / final_dim**0.5)
        self.logit_temp = logit_temp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, embed_dim)`` -> ``(N, num_classes)`` logits."""
        proj = F.normalize(self.proj(x).float(), dim=-1)
        return proj @ F.normalize(self.label_embs.float(), dim=-1).T / self.logit_temp


class HubertPretrainModel(nn.Module):
    """Encoder + prediction head; ``forward`` returns the encoder output for the masked input."""

    def __init__(self, encoder: HubertModel, head: PretrainHead):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor):
        return self.encoder(wav, lengths, mask=mask)


def compute_mask(frame_lengths: list[int], max_frames: int, mask_prob: float, mask_length: int,
                 rng: np.random.Generator) -> torch.Tensor:
    """``(B, max_frames)`` bool mask: about ``mask_prob * T / mask_length`` spans of ``mask_length`` frames per
    utterance, span starts drawn without replacement (spans may overlap), never past the valid frames."""
    mask = np.zeros((len(frame_lengths), max_frames), dtype=bool)
    for b, t in enumerate(frame_lengths):
        if t <= mask_length:
            continue
        n = int(mask_prob * t / mask_length + rng.random())
        n = max(1, min(n, t - mask_length))
        for s in rng.choice(t - mask_length, n, replace=False):
            mask[b, s : s + mask_length] = True
    return torch.from_numpy(mask)


class LabeledAudio(torch.utils.data.Dataset):
    """(audio crop, frame labels) pairs from a tsv manifest and a labels jsonl.

    Crops, speed factors and recording conditions (``augment``: the probability that a crop gets one random chain
    of :func:`speechkit.audio.augment.degrade`: room, noise, channel, level; nothing moves in time, so the frame
    labels stay exact) are drawn from ``(seed, epoch, index)`` alone (set :attr:`epoch` before each epoch): the same
    in every data-loader worker and after a resume, and new in each epoch."""

    def __init__(self, manifest: str, labels: str, config: HubertConfig, crop_seconds: float, seed: int,
                 cache: bool = False, speed_perturb: tuple[int, ...] = (), augment: float = 0.0):
        from speechkit.data.manifest import iter_units_jsonl, read_tsv

        root, entries = read_tsv(manifest)
        by_id = {r.id: r.units for r in iter_units_jsonl(labels)}
        self.items = []
        for e in entries:
            key = str(Path(e.path).with_suffix("").as_posix())
            if key in by_id:
                self.items.append((str(root / e.path), by_id[key]))
        if not self.items:
            raise SpeechkitError(f"{labels}: no label record matches an entry of {manifest} (ids are manifest "
                                 "paths without extension; make labels with `speechkit encode MANIFEST --no-dedup`)")
        self.config, self.hop = config, config.hop_size
        self.crop = int(crop_seconds * config.sample_rate) // self.hop * self.hop
        self.seed, self.epoch = seed, 0
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None
        self.speed_perturb = tuple(int(r) for r in speed_perturb)
        if not 0.0 <= augment <= 1.0:
            raise SpeechkitError(f"data.augment must be a probability in [0, 1]. Found {augment}")
        self.augment = float(augment)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        from speechkit.audio import io as audio_io

        path, labels = self.items[i]
        if self._cache is not None and i in self._cache:
            wav = self._cache[i]
        else:
            wav, _ = audio_io.load(path, sample_rate=self.config.sample_rate)
            if self._cache is not None:
                self._cache[i] = wav
        rng = random.Random((self.seed * 1_000_003 + self.epoch) * 1_000_003 + i)
        offset = 0
        if self.crop and len(wav) > self.crop:
            offset = rng.randrange((len(wav) - self.crop) // self.hop + 1) * self.hop
            wav = wav[offset : offset + self.crop]
        frames = self.config.num_frames(len(wav))
        lab = torch.full((frames,), -100, dtype=torch.long)
        chunk = torch.tensor(labels[offset // self.hop : offset // self.hop + frames], dtype=torch.long)
        lab[: len(chunk)] = chunk
        if self.speed_perturb:
            wav, lab = self._perturb(wav, lab, rng.choice(self.speed_perturb))
        if self.augment and rng.random() < self.augment:
            from speechkit.audio.augment import degrade

            wav, _ = degrade(wav, self.config.sample_rate, rng)
        return wav, lab

    def _perturb(self, wav: torch.Tensor, lab: torch.Tensor, rate: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Speed perturbation (Ko et al. 2015): the crop resampled to ``rate`` and played at the model's rate, so
        tempo, pitch and formants all scale by ``sample_rate / rate``; frame labels follow the new timing."""
        import torchaudio.functional as AF

        sr = self.config.sample_rate
        if rate == sr:
            return wav, lab
        out = AF.resample(wav, sr, rate)
        factor = sr / rate  # > 1: faster, higher
        frames = self.config.num_frames(len(out))
        src = ((torch.arange(frames) + 0.5) * factor).long().clamp(max=len(lab) - 1)
        return out, lab[src]


def collate(batch):
    wavs, labels = zip(*batch, strict=True)
    lengths = torch.tensor([len(w) for w in wavs])
    audio = torch.zeros(len(wavs), int(lengths.max()))
    for i, w in enumerate(wavs):
        audio[i, : len(w)] = w
    lab = torch.full((len(labels), max(len(x) for x in labels)), -100, dtype=torch.long)
    for i, x in enumerate(labels):
        lab[i, : len(x)] = x
    return audio, lengths, lab


def _loader(ds, batch_size: int, workers: int, seed: int, shuffle: bool):
    sampler = None
    if dist.world_size() > 1:
        sampler = torch.utils.data.DistributedSampler(ds, shuffle=shuffle, seed=seed, drop_last=shuffle)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle and sampler is None,
                                       sampler=sampler, collate_fn=collate, num_workers=workers,
                                       drop_last=False, generator=torch.Generator().manual_seed(seed))


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """This rank's batches of one training epoch: a permutation drawn from ``(seed, epoch)``, split across ranks
    (equal shares), cut into batches. A resumed run skips the batches its checkpoint already trained on."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    world = dist.world_size()
    if world > 1:
        order = order[dist.rank()::world][: n // world]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class _Epoch:
    """One epoch's batches for :meth:`TrainLoop.batches`: ``epoch[i:]`` loads batches ``i..`` with a DataLoader
    (its workers read the audio ahead; its own generator keeps the iterator off the training RNG)."""

    def __init__(self, ds: LabeledAudio, batches: list[list[int]], workers: int, epoch: int):
        self.ds, self.batches, self.workers, self.epoch = ds, batches, workers, epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, part: slice) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.ds, batch_sampler=self.batches[part], collate_fn=collate,
                                           num_workers=self.workers,
                                           generator=torch.Generator().manual_seed(self.epoch))


def _config_from(cfg: HubertTrainConfig) -> HubertConfig:
    shared = {f.name for f in dataclasses.fields(HubertConfig)} - {"conv_layers"}
    arch = {k: v for k, v in vars(cfg.model).items() if k in shared}
    return HubertConfig(**arch, conv_layers=[tuple(c) for c in cfg.model.conv_layers],
                        sample_rate=cfg.data.sample_rate)


def _step_loss(model, batch, cfg: HubertTrainConfig, hcfg: HubertConfig, rng, device, autocast):
    """Loss and masked accuracy of one batch, the number of scored masked frames and the unmasked accuracy.

    The loss is HuBERT's: cross-entropy on the masked frames plus ``pretrain.unmasked_weight`` times the one on
    the unmasked frames (fairseq's ``pred_nomask_weight``; 0 = masked prediction only, as pre-trained)."""
    audio, lengths, labels = (t.to(device) for t in batch)
    frame_lengths = [hcfg.num_frames(int(n)) for n in lengths]
    mask = compute_mask(frame_lengths, labels.shape[1], cfg.pretrain.mask_prob, cfg.pretrain.mask_length, rng)
    mask = mask.to(device)
    w_u = float(cfg.pretrain.unmasked_weight)
    head = unwrap(model).head
    with autocast():  # TrainLoop.autocast: bf16 where train.precision asks for it
        x, _ = model(audio, lengths, mask)
        target = mask & (labels >= 0)
        logits = head(x[target])
        unmasked = ~mask & (labels >= 0)
        logits_u = head(x[unmasked]) if w_u > 0 else None
    y = labels[target]
    loss = F.cross_entropy(logits.float(), y)
    acc = (logits.argmax(-1) == y).float().mean()
    acc_u = torch.tensor(float("nan"))
    if logits_u is not None and logits_u.shape[0]:
        y_u = labels[unmasked]
        loss = loss + w_u * F.cross_entropy(logits_u.float(), y_u)
        acc_u = (logits_u.argmax(-1) == y_u).float().mean()
    return loss, acc, int(target.sum()), acc_u


def warm_start(encoder: HubertModel, folder: str) -> int:
    """Copies the tensors of the HuBERT saved in ``folder`` (any format :meth:`HubertModel.from_pretrained` reads) into
    ``encoder`` wherever name and shape match (the prediction head starts fresh: its targets change); returns how
    many were copied.

    Raises:
        SpeechkitError: nothing fits (another architecture).
    """
    source = HubertModel.from_pretrained(folder)
    theirs, ours = source.state_dict(), encoder.state_dict()
    fit = {k: v for k, v in theirs.items() if k in ours and ours[k].shape == v.shape}
    if not fit:
        raise SpeechkitError(f"train.init={folder}: no tensor of that HuBERT fits this model")
    encoder.load_state_dict({**ours, **fit})
    return len(fit)


def _lr(step: int, cfg) -> float:
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    frac = (step - o.warmup_steps) / max(1, o.max_steps - o.warmup_steps)
    return o.lr * max(0.0, 1.0 - frac) + o.final_lr * min(1.0, frac)


@torch.no_grad()
def _validate(model, loader, cfg, hcfg, device, autocast) -> dict:
    model.eval()
    rng = np.random.default_rng(12345)  # the same masks every validation
    tot_loss = tot_acc = n = 0.0
    acc_u = []
    for batch in loader:
        loss, acc, count, unmasked = _step_loss(model, batch, cfg, hcfg, rng, device, autocast)
        tot_loss, tot_acc, n = tot_loss + loss.item() * count, tot_acc + acc.item() * count, n + count
        acc_u.append(unmasked.item())
    model.train()
    out = {"valid_loss": tot_loss / max(n, 1), "valid_acc": tot_acc / max(n, 1)}
    if acc_u and not np.isnan(acc_u).all():
        out["valid_acc_unmasked"] = float(np.nanmean(acc_u))
    return out


def run(cfg) -> int:
    """Trains per ``cfg`` (a :class:`HubertTrainConfig` or the composed ``speechkit/conf/hubert``); resumes from
    ``<out>/checkpoint_last.pt``."""
    cfg = from_values(HubertTrainConfig, cfg, error=SpeechkitError, what="HuBERT training config")
    d, o, t = cfg.data, cfg.optim, cfg.train
    # the device: torchrun's GPU where there is one, else the CPU (there is no train.device key)
    loop = TrainLoop(cfg.out, SimpleNamespace(**vars(t), device="auto"), max_steps=o.max_steps,
                     config=to_plain(cfg), what="HuBERT training")
    hcfg = _config_from(cfg)
    hcfg.validate()
    train_ds = LabeledAudio(d.train, d.train_labels, hcfg, d.crop_seconds, t.seed + loop.rank, cache=d.cache,
                            speed_perturb=d.speed_perturb or (), augment=d.augment)
    k = cfg.pretrain.num_classes or 1 + max(max(u) for _, u in train_ds.items if u)
    encoder = build_hubert(hcfg, dropout=cfg.model.dropout, attention_dropout=cfg.model.attention_dropout)
    model = HubertPretrainModel(encoder, PretrainHead(hcfg.embed_dim, cfg.model.final_dim, k,
                                                      cfg.pretrain.logit_temp)).to(loop.device)
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    if t.init and not loop.resuming:
        copied = warm_start(model.encoder, t.init)
        log.info("warm start of the encoder from %s: %d tensors", t.init, copied)
    extra = loop.resume(model, {"opt": opt})  # the RNG too: dropout draws as the uninterrupted run would
    history: list[dict] = json.loads((extra or {}).get("history", "[]"))  # what history.json will hold
    ddp = loop.ddp(model, find_unused_parameters=False)
    valid = None
    if d.valid:
        valid = _loader(LabeledAudio(d.valid, d.valid_labels, hcfg, 0.0, 0), d.batch_size, 0, 0, shuffle=False)
    # every random draw is a function of (seed, rank, step) or restored from the checkpoint: a run killed and
    # resumed ends with the weights and history of an uninterrupted one, bit for bit
    per_epoch = len(_epoch_batches(len(train_ds), d.batch_size, t.seed, 0))
    if per_epoch == 0:
        raise SpeechkitError(f"{d.train}: fewer utterances than ranks ({loop.world_size})")
    loop.epoch, loop.batch_in_epoch = divmod(loop.step, per_epoch)  # also for checkpoints without the position
    t0 = time.time()
    model.train()
    for batch in loop.batches(lambda e: _Epoch(train_ds, _epoch_batches(len(train_ds), d.batch_size, t.seed, e),
                                               d.num_workers, e),
                              on_epoch=lambda e: setattr(train_ds, "epoch", e)):
        step = loop.step
        loop.set_lr(opt, _lr(step, cfg))
        rng = np.random.default_rng([t.seed, loop.rank, step])  # this step's masks
        loss, acc, _, _ = _step_loss(ddp, batch, cfg, hcfg, rng, loop.device, loop.autocast)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = nn.utils.clip_grad_norm_(model.parameters(), o.clip_norm)
        opt.step()
        loop.advance({"loss": loss.detach(), "acc": acc}, force_log=step == 0,
                     log_extra=lambda gnorm=gnorm: {"gnorm": round(float(gnorm), 3), "lr": _lr(loop.step, cfg)})
        if loop.last.get("step") == loop.step:  # logged: kept in history.json too (with the elapsed seconds)
            history.append({**{k: v for k, v in loop.last.items() if k != "sec_per_step"},
                            "sec": round(time.time() - t0, 1)})
        if valid is not None and loop.due(t.valid_every):
            v = {k: round(x, 4) for k, x in _validate(model, valid, cfg, hcfg, loop.device, loop.autocast).items()}
            loop.log({"step": loop.step, **v})
            history.append({"step": loop.step, **v})
        if loop.due(t.save_every):
            loop.save(model, {"opt": opt}, extra={"history": json.dumps(history)})
    if loop.is_main:
        save_hubert(loop.out / "model", model.encoder, hcfg, extra={"trained_steps": loop.step, "num_classes": k})
        write_json(loop.out / "history.json", history, indent=1)
        log.info("exported %s (load with HubertFeatureReader.from_pretrained)", loop.out / "model")
    loop.barrier()
    dist.cleanup()
    return 0
