"""``speechkit train vocos``: a Vocos-style mel vocoder (:class:`~speechkit.vocoders.VocosVocoder`) on a folder
of speech, with the unit-to-mel decoder's log-mel (16 kHz, hop 256, 80 Slaney mels) by default.

Losses, chosen for two CPU cores (measured in the README's vocoder table):

- log-mel L1 at the model's own mel settings (``loss.mel``, Vocos's 45);
- multi-resolution STFT loss (``loss.stft``): spectral convergence + log-magnitude L1 at several FFT sizes; it
  constrains the phase the mel loss ignores (overlapping frames must agree at every resolution);
- from ``train.discriminator_start``, optionally, a multi-resolution spectrogram discriminator (UnivNet's MRD,
  small: ``model.disc_channels``) with least-squares GAN and feature-matching losses (``loss.adversarial``,
  ``loss.feature_matching``); waveform discriminators (HiFi-GAN's MPD/MSD) are left out: on the CPU they cost
  more than the generator many times over.

Audio: every ``*.wav``/``*.flac`` under ``data.audio`` whose stem is in ``data.train_list`` (all, when null), loaded
once at the mel's rate, peak-normalised like the unit-to-mel decoder's targets (``data.peak``); validation on the
files of ``data.valid_list`` (else the first ``data.valid_count``).

Fine-tuning on a decoder's mels (HiFi-GAN's fine-tuning on ground-truth-aligned predicted mels): with
``data.decoder`` (a unit-to-mel vocoder folder) and ``data.units`` (the units of ``data.audio``, with durations, as
``speechkit encode`` writes them), a ``data.decoded_share`` of each batch reads the decoder's predicted log-mel of
the segment instead of its true one, and learns to speak the true audio from it: the vocoder learns to undo the
decoder's smoothing. ``train.init`` starts from a trained Vocos folder. Random segments, drawn from a generator seeded
by the step, so a run resumed from ``out/checkpoint_last.pt`` after ``kill -9`` continues bit for bit. Outputs in
``out``: ``checkpoint_last.pt``, ``model/`` (``VocosVocoder.from_pretrained``), ``log.jsonl``. Under
``torchrun --nproc_per_node=N`` each process trains on ``optim.batch_size / N`` segments of every batch (DDP averages
the gradients: the run equals one process's, up to rounding, where each loss is a mean over segments) and
rank 0 alone logs, validates and saves.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from speechkit.errors import SpeechkitError
from speechkit.train.loop import TrainLoop
from speechkit.utils.config import from_values, to_plain
from speechkit.vocoders.hifigan.losses import MelSpectrogram
from speechkit.vocoders.unitmel.config import MelSettings
from speechkit.vocoders.vocos.model import ISTFT
from speechkit.vocoders.vocos.train_config import VocosOptimConfig, VocosTrainConfig
from speechkit.vocoders.vocos.vocoder import VocosConfig, VocosVocoder, build_vocos

__all__ = ["run", "MultiResolutionSTFTLoss", "PhaseLoss", "SpectrogramDiscriminator"]

log = logging.getLogger(__name__)


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over resolutions of spectral convergence ``||S - Ŝ||_F / ||S||_F`` plus ``mean |log S - log Ŝ|``."""

    def __init__(self, resolutions: list[tuple[int, int]]):
        super().__init__()
        self.resolutions = [(int(n), int(h)) for n, h in resolutions]
        for n, _ in self.resolutions:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = y.new_zeros(())
        for n, hop in self.resolutions:
            w = getattr(self, f"window_{n}")
            s = torch.stft(y, n, hop, window=w, return_complex=True).abs().clamp(min=1e-5)
            s_hat = torch.stft(y_hat, n, hop, window=w, return_complex=True).abs().clamp(min=1e-5)
            sc = torch.linalg.norm(s - s_hat) / torch.linalg.norm(s).clamp(min=1e-5)
            total = total + sc + F.l1_loss(torch.log(s_hat), torch.log(s))
        return total / len(self.resolutions)


