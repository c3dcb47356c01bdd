"""VDTTS training: text + mouth-region video + speaker -> log-mel, on a talking-face corpus.

Loss: L1 between predicted and true log-mel before and after the postnet (masked to the valid frames), plus a
guided-attention term (Tachibana et al. 2018) on the last decoder layer's cross-attention that pulls the text
alignment towards the diagonal early in training and fades out after ``loss.guided_steps`` steps. Data: the
corpus's ``train.jsonl``/``valid.jsonl`` (``speechkit prepare talking-face``); mouth crops and mels are computed
once at start. Checkpoint/resume from ``<out>/checkpoint_last.pt``; the model is exported to ``<out>/model``
(safetensors + JSON) and loads with ``speechkit.vdtts.VDTTS.from_pretrained``; ``<out>/log.jsonl`` has the
losses.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from speechkit.errors import SpeechkitError
from speechkit.train.checkpoint import load_training_state, save_training_state
from speechkit.utils.files import atomic_open
from speechkit.vdtts.config import VDTTSConfig
from speechkit.vdtts.factory import build_mel, build_vdtts
from speechkit.vdtts.model import lengths_to_mask
from speechkit.vdtts.text import encode_phonemes, phonemize

log = logging.getLogger(__name__)


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a talking-face jsonl manifest (paths made absolute against its folder)."""
    p = Path(path)
    if not p.is_file():
        raise SpeechkitError(f"{p}: no such manifest (make a corpus with `speechkit prepare talking-face`)")
    rows = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["video"], row["audio"] = str(p.parent / row["video"]), str(p.parent / row["audio"])
            _ = row["text"], row["speaker"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SpeechkitError(f"{p}:{n}: not a talking-face manifest row ({e})") from None
        rows.append(row)
    if not rows:
        raise SpeechkitError(f"{p}: empty manifest")
    return rows


def featurize(rows: list[dict], cfg: VDTTSConfig) -> list[dict]:
    """Mouth crops ``uint8 (T, S, S)``, log-mel ``(T * r, M)``, phoneme ids and speaker id of every row."""
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
        ids = encode_phonemes(phonemize(row["text"]), cfg.phonemes)
        spk = cfg.speakers.index(row["speaker"]) if row["speaker"] in cfg.speakers else 0
        out.append({"crops": torch.from_numpy(crops), "mel": mel, "ids": torch.tensor(ids), "speaker": spk})
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
    for i, x in enumerate(items):
        crops[i, : len(x["crops"])] = x["crops"].float() / 255.0
        mel[i, : len(x["mel"])] = x["mel"]
        ids[i, : len(x["ids"])] = x["ids"]
    return {"crops": crops, "mel": mel, "ids": ids,
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


def step_losses(model, batch: dict, cfg_loss, step: int) -> dict[str, torch.Tensor]:
    """The losses of one batch (``total`` is what is optimised)."""
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


def model_config(cfg, train_rows: list[dict]) -> VDTTSConfig:
    """VDTTSConfig from the Hydra ``model`` group plus the vocabularies of the training data."""
    from omegaconf import OmegaConf

    fields = OmegaConf.to_container(cfg.model, resolve=True)
    phonemes = sorted({p for row in train_rows for p in phonemize(row["text"])})
    speakers = sorted({row["speaker"] for row in train_rows})
    return VDTTSConfig.from_dict({**fields, "phonemes": phonemes, "speakers": speakers})


@torch.no_grad()
def validate(model, items: list[dict], cfg, step: int) -> dict:
    model.eval()
    tot, n = {}, 0
    for i in range(0, len(items), cfg.data.batch_size):
        batch = collate(items[i : i + cfg.data.batch_size])
        losses = step_losses(model, batch, cfg.loss, step)
        k = len(batch["ids"])
        for name, v in losses.items():
            tot[name] = tot.get(name, 0.0) + float(v) * k
        n += k
    model.train()
    return {f"valid_{k}": round(v / max(n, 1), 4) for k, v in tot.items()}


def _lr(step: int, o, time_frac: float = 0.0) -> float:
    """Linear warm-up, then cosine decay over the larger of the step and the wall-clock progress."""
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    frac = min(1.0, max(time_frac, (step - o.warmup_steps) / max(1, o.max_steps - o.warmup_steps)))
    return float(o.final_lr + (o.lr - o.final_lr) * 0.5 * (1 + np.cos(np.pi * frac)))


def run(cfg) -> int:
    """Trains per ``cfg`` (speechkit/conf/vdtts/config.yaml); resumes from ``<out>/checkpoint_last.pt``."""
    from omegaconf import OmegaConf

    from speechkit.vdtts.inference import save_model

    if cfg.train.threads:
        torch.set_num_threads(int(cfg.train.threads))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(cfg.data.root)
    train_rows = read_manifest(root / cfg.data.train)
    valid_rows = read_manifest(root / cfg.data.valid) if cfg.data.valid else []
    state = load_training_state(out) if (out / "checkpoint_last.pt").exists() else None
    mcfg = VDTTSConfig.from_dict(state["extra"]["model_config"]) if state else model_config(cfg, train_rows)
    torch.manual_seed(cfg.train.seed)
    model = build_vdtts(mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                            weight_decay=cfg.optim.weight_decay)
    step, history, spent = 0, [], 0.0
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizers"]["opt"])
        step, history = state["step"], json.loads(state["extra"].get("history", "[]"))
        spent = float(state["extra"].get("train_seconds", 0.0))
        torch.set_rng_state(state["rng"]["torch"])
        log.info("resumed from %s at step %d", out / "checkpoint_last.pt", step)
    t0 = time.time()
    train_items, valid_items = featurize(train_rows, mcfg), featurize(valid_rows, mcfg)
    log.info("features: %d train, %d valid utterances in %.1f s; %d parameters", len(train_items),
             len(valid_items), time.time() - t0, sum(p.numel() for p in model.parameters()))
    plain_cfg = OmegaConf.to_container(cfg, resolve=True)
    rng = random.Random(cfg.train.seed * 1000 + step)
    model.train()
    t0 = time.time() - spent
    budget = 60.0 * cfg.train.max_minutes if cfg.train.max_minutes else None

    def time_frac() -> float:
        return (time.time() - t0) / budget if budget else 0.0

    while step < cfg.optim.max_steps and time_frac() < 1.0:
        batch = collate(rng.sample(train_items, min(cfg.data.batch_size, len(train_items))))
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg.optim, time_frac())
        losses = step_losses(model, batch, cfg.loss, step)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_norm)
        opt.step()
        step += 1
        if step % cfg.train.log_every == 0 or step == 1:
            row = {"step": step, **{k: round(float(v.detach()), 4) for k, v in losses.items()},
                   "gnorm": round(float(gnorm), 3), "lr": round(_lr(step, cfg.optim, time_frac()), 6),
                   "sec": round(time.time() - t0, 1)}
            log.info("%s", row)
            history.append(row)
        last = step == cfg.optim.max_steps or time_frac() >= 1.0
        if valid_items and (step % cfg.train.valid_every == 0 or last):
            v = validate(model, valid_items, cfg, step)
            history.append({"step": step, **v})
            log.info("step %d %s", step, v)
        if step % cfg.train.save_every == 0 or last:
            save_training_state(out, step=step, model=model, config=plain_cfg, optimizers={"opt": opt},
                                extra={"history": json.dumps(history), "model_config": mcfg.to_dict(),
                                       "train_seconds": time.time() - t0})
    with atomic_open(out / "log.jsonl") as f:
        f.writelines(json.dumps(r) + "\n" for r in history)
    save_model(out / "model", model, mcfg)
    log.info("model exported to %s", out / "model")
    return 0
