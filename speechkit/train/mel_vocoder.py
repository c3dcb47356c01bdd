"""``speechkit train mel_vocoder``: a mel-spectrogram HiFi-GAN (jik876) on a folder of speech, for VDTTS.

The features default to VDTTS's (16 kHz, hop 160, 80 Slaney mels up to 8 kHz, HiFi-GAN's log-mel), so the
exported vocoder plugs into ``speechkit vdtts --vocoder hifigan --vocoder-path OUT/model``. The training step is
the unit vocoder's (:func:`speechkit.train.vocoder.train_step`: multi-period + multi-scale discriminators, LSGAN,
feature matching, mel L1 with the released weights); only the generator's input differs (a mel segment instead
of units). All audio is loaded once at ``data.sample_rate``; random segments of ``data.segment_size`` samples.
Outputs in ``out``: ``checkpoint_last.pt`` (resumed automatically), ``model/`` (``HiFiGANVocoder``), ``log.jsonl``.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from speechkit.errors import SpeechkitError
from speechkit.train.loop import TrainLoop
from speechkit.train.vocoder import train_step
from speechkit.utils.config import from_values
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan.config import MelHiFiGANConfig
from speechkit.vocoders.hifigan.factory import build_discriminators, build_mel_hifigan
from speechkit.vocoders.hifigan.losses import MelSpectrogram
from speechkit.vocoders.hifigan.train_config import LossConfig, MelVocoderTrainConfig

__all__ = ["run", "train"]

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


def _generator_config(cfg: MelVocoderTrainConfig) -> MelHiFiGANConfig:
    return MelHiFiGANConfig(num_mels=cfg.mel.num_mels, sample_rate=cfg.data.sample_rate,
                            generator=cfg.model.plain())


def _export(generator: nn.Module, mcfg: MelHiFiGANConfig, folder: Path) -> None:
    from speechkit.vocoders import HiFiGANVocoder
    from speechkit.vocoders.hifigan.interop import fold_weight_norm

    plain = build_mel_hifigan(mcfg)
    plain.load_state_dict({k: v.detach().cpu().float() for k, v in fold_weight_norm(generator.state_dict()).items()})
    HiFiGANVocoder(plain, mcfg).save_pretrained(folder)


def train(cfg: MelVocoderTrainConfig) -> dict:
    """Trains (or resumes) a mel HiFi-GAN; returns the last logged values."""
    t, o = cfg.train, cfg.optim
    loop = TrainLoop(cfg.out, t, max_steps=o.max_steps, config=cfg.to_dict(), what="mel HiFi-GAN training",
                     error=VocoderError, seed_rank=False)
    device = loop.device
    mcfg = _generator_config(cfg)
    mcfg.validate()
    wavs = load_audio(cfg.data.audio, cfg.data.sample_rate)
    valid, train = wavs[: cfg.data.valid_count], wavs[cfg.data.valid_count :] or wavs
    log.info("audio: %d train, %d valid files (%.1f min)", len(train), len(valid),
             sum(len(w) for w in wavs) / cfg.data.sample_rate / 60)
    generator = build_mel_hifigan(mcfg)
    generator.init_weights().apply_weight_norm()
    mpd, msd = build_discriminators(cfg.model.discriminator_scale)
    nets = nn.ModuleDict({"generator": generator, "mpd": mpd, "msd": msd}).to(device)
    optim_g = torch.optim.AdamW(generator.parameters(), o.lr, betas=o.betas, weight_decay=o.weight_decay)
    optim_d = torch.optim.AdamW([*mpd.parameters(), *msd.parameters()], o.lr, betas=o.betas,
                                weight_decay=o.weight_decay)
    optimizers = {"g": optim_g, "d": optim_d}
    loop.resume(nets, optimizers)
    m = cfg.mel
    mel = MelSpectrogram(cfg.data.sample_rate, m.n_fft, m.num_mels, m.hop_length, m.win_length, m.fmin,
                         m.fmax).to(device)
    gen = MelGeneratorStep(generator, t.channels_last)
    loss_cfg = SimpleNamespace(loss=LossConfig(**dataclasses.asdict(cfg.loss), duration=0.0))

    def validation() -> dict:  # joins the log line of the step (on log steps only)
        if not valid or not loop.due(t.valid_every):
            return {}
        return {"valid_mel_l1": _validate(generator, valid, mel, device)}

    nets.train()
    while not loop.done:
        loop.set_lr((optim_g, optim_d), o.lr * o.lr_decay ** (loop.step / max(1, o.decay_every)))
        rng = random.Random(t.seed * 1000 + loop.step)  # seeded by step: a resumed run draws the same segments
        y = segments(train, cfg.data.segment_size, o.batch_size, rng).to(device)
        with torch.no_grad():
            x = mel(y.squeeze(1))
        losses = train_step({"audio": y, "units": x, "speaker": None, "style": None}, gen, mpd, msd, mel,
                            optim_g, optim_d, loss_cfg, adversarial=loop.step >= t.discriminator_start,
                            precision=loop.precision)
        loop.advance(losses, log_extra=validation,
                     force_log=loop.step + 1 == t.discriminator_start)  # no line mixes in the GAN losses' start
        if loop.due(t.save_every):
            loop.save(nets, optimizers, export=lambda: _export(generator, mcfg, loop.out / "model"))
    return loop.last


def run(cfg) -> int:
    """Entry point of ``speechkit train mel_vocoder`` (``cfg``: the composed Hydra config); resumes from
    ``<out>/checkpoint_last.pt``."""
    train(from_values(MelVocoderTrainConfig, cfg, error=VocoderError, what="train mel_vocoder"))
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