class PhaseLoss(nn.Module):
    """The output's phase against the audio's, on the STFT frames the head synthesises (``analyse`` of the
    head's :class:`~speechkit.vocoders.vocos.model.ISTFT`): APNet's three phase losses (Ai & Ling 2023), smooth.

    - instantaneous phase (IP): the phase of each bin;
    - group delay (GD): the phase step between adjacent bins of a frame (where the energy sits in time);
    - instantaneous frequency (IAF): the phase step between adjacent frames (each harmonic's exact frequency, which
      the mel losses leave free and Griffin-Lim-like buzz comes from).

    Each term is ``1 - cos`` of the difference, written with unit phasors: 2π-periodic, so nothing is unwrapped, and
    smooth at ±π where APNet's ``|wrapped difference|`` is not. Bins are weighted by the audio's magnitude (a pair
    of bins by the smaller of its two: a step is only defined where both have energy) and the weights of each
    segment sum to one, so silent bins, whose phase is noise, count for nothing and a quiet segment as much as a
    loud one. A bin under ``eps`` has a phasor shorter than one (so the gradient stays bounded where the output is
    silent). Each term lies in [0, 2]; ``parts`` returns the three, ``forward`` their weighted sum averaged over
    the batch. A log-mel does not say the waveform's polarity, so IP cannot reach 0 (``loss.phase_ip`` weighs it).
    """

    def __init__(self, istft: ISTFT, eps: float = 1e-3):
        super().__init__()
        self.istft, self.eps = istft, eps   # the head's inverse STFT: its analysis gives the frames compared

    def parts(self, y_hat: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        s, s_hat = self.istft.analyse(y), self.istft.analyse(y_hat)
        mag = s.abs()
        u, u_hat = s / mag.clamp(min=self.eps), s_hat / s_hat.abs().clamp(min=self.eps)   # unit phasors

        def term(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            w = w / w.sum(dim=(1, 2), keepdim=True).clamp(min=1e-8)
            return (w * (1 - (a * b.conj()).real)).sum(dim=(1, 2)).mean()

        return {
            "ip": term(u_hat, u, mag),
            "gd": term(u_hat[:, 1:] * u_hat[:, :-1].conj(), u[:, 1:] * u[:, :-1].conj(),
                       torch.minimum(mag[:, 1:], mag[:, :-1])),
            "iaf": term(u_hat[..., 1:] * u_hat[..., :-1].conj(), u[..., 1:] * u[..., :-1].conj(),
                        torch.minimum(mag[..., 1:], mag[..., :-1])),
        }

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor, ip: float = 1.0) -> torch.Tensor:
        """``ip * IP + GD + IAF``."""
        p = self.parts(y_hat, y)
        return ip * p["ip"] + p["gd"] + p["iaf"]


class _ResolutionDiscriminator(nn.Module):
    def __init__(self, n_fft: int, hop: int, channels: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        c = channels
        self.convs = nn.ModuleList([
            nn.utils.parametrizations.weight_norm(nn.Conv2d(1, c, (7, 5), padding=(3, 2))),
            nn.utils.parametrizations.weight_norm(nn.Conv2d(c, c, (5, 3), stride=(2, 1), padding=(2, 1))),
            nn.utils.parametrizations.weight_norm(nn.Conv2d(c, c, (5, 3), stride=(2, 1), padding=(2, 1))),
            nn.utils.parametrizations.weight_norm(nn.Conv2d(c, c, (3, 3), padding=1)),
        ])
        self.post = nn.utils.parametrizations.weight_norm(nn.Conv2d(c, 1, (3, 3), padding=1))

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.stft(y, self.n_fft, self.hop, window=self.window, return_complex=True).abs()
        x = torch.log1p(x)[:, None]                         # (B, 1, bins, frames)
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            fmap.append(x)
        x = self.post(x)
        fmap.append(x)
        return x.flatten(1), fmap


class SpectrogramDiscriminator(nn.Module):
    """Sub-discriminators on log-magnitude spectrograms at several resolutions (UnivNet's MRD, narrower)."""

    def __init__(self, resolutions: list[tuple[int, int]], channels: int = 16):
        super().__init__()
        self.discs = nn.ModuleList(_ResolutionDiscriminator(int(n), int(h), channels) for n, h in resolutions)

    def forward(self, y: torch.Tensor):
        outs = [d(y) for d in self.discs]
        return [o[0] for o in outs], [o[1] for o in outs]


def _read_stems(path: str | None) -> set[str] | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise SpeechkitError(f"{p}: no such list file (a split list: one file stem a line)")
    from speechkit.utils.files import read_text

    return {line.split()[0] for line in read_text(p).splitlines() if line.strip() and not line.startswith("#")}


def load_corpus(folder: str | Path, sample_rate: int, keep: set[str] | None, peak: float | None,
                what: str) -> tuple[list[str], list[torch.Tensor]]:
    """Stems and waveforms of every audio file under ``folder`` (sorted) whose stem is in ``keep`` (all when
    ``None``), mono at ``sample_rate``, peak-normalised to ``peak``."""
    from speechkit.audio import io as audio_io

    root = Path(folder)
    if not root.is_dir():
        raise SpeechkitError(f"{root}: no such folder ({what})")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".wav", ".flac")
                   and (keep is None or p.stem in keep))
    if not files:
        raise SpeechkitError(f"{root}: no .wav or .flac files{' listed in the split' if keep else ''} ({what})")
    wavs = []
    for p in files:
        w = audio_io.load(p, sample_rate=sample_rate)[0]
        if peak:
            w = w / w.abs().max().clamp(min=1e-4) * peak
        wavs.append(w)
    return [p.stem for p in files], wavs


