"""``speechkit train mel_vocoder``: a mel-spectrogram HiFi-GAN (jik876) on a folder of speech, for VDTTS.

The features default to VDTTS's (16 kHz, hop 160, 80 Slaney mels up to 8 kHz, HiFi-GAN's log-mel), so the
exported vocoder plugs into ``speechkit vdtts --vocoder hifigan --vocoder-path OUT/model``. The training step is
the unit vocoder's (:func:`speechkit.train.vocoder.train_step`: multi-period + multi-scale discriminators, LSGAN,
feature matching, mel L1 with the released weights); only the generator's input differs (a mel segment instead
of units). All audio is loaded once at ``data.sample_rate``; random segments of ``data.segment_size`` samples.
Outputs in ``out``: ``checkpoint_last.pt`` (resumed automatically), ``model/`` (``HiFiGANVocoder``), ``log.jsonl``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from speechkit.errors import SpeechkitError
from speechkit.train.checkpoint import LAST, load_training_state, restore_rng, resume_log, save_training_state
from speechkit.train.vocoder import train_step
from speechkit.vocoders.hifigan.config import GeneratorConfig, MelHiFiGANConfig
from speechkit.vocoders.hifigan.factory import build_discriminators, build_mel_hifigan
from speechkit.vocoders.hifigan.losses import MelSpectrogram

__all__ = ["run"]

log = logging.getLogger(__name__)


class MelGeneratorStep(nn.Module):
    """Adapts the mel generator to :func:`~speechkit.train.vocoder.train_step` (mel in ``units``, no duration)."""

    def __init__(self, generator: nn.Module, channels_last: bool):
        super().__init__()
        self.generator, self.channels_last = generator, channels_last

    def forward(self, mel, speaker=None, style=None, f0=None):
        wav = self.generator(mel, channels_last=self.channels_last)
        return wav, wav.new_zeros(())


def load_audio(folder: str | Path, sample_rate: int) -> list[torch.Tensor]:
    """Every ``*.wav``/``*.flac`` under ``folder`` (sorted), mono at ``sample_rate``."""
    from speechkit.audio import io as audio_io

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".wav", ".flac"))
    if not files:
        raise SpeechkitError(f"{folder}: no .wav or .flac files (data.audio)")
    return [audio_io.load(p, sample_rate=sample_rate)[0] for p in files]


def segments(wavs: list[torch.Tensor], size: int, batch: int, rng: random.Random) -> torch.Tensor:
    """``(batch, 1, size)`` random crops (zero-padded when an utterance is shorter)."""
    out = torch.zeros(batch, 1, size)
    for i in range(batch):
        w = wavs[rng.randrange(len(wavs))]
        start = rng.randrange(max(1, len(w) - size + 1))
        piece = w[start : start + size]
        out[i, 0, : len(piece)] = piece
    return out


def _generator_config(cfg) -> MelHiFiGANConfig:
    g = cfg.model
    return MelHiFiGANConfig(num_mels=cfg.mel.num_mels, sample_rate=cfg.data.sample_rate, generator=GeneratorConfig(
        upsample_initial_channel=g.upsample_initial_channel, upsample_rates=tuple(g.upsample_rates),
        upsample_kernel_sizes=tuple(g.upsample_kernel_sizes), resblock=str(g.resblock),
        resblock_kernel_sizes=tuple(g.resblock_kernel_sizes),
        resblock_dilation_sizes=tuple(tuple(d) for d in g.resblock_dilation_sizes)))


def _export(generator: nn.Module, mcfg: MelHiFiGANConfig, folder: Path) -> None:
    from speechkit.vocoders import HiFiGANVocoder
    from speechkit.vocoders.hifigan.interop import fold_weight_norm

    plain = build_mel_hifigan(mcfg)
    plain.load_state_dict({k: v.detach().cpu().float() for k, v in fold_weight_norm(generator.state_dict()).items()})
    HiFiGANVocoder(plain, mcfg).save_pretrained(folder)


def run(cfg) -> int:
    """Trains per ``cfg`` (speechkit/conf/mel_vocoder/config.yaml); resumes from ``<out>/checkpoint_last.pt``."""
    from omegaconf import OmegaConf

    t = cfg.train
    device = torch.device("cuda" if t.device == "auto" and torch.cuda.is_available() else
                          "cpu" if t.device == "auto" else t.device)
    if t.threads:
        torch.set_num_threads(int(t.threads))
    torch.manual_seed(t.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    mcfg = _generator_config(cfg)
    mcfg.validate()
    hop = mcfg.generator.hop_length
    if hop != cfg.mel.hop_length or cfg.data.segment_size % hop:
        raise SpeechkitError(f"model.upsample_rates multiply to {hop}: must equal mel.hop_length="
                             f"{cfg.mel.hop_length} and divide data.segment_size={cfg.data.segment_size}")
    wavs = load_audio(cfg.data.audio, cfg.data.sample_rate)
    valid, train = wavs[: cfg.data.valid_count], wavs[cfg.data.valid_count :] or wavs
    log.info("audio: %d train, %d valid files (%.1f min)", len(train), len(valid),
             sum(len(w) for w in wavs) / cfg.data.sample_rate / 60)
    generator = build_mel_hifigan(mcfg)
    generator.init_weights().apply_weight_norm()
    mpd, msd = build_discriminators(cfg.model.discriminator_scale)
    nets = nn.ModuleDict({"generator": generator, "mpd": mpd, "msd": msd}).to(device)
    o = cfg.optim
    optim_g = torch.optim.AdamW(generator.parameters(), o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    optim_d = torch.optim.AdamW([*mpd.parameters(), *msd.parameters()], o.lr, betas=tuple(o.betas),
                                weight_decay=o.weight_decay)
    step = 0
    if (out / LAST).is_file():
        state = load_training_state(out / LAST)
        nets.load_state_dict(state["model"])
        optim_g.load_state_dict(state["optimizers"]["g"])
        optim_d.load_state_dict(state["optimizers"]["d"])
        step = state["step"]
        restore_rng(state)
        resume_log(out / "log.jsonl", step)
        log.info("resumed %s at step %d", out / LAST, step)
    m = cfg.mel
    mel = MelSpectrogram(cfg.data.sample_rate, m.n_fft, m.num_mels, hop, m.win_length, m.fmin, m.fmax).to(device)
    gen = MelGeneratorStep(generator, t.channels_last)
    loss_cfg = SimpleNamespace(loss=SimpleNamespace(**OmegaConf.to_container(cfg.loss), duration=0.0))
    deadline = time.time() + 60 * t.max_minutes if t.max_minutes else None
    t0, plain_cfg = time.time(), OmegaConf.to_container(cfg, resolve=True)
    nets.train()
    while step < o.max_steps:
        for g in (*optim_g.param_groups, *optim_d.param_groups):
            g["lr"] = o.lr * o.lr_decay ** (step / max(1, o.decay_every))
        rng = random.Random(t.seed * 1000 + step)  # seeded by step: a resumed run draws the same segments
        y = segments(train, cfg.data.segment_size, o.batch_size, rng).to(device)
        with torch.no_grad():
            x = mel(y.squeeze(1))
        losses = train_step({"audio": y, "units": x, "speaker": None, "style": None}, gen, mpd, msd, mel,
                            optim_g, optim_d, loss_cfg, adversarial=step >= t.discriminator_start)
        step += 1
        done = step >= o.max_steps or (deadline is not None and time.time() >= deadline)
        if step % t.log_every == 0 or done:
            row = {"step": step, **{k: round(float(v), 4) for k, v in losses.items()},
                   "sec": round(time.time() - t0, 1)}
            if valid and (step % t.valid_every == 0 or done):
                row["valid_mel_l1"] = round(_validate(generator, valid, mel, device), 4)
            log.info("%s", row)
            with open(out / "log.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        if step % t.save_every == 0 or done:
            save_training_state(out, step=step, model=nets, config=plain_cfg, optimizers={"g": optim_g, "d": optim_d})
            with torch.random.fork_rng(devices=[]):  # exporting builds modules: keep it off the training RNG
                _export(generator, mcfg, out / "model")
        if done:
            break
    return 0


@torch.no_grad()
def _validate(generator: nn.Module, wavs: list[torch.Tensor], mel: MelSpectrogram, device) -> float:
    generator.eval()
    total = 0.0
    for w in wavs:
        y = w[None].to(device)
        total += F.l1_loss(mel(generator(mel(y)).squeeze(1)), mel(y)).item()
    generator.train()
    return total / len(wavs)
