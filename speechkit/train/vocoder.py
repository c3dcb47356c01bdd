"""``speechkit train vocoder``: train a unit HiFi-GAN (CodeHiFiGAN) on units jsonl + audio.

Read top to bottom: data (records, speaker / style lists, segments), the models (generator with weight norm,
multi-period and multi-scale discriminators), one training step (discriminator then generator, the released
HiFi-GAN losses), validation (mel L1 on whole utterances), checkpoints, and :func:`run`.

Outputs in ``out``: ``checkpoint_last.pt`` (generator + discriminators + optimisers + schedulers + step, resumed
automatically), ``model/`` (:meth:`CodeHiFiGANVocoder.from_pretrained`), ``official/g_XXXXXXXX`` + ``config.json``
(textlesslib / fairseq format) and ``log.jsonl``. Under ``torchrun`` every process runs the same command; the
three networks are wrapped in DDP (gloo on CPU, NCCL on GPU) and each process reads its shard of every epoch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from speechkit.precision import resolve_precision
from speechkit.train import distributed
from speechkit.train.checkpoint import unwrap
from speechkit.train.loop import TrainLoop
from speechkit.utils.config import from_values
from speechkit.vocoders.errors import VocoderError
from speechkit.vocoders.hifigan.config import CodeHiFiGANConfig
from speechkit.vocoders.hifigan.data import UnitAudioDataset, collate, frame_f0, name_function
from speechkit.vocoders.hifigan.f0 import F0Stats
from speechkit.vocoders.hifigan.factory import build_code_hifigan, build_discriminators
from speechkit.vocoders.hifigan.losses import (
    MelSpectrogram,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from speechkit.vocoders.hifigan.model import CodeHiFiGANGenerator
from speechkit.vocoders.hifigan.train_config import DataConfig, VocoderTrainConfig

__all__ = ["run", "train", "unit_audio_datasets", "epoch_indices", "speaker_table_of"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ data
def _names(records, source: str, what: str) -> tuple[list[str] | None, list[int] | None]:
    fn = name_function(source, what)
    if fn is None:
        return None, None
    try:
        per_record = [fn(r.audio) for r in records]
    except Exception as e:  # noqa: BLE001 - a path the rule cannot read is a data error for the user
        raise VocoderError(f"data.{what}={source!r} cannot read a {what} from an audio path ({e})") from None
    names = sorted(set(per_record))
    return names, [names.index(n) for n in per_record]


def _only(records, list_path: str | None):
    """The records whose audio file stem is listed in ``list_path`` (first column, ``#`` comments)."""
    if list_path is None:
        return records
    p = Path(list_path)
    if not p.is_file():
        raise VocoderError(f"{p}: no such list file")
    stems = {line.split()[0] for line in p.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")}
    kept = [r for r in records if Path(r.audio).stem in stems]
    if not kept:
        raise VocoderError(f"{p}: none of its {len(stems)} names is the audio stem of a units record")
    return kept


def _datasets(cfg: VocoderTrainConfig, hop: int):
    return unit_audio_datasets(cfg.data, sample_rate=cfg.model.sample_rate, hop=hop, seed=cfg.train.seed,
                               f0=cfg.model.f0)


def unit_audio_datasets(data: DataConfig, *, sample_rate: int, hop: int, seed: int, f0: str = "none"):
    """Training segments and whole validation utterances of the units jsonl ``data`` describes, with speaker and
    style ids from the audio paths (and speaker-normalised F0 for ``f0="continuous"``).

    Returns:
        ``(train_set, valid_set or None, speakers, styles, f0_stats)``.
    """
    from speechkit.data.manifest import read_units_jsonl

    records = read_units_jsonl(data.units)
    train = _only(records, data.train_list)
    if data.valid_units:
        valid = read_units_jsonl(data.valid_units)
    elif data.valid_list:
        valid = _only(records, data.valid_list)
    else:
        n = min(data.valid_count, len(train) - 1)
        train, valid = (train[:-n], train[-n:]) if n > 0 else (train, [])
    valid = valid[: data.valid_count]
    speakers, spk_train = _names(train, data.speaker, "speaker")
    styles, sty_train = _names(train, data.style, "style")

    def ids(records, names, source, what):
        if names is None:
            return None
        fn = name_function(source, what)
        unknown = sorted({fn(r.audio) for r in records} - set(names))
        if unknown:
            raise VocoderError(f"validation {what}s {unknown} do not occur in the training data")
        return [names.index(fn(r.audio)) for r in records]

    spk_valid = ids(valid, speakers, data.speaker, "speaker")
    sty_valid = ids(valid, styles, data.style, "style")
    stats = f0_train = f0_valid = None
    if f0 == "continuous":  # per-speaker statistics of the training records (speech-resynthesis)
        names_train = [speakers[i] for i in spk_train] if spk_train is not None else [None] * len(train)
        names_valid = [speakers[i] for i in spk_valid] if spk_valid is not None else [None] * len(valid)
        stats = F0Stats.compute(zip(names_train, (frame_f0(r) for r in train), strict=True))
        f0_train, f0_valid = [stats.get(n) for n in names_train], [stats.get(n) for n in names_valid]
    common = dict(sample_rate=sample_rate, hop=hop, audio_root=data.audio_root, peak=data.peak)
    train_set = UnitAudioDataset(train, segment_frames=data.segment_size // hop, speakers=spk_train,
                                 styles=sty_train, seed=seed, f0_norm=f0_train, **common)
    valid_set = UnitAudioDataset(valid, segment_frames=None, speakers=spk_valid, styles=sty_valid, f0_norm=f0_valid,
                                 **common) if valid else None
    return train_set, valid_set, speakers, styles, stats


def epoch_indices(n: int, batch: int, epoch: int, seed: int) -> list[list[int]]:
    """This process' batches of one epoch: a seeded permutation, sharded by rank, incomplete batches dropped."""
    rank, world = distributed.rank(), distributed.world_size()
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    per_rank = batch // world
    mine = order[rank::world]
    return [mine[i:i + per_rank] for i in range(0, len(mine) - per_rank + 1, per_rank)]


# ------------------------------------------------------------------------------------------------ models
class GeneratorStep(nn.Module):
    """The generator with its duration loss in ``forward`` (so DDP sees every parameter used)."""

    def __init__(self, model: CodeHiFiGANGenerator, channels_last: bool = True):
        super().__init__()
        self.model, self.channels_last = model, channels_last

    def forward(self, units, speaker, style, f0=None):
        wav = self.model(units, f0=f0, speaker=speaker if self.model.speaker_embedding is not None else None,
                         style=style if self.model.style_embedding is not None else None,
                         channels_last=self.channels_last)
        dur = self.model.duration_loss(units) if self.model.duration_predictor is not None else wav.new_zeros(())
        return wav, dur


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


# ------------------------------------------------------------------------------------------------ one step
def _fp32(xs):
    """Discriminator outputs (lists, or lists of lists of feature maps) as fp32 tensors."""
    return [_fp32(x) if isinstance(x, (list, tuple)) else x.float() for x in xs]


def train_step(batch, gen, mpd, msd, mel: MelSpectrogram, optim_g, optim_d, cfg: VocoderTrainConfig,
               adversarial: bool = True, precision: str = "fp32") -> dict:
    """One discriminator update then one generator update (the released order); returns the losses as detached
    0-d tensors on the batch's device (read them when logging: no step waits for the GPU). With
    ``adversarial=False`` (before ``train.discriminator_start``) only the generator's mel and duration losses.
    ``cfg`` needs only its ``loss`` weights; ``precision="bf16"`` autocasts the networks' convolutions."""
    y = batch["audio"]
    precision = resolve_precision(precision, y.device, what="vocoder training (train.precision)")
    bf16 = torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    with bf16:  # bf16 convolutions (fp32 weights, optimiser and losses): faster on CPUs with bf16 matrix units (AMX)
        y_hat, dur_loss = gen(batch["units"], batch["speaker"], batch["style"], batch.get("f0"))
    y_hat, dur_loss = y_hat.float(), dur_loss.float()
    w = cfg.loss
    if not adversarial:
        optim_g.zero_grad(set_to_none=True)
        mel_l1 = F.l1_loss(mel(y_hat.squeeze(1)), mel(y.squeeze(1)))
        loss_g = w.mel * mel_l1 + w.duration * dur_loss
        loss_g.backward()
        optim_g.step()
        return {"loss_g": loss_g.detach(), "mel_l1": mel_l1.detach(), "dur": dur_loss.detach()}
    # discriminators on real vs detached fake
    optim_d.zero_grad(set_to_none=True)
    with bf16:
        r_f, g_f, _, _ = mpd(y, y_hat.detach())
        r_s, g_s, _, _ = msd(y, y_hat.detach())
    r_f, g_f, r_s, g_s = _fp32(r_f), _fp32(g_f), _fp32(r_s), _fp32(g_s)  # losses in fp32 whatever the autocast
    loss_d = discriminator_loss(r_f, g_f) + discriminator_loss(r_s, g_s)
    loss_d.backward()
    optim_d.step()
    # generator (the discriminators are frozen and run unwrapped: no gradient for them, no DDP reduction)
    optim_g.zero_grad(set_to_none=True)
    d_f, d_s = unwrap(mpd), unwrap(msd)
    _set_requires_grad(d_f, False)
    _set_requires_grad(d_s, False)
    mel_l1 = F.l1_loss(mel(y_hat.squeeze(1)), mel(y.squeeze(1)))
    with bf16:
        _, g_f, fr_f, fg_f = d_f(y, y_hat)
        _, g_s, fr_s, fg_s = d_s(y, y_hat)
    g_f, g_s, fr_f, fg_f, fr_s, fg_s = map(_fp32, (g_f, g_s, fr_f, fg_f, fr_s, fg_s))
    adv = generator_adversarial_loss(g_f) + generator_adversarial_loss(g_s)
    fm = feature_matching_loss(fr_f, fg_f) + feature_matching_loss(fr_s, fg_s)
    loss_g = w.adversarial * adv + w.feature_matching * fm + w.mel * mel_l1 + w.duration * dur_loss
    loss_g.backward()
    optim_g.step()
    _set_requires_grad(d_f, True)
    _set_requires_grad(d_s, True)
    return {"loss_g": loss_g.detach(), "loss_d": loss_d.detach(), "mel_l1": mel_l1.detach(), "adv": adv.detach(),
            "fm": fm.detach(), "dur": dur_loss.detach()}


@torch.no_grad()
def validate(model: CodeHiFiGANGenerator, valid_set: UnitAudioDataset | None, mel: MelSpectrogram, device) -> dict:
    """Mel L1 of whole validation utterances (and the duration loss when there is a predictor)."""
    if valid_set is None or len(valid_set) == 0:
        return {}
    model.eval()
    mel_l1, dur = 0.0, 0.0
    for i in range(len(valid_set)):
        item = collate([valid_set[i]])
        units = item["units"].to(device)
        spk = item["speaker"].to(device) if model.speaker_embedding is not None else None
        sty = item["style"].to(device) if model.style_embedding is not None else None
        y_hat = model(units, f0=item["f0"].to(device) if "f0" in item else None, speaker=spk, style=sty)
        mel_l1 += F.l1_loss(mel(y_hat.squeeze(1)), mel(item["audio"].to(device).squeeze(1))).item()
        if model.duration_predictor is not None:
            dur += model.duration_loss(units).item()
    model.train()
    out = {"valid_mel_l1": mel_l1 / len(valid_set)}
    if model.duration_predictor is not None:
        out["valid_dur"] = dur / len(valid_set)
    return out


# ------------------------------------------------------------------------------------------------ saving
def speaker_table_of(dataset: UnitAudioDataset, speakers: list[str] | None, per_speaker: int):
    """The mean speaker embedding of the first ``per_speaker`` training utterances of each speaker (``None`` for
    single-speaker vocoders or ``per_speaker=0``)."""
    from speechkit.vocoders.hifigan.voices import compute_speaker_table

    if not speakers or per_speaker <= 0 or dataset.speakers is None:
        return None
    files: dict[str, list[Path]] = {name: [] for name in speakers}
    for record, sid in zip(dataset.records, dataset.speakers, strict=True):
        files[speakers[sid]].append(dataset.audio_path(record))
    # the speaker encoder initialises its layers from the global RNG before loading its weights: keep that out of
    # the training's random stream, or a resumed run (which builds the table at another step) would diverge
    with torch.random.fork_rng(devices=[]):
        return compute_speaker_table({k: v for k, v in files.items() if v}, max_utterances=per_speaker)


def _export(model: CodeHiFiGANGenerator, mcfg: CodeHiFiGANConfig, speakers, styles, stats, out: Path, step: int,
            official: bool, speaker_table=None) -> None:
    from speechkit.vocoders.hifigan.interop import fold_weight_norm
    from speechkit.vocoders.hifigan.vocoder import CodeHiFiGANVocoder

    # a fresh module loaded with folded weights (deep-copying a parametrized module shares its class, and removing
    # the copy's weight norm would break the original)
    plain = build_code_hifigan(mcfg)
    plain.load_state_dict({k: v.detach().cpu().float() for k, v in fold_weight_norm(model.state_dict()).items()})
    voc = CodeHiFiGANVocoder(plain, mcfg, speakers, styles, stats, speaker_table)
    voc.save_pretrained(out / "model", extra={"step": step})
    if official:
        voc.export_official(out / "official", step=step)


def warm_start(model: CodeHiFiGANGenerator, folder: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Copies the tensors of the vocoder saved in ``folder`` into ``model`` (before weight norm is applied) wherever
    name and shape match; returns ``(copied, skipped)`` names of ``model``'s state."""
    from safetensors.torch import load_file

    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise VocoderError(f"train.init={folder}: no model.safetensors (a speechkit vocoder folder is expected)")
    source = load_file(str(path))
    state = model.state_dict()
    copied = [k for k, v in state.items() if k in source and source[k].shape == v.shape]
    skipped = [k for k in state if k not in copied]
    if not copied:
        raise VocoderError(f"train.init={folder}: no tensor of that vocoder fits this model")
    model.load_state_dict({**state, **{k: source[k] for k in copied}})
    return copied, skipped


# ------------------------------------------------------------------------------------------------ loop
def train(cfg: VocoderTrainConfig) -> dict:
    """Trains (or resumes) a unit vocoder; returns the last logged values."""
    loop = TrainLoop(cfg.out, cfg.train, max_steps=cfg.optim.max_steps, config=cfg.to_dict(),
                     what="vocoder training", error=VocoderError)
    device, o = loop.device, cfg.optim
    if device.type == "cuda":  # TF32 convolutions and matmuls: the generator's cost, at fp32's range
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # training segments have one fixed shape: let cuDNN pick its kernels
    hop = cfg.model.generator.hop_length
    train_set, valid_set, speakers, styles, f0_stats = _datasets(cfg, hop)
    mcfg = CodeHiFiGANConfig(num_units=cfg.model.num_units, embedding_dim=cfg.model.embedding_dim,
                             num_speakers=len(speakers or []), num_styles=len(styles or []), f0=cfg.model.f0,
                             duration_predictor=cfg.model.duration_predictor, generator=cfg.model.generator.plain(),
                             sample_rate=cfg.model.sample_rate)
    model = build_code_hifigan(mcfg)
    model.generator.init_weights()
    if cfg.train.init and not loop.resuming:
        copied, skipped = warm_start(model, cfg.train.init)
        log.info("warm start from %s: %d tensors copied, %d left fresh (%s)", cfg.train.init, len(copied),
                 len(skipped), ", ".join(skipped[:6]) + (" ..." if len(skipped) > 6 else ""))
    model.generator.apply_weight_norm()
    mpd, msd = build_discriminators(cfg.model.discriminator_scale)
    nets = nn.ModuleDict({"generator": model, "mpd": mpd, "msd": msd}).to(device)
    optim_g = torch.optim.AdamW(model.parameters(), o.lr, betas=o.betas, weight_decay=o.weight_decay)
    optim_d = torch.optim.AdamW([*mpd.parameters(), *msd.parameters()], o.lr, betas=o.betas,
                                weight_decay=o.weight_decay)
    sched_g = torch.optim.lr_scheduler.ExponentialLR(optim_g, o.lr_decay)
    sched_d = torch.optim.lr_scheduler.ExponentialLR(optim_d, o.lr_decay)
    optimizers, schedulers = {"g": optim_g, "d": optim_d}, {"g": sched_g, "d": sched_d}
    loop.resume(nets, optimizers, schedulers)
    gen, mpd, msd = loop.ddp(GeneratorStep(model, cfg.train.channels_last)), loop.ddp(mpd), loop.ddp(msd)
    m = cfg.mel
    mel = MelSpectrogram(cfg.model.sample_rate, m.n_fft, m.num_mels, m.hop_size, m.win_size, m.fmin, m.fmax).to(device)
    table: list = []  # computed at the first export, from the training speech

    def export() -> None:
        if not table:
            table.append(speaker_table_of(train_set, speakers, cfg.train.speaker_embeddings))
        _export(model, mcfg, speakers, styles, f0_stats, loop.out, loop.step, cfg.train.export_official, table[0])

    def epoch_end(epoch: int) -> None:
        sched_g.step()
        if loop.step > cfg.train.discriminator_start:  # the discriminators' decay starts with their training
            sched_d.step()

    nets.train()
    for indices in loop.batches(lambda epoch: epoch_indices(len(train_set), o.batch_size, epoch, cfg.train.seed),
                                on_epoch=train_set.set_epoch, on_epoch_end=epoch_end):
        batch = {k: v.to(device) for k, v in collate([train_set[i] for i in indices]).items()}
        losses = train_step(batch, gen, mpd, msd, mel, optim_g, optim_d, cfg,
                            adversarial=loop.step >= cfg.train.discriminator_start, precision=loop.precision)
        loop.advance(losses, log_extra=lambda: {"lr": optim_g.param_groups[0]["lr"]},
                     force_log=loop.step + 1 == cfg.train.discriminator_start)  # a line as the GAN losses join
        if loop.due(cfg.train.valid_every):
            v = validate(model, valid_set, mel, device) if loop.is_main else {}
            if v:
                loop.log({"step": loop.step, **v})
            loop.barrier()
        if loop.due(cfg.train.save_every):
            loop.save(nets, optimizers, schedulers, extra={"speakers": speakers, "styles": styles}, export=export)
    return loop.last


def run(cfg) -> int:
    """Entry point of ``speechkit train vocoder`` (``cfg``: the composed Hydra config)."""
    config = from_values(VocoderTrainConfig, cfg, error=VocoderError, what="train vocoder")
    try:
        train(config)
    finally:
        distributed.cleanup()
    return 0
