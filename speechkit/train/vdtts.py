"""VDTTS training: text + mouth-region video + speaker -> log-mel, on a talking-face corpus.

Loss: L1 between predicted and true log-mel before and after the postnet (masked to the valid frames), plus a
guided-attention term (Tachibana et al. 2018) on the last decoder layer's cross-attention that pulls the text
alignment towards the diagonal early in training and fades out after ``loss.guided_steps`` steps. Data: the
corpus's ``train.jsonl``/``valid.jsonl`` (``speechkit prepare talking-face``); mouth crops and mels are computed
once at start, and with ``data.cache`` kept in one compressed file that later runs read instead (so training can
run on a GPU machine without PyAV or espeak-ng). ``train.device``: auto picks CUDA when present.
The loop is :class:`~speechkit.train.loop.TrainLoop`: checkpoint/resume from ``<out>/checkpoint_last.pt`` (a resumed
run ends with the uninterrupted run's weights), ``<out>/log.jsonl`` has the losses; the model is exported to
``<out>/model`` (safetensors + JSON) at the end and loads with ``speechkit.vdtts.VDTTS.from_pretrained``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from speechkit.errors import SpeechkitError
from speechkit.train.checkpoint import load_training_state
from speechkit.train.loop import TrainLoop, warmup_cosine
from speechkit.utils.config import from_values, to_plain
from speechkit.vdtts.config import VDTTSConfig, VDTTSConfigError
from speechkit.vdtts.factory import build_mel, build_vdtts
from speechkit.vdtts.manifest import alignment_targets, read_manifest
from speechkit.vdtts.model import AlignedVDTTSModel, lengths_to_mask
from speechkit.vdtts.text import encode_phonemes, phonemize
from speechkit.vdtts.train_config import VDTTSTrainConfig

log = logging.getLogger(__name__)


def featurize(rows: list[dict], cfg: VDTTSConfig) -> list[dict]:
    """Mouth crops ``uint8 (T, S, S)``, log-mel ``(T * r, M)``, phoneme ids, speaker id and (for the aligned
    decoder) the class of every mel frame (:func:`alignment_targets`) of every row."""
    from speechkit.audio import io as audio_io
    from speechkit.audio.video import mouth_crops, read_video
    from speechkit.vdtts.inference import resample_frames

    mel_fn = build_mel(cfg)
    out = []
    for row in rows:
        v = read_video(row["video"], audio=False)
        idx = resample_frames(len(v.frames), v.fps, cfg.fps)
        crops = mouth_crops(v.frames[idx], tuple(cfg.mouth_box), cfg.crop_size)
        wav, _ = audio_io.load(row["audio"], sample_rate=cfg.sample_rate)
        n = len(crops) * cfg.samples_per_video_frame
        wav = F.pad(wav, (0, max(0, n - len(wav))))[:n]
        with torch.no_grad():
            mel = mel_fn(wav[None])[0].T.contiguous()  # (T * r, M)
        phonemes = phonemize(row["text"])
        ids = encode_phonemes(phonemes, cfg.phonemes)
        spk = cfg.speakers.index(row["speaker"]) if row["speaker"] in cfg.speakers else 0
        item = {"crops": torch.from_numpy(crops), "mel": mel, "ids": torch.tensor(ids), "speaker": spk}
        if cfg.decoder == "aligned":
            if not row.get("phonemes"):
                raise SpeechkitError(f"{row['video']}: the aligned decoder needs phoneme timings ('phonemes': "
                                     "[[symbol, start_s, end_s], ...]) in the manifest row")
            try:
                align = alignment_targets(row["phonemes"], phonemes, len(mel), cfg.hop_length, cfg.sample_rate)
            except (TypeError, ValueError) as e:
                raise SpeechkitError(f"{row['video']}: 'phonemes' must be [[symbol, start_s, end_s], ...] "
                                     f"({e})") from None
            item["align"] = torch.from_numpy(align)
        out.append(item)
    return out


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    b = len(items)
    t = max(len(x["crops"]) for x in items)
    n = max(len(x["ids"]) for x in items)
    s = items[0]["crops"].shape[-1]
    r = len(items[0]["mel"]) // len(items[0]["crops"])
    crops = torch.zeros(b, t, s, s)
    mel = torch.zeros(b, t * r, items[0]["mel"].shape[1])
    ids = torch.zeros(b, n, dtype=torch.long)
    align = torch.zeros(b, t * r, dtype=torch.long)
    for i, x in enumerate(items):
        crops[i, : len(x["crops"])] = x["crops"].float() / 255.0
        mel[i, : len(x["mel"])] = x["mel"]
        ids[i, : len(x["ids"])] = x["ids"]
        if "align" in x:
            align[i, : len(x["align"])] = x["align"]
    extra = {"align": align} if "align" in items[0] else {}
    return {"crops": crops, "mel": mel, "ids": ids, **extra,
            "frame_lengths": torch.tensor([len(x["crops"]) for x in items]),
            "phoneme_lengths": torch.tensor([len(x["ids"]) for x in items]),
            "speakers": torch.tensor([x["speaker"] for x in items])}


def guided_attention_loss(attn: torch.Tensor, frame_lengths: torch.Tensor, phoneme_lengths: torch.Tensor,
                          sigma: float) -> torch.Tensor:
    """``mean(A * W)`` over valid cells, ``W = 1 - exp(-(n/N - t/T)^2 / (2 sigma^2))``; ``attn`` ``(B, T, N)``."""
    t = torch.arange(attn.shape[1], device=attn.device)[None, :, None] / frame_lengths[:, None, None].float()
    n = torch.arange(attn.shape[2], device=attn.device)[None, None, :] / phoneme_lengths[:, None, None].float()
    w = 1 - torch.exp(-((n - t) ** 2) / (2 * sigma**2))
    mask = (lengths_to_mask(frame_lengths, attn.shape[1])[:, :, None]
            & lengths_to_mask(phoneme_lengths, attn.shape[2])[:, None, :]).float()
    return (attn * w * mask).sum() / mask.sum()


def step_losses(model, batch: dict, cfg_loss, step: int, *, predicted: bool = False) -> dict[str, torch.Tensor]:
    """The losses of one batch (``total`` is what is optimised). The aligned decoder: mel L1 on the true
    alignment (``predicted``: also on the aligner's own path, ``mel_pred``), the aligner's cross-entropy
    (``align``) and frame accuracy (``align_acc``), guided attention on its last cross-attention."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    if isinstance(model, AlignedVDTTSModel):
        return _aligned_losses(model, batch, cfg_loss, step, predicted)
    mel0, mel, attn = model(batch["ids"], batch["phoneme_lengths"], batch["crops"], batch["frame_lengths"],
                            batch["speakers"])
    r = mel.shape[1] // batch["crops"].shape[1] if batch["crops"].shape[1] else 1
    mask = lengths_to_mask(batch["frame_lengths"] * r, mel.shape[1])[..., None].float()
    denom = mask.sum() * mel.shape[-1]
    l_before = ((mel0 - batch["mel"]).abs() * mask).sum() / denom
    l_after = ((mel - batch["mel"]).abs() * mask).sum() / denom
    ga = guided_attention_loss(attn, batch["frame_lengths"], batch["phoneme_lengths"], cfg_loss.guided_sigma)
    ga_weight = cfg_loss.guided_weight * max(0.0, 1.0 - step / max(1, cfg_loss.guided_steps))
    return {"total": l_before + l_after + ga_weight * ga, "mel": l_after, "mel_before": l_before, "guided": ga}


def _aligned_losses(model, batch, cfg_loss, step, predicted):
    logp, memory, h, attn = model.align_log_probs(batch["ids"], batch["phoneme_lengths"], batch["crops"],
                                                  batch["frame_lengths"], batch["speakers"])
    mel0, mel = model.decode(memory, h, batch["align"], batch["speakers"])
    mask = lengths_to_mask(batch["frame_lengths"] * model.r, mel.shape[1])
    fmask = mask[..., None].float()
    denom = fmask.sum() * mel.shape[-1]
    l_before = ((mel0 - batch["mel"]).abs() * fmask).sum() / denom
    l_after = ((mel - batch["mel"]).abs() * fmask).sum() / denom
    target = batch["align"]
    ce = -(logp.gather(-1, target[..., None])[..., 0] * mask).sum() / mask.sum()
    acc = ((logp.argmax(-1) == target) & mask).sum().float() / mask.sum()
    ga = guided_attention_loss(attn, batch["frame_lengths"], batch["phoneme_lengths"], cfg_loss.guided_sigma)
    ga_weight = cfg_loss.guided_weight * max(0.0, 1.0 - step / max(1, cfg_loss.guided_steps))
    out = {"total": l_before + l_after + cfg_loss.align_weight * ce + ga_weight * ga, "mel": l_after,
           "mel_before": l_before, "align": ce, "align_acc": acc, "guided": ga}
    if predicted:
        path = model.best_alignment(logp, batch["phoneme_lengths"], batch["frame_lengths"])
        _, mel_p = model.decode(memory, h, path, batch["speakers"])
        out["mel_pred"] = ((mel_p - batch["mel"]).abs() * fmask).sum() / denom
    return out


MEL_RANGE = (-12.0, 4.0)  # log-mel range of the feature file's 8-bit quantisation (step 0.063)


def save_features(path: str | Path, mcfg: VDTTSConfig, train: list[dict], valid: list[dict]) -> Path:
    """Writes featurised utterances to one compressed ``.npz`` (crops as bytes, log-mel quantised to 8 bits,
    the model config as JSON), so training can run where video decoding and espeak-ng are not installed."""
    from speechkit.utils.files import atomic_path

    items = train + valid
    lo, hi = MEL_RANGE
    mel = torch.cat([x["mel"] for x in items]).numpy()
    arrays = {
        "crops": torch.cat([x["crops"] for x in items]).numpy(),
        "mel": np.round((np.clip(mel, lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8),
        "ids": torch.cat([x["ids"] for x in items]).numpy().astype(np.int16),
        "frames": np.array([len(x["crops"]) for x in items]), "phonemes": np.array([len(x["ids"]) for x in items]),
        "speakers": np.array([x["speaker"] for x in items]), "num_train": np.array(len(train)),
        **({"align": torch.cat([x["align"] for x in items]).numpy().astype(np.int16)} if "align" in items[0] else {}),
        "config": np.array(json.dumps(mcfg.to_dict())),
    }
    with atomic_path(Path(path).with_suffix(".npz")) as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(path).with_suffix(".npz")


def load_features(path: str | Path) -> tuple[VDTTSConfig, list[dict], list[dict]]:
    """Reads a file written by :func:`save_features`: ``(model config, train items, valid items)``."""
    try:
        z = np.load(Path(path).with_suffix(".npz"), allow_pickle=False)
        mcfg = VDTTSConfig.from_dict(json.loads(str(z["config"])))
        lo, hi = MEL_RANGE
        r = mcfg.mel_frames_per_video_frame
        items, f0, p0 = [], 0, 0
        mel = torch.from_numpy(z["mel"].astype(np.float32) / 255 * (hi - lo) + lo)
        crops, ids = torch.from_numpy(z["crops"]), torch.from_numpy(z["ids"].astype(np.int64))
        align = torch.from_numpy(z["align"].astype(np.int64)) if "align" in z.files else None
        for f, p, spk in zip(z["frames"], z["phonemes"], z["speakers"], strict=True):
            items.append({"crops": crops[f0 : f0 + f], "mel": mel[f0 * r : (f0 + f) * r], "ids": ids[p0 : p0 + p],
                          "speaker": int(spk)})
            if align is not None:
                items[-1]["align"] = align[f0 * r : (f0 + f) * r]
            f0, p0 = f0 + f, p0 + p
        n = int(z["num_train"])
    except (OSError, KeyError, ValueError) as e:
        raise SpeechkitError(f"{path}: not a VDTTS feature file ({e})") from None
    return mcfg, items[:n], items[n:]


FEATURE_FIELDS = ("fps", "crop_size", "mouth_box", "sample_rate", "n_fft", "win_length", "hop_length", "num_mels",
                  "fmin", "fmax")


def model_config(cfg: VDTTSTrainConfig, *, rows: list[dict] | None = None, phonemes: list[str] | None = None,
                 speakers: list[str] | None = None) -> VDTTSConfig:
    """VDTTSConfig from the config's ``model`` group plus the vocabularies (from training ``rows``, or given)."""
    if rows is not None:
        phonemes = sorted({p for row in rows for p in phonemize(row["text"])})
        speakers = sorted({row["speaker"] for row in rows})
    return VDTTSConfig.from_dict({**dataclasses.asdict(cfg.model), "phonemes": phonemes, "speakers": speakers})


@torch.no_grad()
def validate(model, items: list[dict], cfg, step: int) -> dict:
    model.eval()
    tot, n = {}, 0
    for i in range(0, len(items), cfg.data.batch_size):
        batch = collate(items[i : i + cfg.data.batch_size])
        losses = step_losses(model, batch, cfg.loss, step, predicted=True)
        k = len(batch["ids"])
        for name, v in losses.items():
            tot[name] = tot.get(name, 0.0) + float(v) * k
        n += k
    model.train()
    return {f"valid_{k}": round(v / max(n, 1), 4) for k, v in tot.items()}


def _lr(step: int, o, time_frac: float = 0.0) -> float:
    """:func:`~speechkit.train.loop.warmup_cosine`, the cosine over the larger of the step and the wall-clock
    progress (``time_frac`` of ``train.max_minutes``)."""
    if step >= o.warmup_steps:
        step = max(step, o.warmup_steps + time_frac * max(1, o.max_steps - o.warmup_steps))
    return warmup_cosine(step, o.lr, o.final_lr, o.warmup_steps, o.max_steps)


def run(cfg) -> int:
    """Trains per ``cfg`` (the composed Hydra config, or plain values, of :class:`VDTTSTrainConfig`); resumes from
    ``<out>/checkpoint_last.pt``."""
    from speechkit.vdtts.inference import save_model

    cfg = from_values(VDTTSTrainConfig, cfg, error=VDTTSConfigError, what="train vdtts")
    o = cfg.optim
    loop = TrainLoop(cfg.out, cfg.train, max_steps=o.max_steps, config=to_plain(cfg), what="VDTTS training")
    t0 = time.time()
    cache = Path(cfg.data.cache) if cfg.data.cache else None
    if cache is not None and cache.is_file():
        cached, train_items, valid_items = load_features(cache)
        mcfg = model_config(cfg, phonemes=cached.phonemes, speakers=cached.speakers)
        differ = [k for k in FEATURE_FIELDS if getattr(mcfg, k) != getattr(cached, k)]
        if mcfg.decoder == "aligned" and train_items and "align" not in train_items[0]:
            raise SpeechkitError(f"{cache}: features without alignment targets (written for model.decoder="
                                 "attention); the aligned decoder needs new ones: delete it or use another data.cache")
        if differ:
            raise SpeechkitError(f"{cache}: features made with other {differ} than model.* asks for; delete it or "
                                 "use another data.cache")
    else:
        root = Path(cfg.data.root)
        train_rows = read_manifest(root / cfg.data.train)
        valid_rows = read_manifest(root / cfg.data.valid) if cfg.data.valid else []
        mcfg = model_config(cfg, rows=train_rows)
        train_items, valid_items = featurize(train_rows, mcfg), featurize(valid_rows, mcfg)
        if cache is not None:
            save_features(cache, mcfg, train_items, valid_items)
    if loop.resuming:  # the checkpoint's model (and vocabularies) win over the config's
        mcfg = VDTTSConfig.from_dict(load_training_state(loop.checkpoint)["extra"]["model_config"])
    model = build_vdtts(mcfg).to(loop.device)
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    extra = loop.resume(model, {"opt": opt}) or {}
    if "history" in extra and not (loop.out / "log.jsonl").exists():  # a checkpoint from before log.jsonl grew
        for row in json.loads(extra["history"]):                      # line by line
            loop.log(row, keep=False)
    # the batch sampler: Python's RNG, which TrainLoop does not keep, so its state rides in the checkpoint
    rng = random.Random(cfg.train.seed * 1000 + loop.step)
    if "sampler" in extra:
        rng.setstate(extra["sampler"])
    log.info("features: %d train, %d valid utterances in %.1f s; %d parameters on %s", len(train_items),
             len(valid_items), time.time() - t0, sum(p.numel() for p in model.parameters()), loop.device)
    # the wall-clock budget spans resumes (train_seconds in the checkpoint); the learning rate decays over it
    t0 = time.time() - float(extra.get("train_seconds", 0.0))
    budget = 60.0 * cfg.train.max_minutes if cfg.train.max_minutes else None
    loop.deadline = t0 + budget if budget else None
    loop.done = loop.step >= o.max_steps or loop.out_of_time()  # max_steps=0: featurise and export only

    def time_frac() -> float:
        return (time.time() - t0) / budget if budget else 0.0

    model.train()
    while not loop.done:
        batch = collate(rng.sample(train_items, min(cfg.data.batch_size, len(train_items))))
        loop.set_lr(opt, _lr(loop.step, o, time_frac()))
        losses = step_losses(model, batch, cfg.loss, loop.step)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_norm)
        opt.step()
        loop.advance({**{k: v.detach() for k, v in losses.items()}, "gnorm": gnorm}, force_log=loop.step == 0,
                     log_extra=lambda: {"lr": _lr(loop.step, o, time_frac()), "sec": round(time.time() - t0, 1)})
        if valid_items and loop.due(cfg.train.valid_every):
            loop.log({"step": loop.step, **validate(model, valid_items, cfg, loop.step)})
        if loop.due(cfg.train.save_every):
            loop.save(model, {"opt": opt}, extra={"model_config": mcfg.to_dict(), "sampler": rng.getstate(),
                                                  "train_seconds": time.time() - t0})
    if loop.is_main:
        save_model(loop.out / "model", model, mcfg)
        log.info("model exported to %s", loop.out / "model")
    return 0