def segments(wavs: list[torch.Tensor], size: int, batch: int, rng: random.Random,
             hop: int = 1) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """``(batch, size)`` random crops starting on multiples of ``hop`` (zero-padded when an utterance is shorter),
    and the ``(utterance, start)`` of each."""
    out, where = torch.zeros(batch, size), []
    for i in range(batch):
        k = rng.randrange(len(wavs))
        w = wavs[k]
        start = rng.randrange(max(1, (len(w) - size) // hop + 1)) * hop
        piece = w[start: start + size]
        out[i, : len(piece)] = piece
        where.append((k, start))
    return out, where


@torch.inference_mode()
def decoded_mels(decoder_dir: str, units_path: str, stems: list[str], names: str) -> dict[int, torch.Tensor]:
    """The log-mel a unit-to-mel decoder predicts for each training utterance from its units and durations (the
    encoder's, so the frames line up with the audio, as the decoder's own training targets do): ``index in stems ->
    (num_mels, frames)``. Speaker and style come from the stems (``names``: ``"expresso"`` or ``"none"``)."""
    from speechkit.data.corpora.expresso import parse_stem
    from speechkit.data.manifest import read_units_jsonl
    from speechkit.vocoders.unitmel.vocoder import UnitMelVocoder

    voc = UnitMelVocoder.from_pretrained(decoder_dir, mel_vocoder="griffinlim")
    by_stem = {Path(r.audio).stem: r for r in read_units_jsonl(units_path)}
    out = {}
    for k, stem in enumerate(stems):
        r = by_stem.get(stem)
        if r is None:
            continue
        spk = sty = None
        if names == "expresso":
            info = parse_stem(stem)
            spk = info.speaker if voc.speakers and info.speaker in voc.speakers else None
            sty = info.style if voc.styles and info.style in voc.styles else None
        out[k] = voc.mel(torch.tensor(r.units), speaker=spk, style=sty,
                         durations=None if r.duration is None else torch.tensor(r.duration)).float().cpu()
    if not out:
        raise SpeechkitError(f"{units_path}: no record's audio stem is one of the {len(stems)} training files "
                             "(data.units must be the units of data.audio)")
    return out


def _decoded_batch(x: torch.Tensor, where: list[tuple[int, int]], decoded: dict[int, torch.Tensor], hop: int,
                   share: float, gains: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """``x`` with a ``share`` of its rows replaced by the decoder's mel of the same audio (shifted by log gain)."""
    x = x.clone()
    frames = x.shape[-1]
    for i, (k, start) in enumerate(where):
        if k not in decoded or rng.random() >= share:
            continue
        m = decoded[k][:, start // hop: start // hop + frames]
        x[i] = math.log(1e-5)
        x[i, :, : m.shape[1]] = m.to(x.device) + torch.log(gains[i])
    return x


def _lsgan_d(real, fake) -> torch.Tensor:
    return sum(torch.mean((1 - r) ** 2) + torch.mean(g ** 2) for r, g in zip(real, fake, strict=True))


def _lsgan_g(fake) -> torch.Tensor:
    return sum(torch.mean((1 - g) ** 2) for g in fake)


def _feature_matching(fr, ff) -> torch.Tensor:
    return sum(torch.mean(torch.abs(a.detach() - b)) for da, db in zip(fr, ff, strict=True)
               for a, b in zip(da, db, strict=True))


class _DiscriminatorStep(nn.Module):
    """The discriminator's LSGAN loss on real and (detached) generated audio in one ``forward`` (one DDP pass);
    returns it with the real audio's feature maps, which the generator's feature matching reuses."""

    def __init__(self, disc: nn.Module):
        super().__init__()
        self.disc = disc

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor):
        real, fmap_real = self.disc(y)
        fake, _ = self.disc(y_hat)
        return _lsgan_d(real, fake), fmap_real


def vocos_config(cfg: VocosTrainConfig) -> VocosConfig:
    g = cfg.model
    vc = VocosConfig(mel=MelSettings(sample_rate=cfg.data.sample_rate, **dataclasses.asdict(cfg.mel)), dim=g.dim,
                     intermediate_dim=g.intermediate_dim, num_layers=g.num_layers, kernel_size=g.kernel_size)
    vc.validate()
    return vc


def _lr(step: int, o: VocosOptimConfig) -> float:
    """Linear warm-up times a cosine from ``lr`` to ``lr * min_lr_ratio`` over ``schedule_steps`` (else
    ``max_steps``); the cosine runs from step 0, under the warm-up (not :func:`~speechkit.train.loop.warmup_cosine`'s
    shape)."""
    horizon = o.schedule_steps or o.max_steps
    lr = o.lr * min(1.0, (step + 1) / max(1, o.warmup_steps))
    return lr * (0.5 * (1 + torch.cos(torch.tensor(torch.pi * min(step, horizon) / horizon)).item())
                 * (1 - o.min_lr_ratio) + o.min_lr_ratio)


def run(cfg) -> int:
    """Trains per ``cfg`` (a :class:`VocosTrainConfig` or the composed ``speechkit/conf/vocos``); resumes from
    ``<out>/checkpoint_last.pt``."""
    cfg = from_values(VocosTrainConfig, cfg, error=SpeechkitError, what="vocos training config")
    t, o, d = cfg.train, cfg.optim, cfg.data
    loop = TrainLoop(cfg.out, t, max_steps=o.max_steps, config=to_plain(cfg), what="vocos training")
    device, rank, world = loop.device, loop.rank, loop.world_size
    if o.batch_size % world:
        raise SpeechkitError(f"optim.batch_size={o.batch_size} must be a multiple of the {world} processes")
    vcfg = vocos_config(cfg)
    hop = vcfg.mel.hop_length
    stems, wavs = load_corpus(d.audio, d.sample_rate, _read_stems(d.train_list), d.peak, "data.audio")
    if d.valid_list is not None:
        valid = load_corpus(d.audio, d.sample_rate, _read_stems(d.valid_list), d.peak, "data.valid_list")[1]
        valid, train = valid[: d.valid_count], wavs
    else:
        valid, train = wavs[: d.valid_count], wavs[d.valid_count:] or wavs
        stems = stems[d.valid_count:] if len(wavs) > d.valid_count else stems
    decoded = {}
    if d.decoder is not None:
        if d.units is None:
            raise SpeechkitError("data.decoder needs data.units (the units jsonl of data.audio)")
        decoded = decoded_mels(d.decoder, d.units, stems, d.names)
        log.info("decoder mels for %d of %d training files (%s)", len(decoded), len(train), d.decoder)
    log.info("audio: %d train files (%.1f min), %d valid", len(train),
             sum(len(w) for w in train) / d.sample_rate / 60, len(valid))
    generator = build_vocos(vcfg)
    disc = SpectrogramDiscriminator([tuple(r) for r in cfg.model.disc_resolutions], cfg.model.disc_channels)
    nets = nn.ModuleDict({"generator": generator, "disc": disc}).to(device)
    optim_g = torch.optim.AdamW(generator.parameters(), o.lr, betas=o.betas, weight_decay=o.weight_decay)
    optim_d = torch.optim.AdamW(disc.parameters(), o.lr, betas=o.betas, weight_decay=o.weight_decay)
    optimizers = {"g": optim_g, "d": optim_d}
    if t.init and not loop.resuming:   # warm start: weights only (a Vocos folder of the same size)
        from speechkit.vocoders.hifigan.vocoder import _load_strict_shapes

        _load_strict_shapes(generator, VocosVocoder.from_pretrained(t.init).generator.state_dict(), str(t.init))
        log.info("generator initialised from %s", t.init)
    loop.resume(nets, optimizers)
    m = vcfg.mel
    mel = MelSpectrogram(m.sample_rate, m.n_fft, m.num_mels, hop, m.win_length, m.fmin, m.fmax).to(device)
    stft_loss = MultiResolutionSTFTLoss([tuple(r) for r in cfg.loss.stft_resolutions]).to(device)
    phase_loss = PhaseLoss(generator.istft) if cfg.loss.phase > 0 else None
    # DDP averages the gradients; the generator's adversarial pass runs the discriminator unwrapped
    gen, d_step = loop.ddp(generator), loop.ddp(_DiscriminatorStep(disc))

    def validation() -> dict:   # on the log lines only, as before
        if valid and loop.is_main and loop.due(t.valid_every):
            return {k: round(v, 4) for k, v in _validate(generator, valid, mel, device, phase_loss,
                                                         cfg.loss.phase_ip).items()}
        return {}

    def export(folder: str) -> None:
        VocosVocoder(_copy(generator, vcfg), vcfg).save_pretrained(loop.out / folder, extra={"step": loop.step})

    nets.train()
    while loop.step < o.max_steps:
        step = loop.step
        lr = _lr(step, o)
        loop.set_lr([optim_g, optim_d], lr)
        rng = random.Random(t.seed * 1_000_003 + step)   # seeded by step: a resumed run draws the same segments
        y, where = segments(train, d.segment_size, o.batch_size, rng, hop)
        y = y.to(device)
        # random level in [1 - j, 1]: the vocoder sees quieter speech than peak-normalised
        gains = 1 - d.gain_jitter * torch.tensor([rng.random() for _ in range(len(y))], device=device)
        y = y * gains[:, None]
        with torch.no_grad():
            x = mel(y)
            if decoded:
                x = _decoded_batch(x, where, decoded, hop, d.decoded_share, gains, rng)
        if world > 1:   # every process draws the whole batch, then trains on its share: N processes = one
            y, x = y[rank::world], x[rank::world]
        y_hat = gen(x)
        adversarial = cfg.loss.adversarial > 0 and step >= t.discriminator_start
        losses = {}
        if adversarial:
            loss_d, fmap_real = d_step(y, y_hat.detach())
            optim_d.zero_grad(set_to_none=True)
            loss_d.backward()
            optim_d.step()
            losses["loss_d"] = loss_d.detach()
        loss_mel = F.l1_loss(mel(y_hat), x)
        loss_stft = stft_loss(y_hat, y)
        loss_g = cfg.loss.mel * loss_mel + cfg.loss.stft * loss_stft
        if phase_loss is not None:
            loss_phase = phase_loss(y_hat, y, cfg.loss.phase_ip)
            loss_g = loss_g + cfg.loss.phase * loss_phase
            losses["loss_phase"] = loss_phase.detach()
        if adversarial:
            for p in disc.parameters():
                p.requires_grad_(False)
            fake, fmap_fake = disc(y_hat)   # the real feature maps: the discriminator step's (one pass fewer)
            loss_adv, loss_fm = _lsgan_g(fake), _feature_matching(fmap_real, fmap_fake)
            loss_g = loss_g + cfg.loss.adversarial * loss_adv + cfg.loss.feature_matching * loss_fm
            for p in disc.parameters():
                p.requires_grad_(True)
            losses.update(loss_adv=loss_adv.detach(), loss_fm=loss_fm.detach())
        optim_g.zero_grad(set_to_none=True)
        loss_g.backward()
        if o.grad_clip:
            nn.utils.clip_grad_norm_(generator.parameters(), o.grad_clip)
        optim_g.step()
        losses.update(loss_mel=loss_mel.detach(), loss_stft=loss_stft.detach())
        loop.advance(losses, log_extra=lambda lr=lr: {"lr": round(lr, 7), **validation()})
        if loop.due(t.save_every):
            loop.save(nets, optimizers, export=lambda: export("model"))
        if t.keep_every and loop.step % t.keep_every == 0 and loop.is_main:   # a model of this step kept beside
            export(f"model_{loop.step:06d}")                                  # the latest
        if loop.done:
            break
    return 0


def _copy(generator: nn.Module, vcfg: VocosConfig) -> nn.Module:
    with torch.random.fork_rng(devices=[]):   # building modules draws random numbers: keep them off training's
        plain = build_vocos(vcfg)
    plain.load_state_dict({k: v.detach().cpu().float() for k, v in generator.state_dict().items()})
    return plain


@torch.no_grad()
def _validate(generator: nn.Module, wavs: list[torch.Tensor], mel: MelSpectrogram, device,
              phase_loss: PhaseLoss | None = None, ip: float = 1.0) -> dict[str, float]:
    """Mean over whole utterances of the log-mel L1 (``valid_mel_l1``) and, with the phase loss on, of its value
    (``valid_phase``)."""
    generator.eval()
    total = {"valid_mel_l1": 0.0} if phase_loss is None else {"valid_mel_l1": 0.0, "valid_phase": 0.0}
    for w in wavs:
        y = w[None, : len(w) // mel.hop_length * mel.hop_length].to(device)
        x = mel(y)
        y_hat = generator(x)
        total["valid_mel_l1"] += F.l1_loss(mel(y_hat), x).item()
        if phase_loss is not None:
            total["valid_phase"] += phase_loss(y_hat, y, ip).item()
    generator.train()
    return {k: v / len(wavs) for k, v in total.items()}
