"""The synthetic mini-Expresso: an offline, deterministic speech corpus in the real Expresso layout.

Layout written under ``root`` (the same names as the released Expresso dataset)::

    audio_48khz/read/{speaker}/{style}/base/{speaker}_{style}_{id:05d}.wav       mono, 48 kHz, 24-bit
    audio_48khz/conversational/{spkA}-{spkB}/{style or styleA-styleB}/{spkA}-{spkB}_{style}_{id:03d}.wav
                                                                                   stereo: channel 1 = spkA, 2 = spkB
    read_transcriptions.txt      {file stem}<TAB>{text}, one line per read file
    VAD_segments.txt             {conversation stem}/channel{1,2}<TAB>(start, end) (start, end) ...
    splits/{train,dev,test}.txt  {file stem}[<TAB>(start,end)] as in Expresso's released splits
    README.txt                   what was generated and how

Speakers are MBROLA diphone voices (us1 F, us2 M, us3 M, en1 M), or espeak-ng formant voices when MBROLA is not
installed. Styles are synthesis controls: ``default``, ``whisper`` (LPC noise excitation), ``fast`` and ``slow``
(tempo), ``animated`` (higher pitch, wider pitch range). Sentences come from
:mod:`speechkit.synth.sentences`; every read file speaks a different sentence.

Splits follow Expresso's rule: per speaker and style, the last files go to ``test`` until they reach the target
duration (60 s, or 10% of the style's total when it has under 10 minutes), the last remaining ones to ``dev``, the
rest to ``train``. Conversations are cut at a turn boundary: the first part of the first file of each speaker pair
and style goes to ``test``, of the second file to ``dev``, the rest to ``train``.

Re-running is safe: finished files are kept, a completion marker records the settings, and a second call with the
same settings returns at once.
"""

from __future__ import annotations

import json
import logging
import math
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from speechkit.errors import SpeechkitError
from speechkit.utils.files import atomic_open

__all__ = ["STYLES", "SyntheticCorpusConfig", "prepare_mini_expresso", "expresso_split_rule", "phone_alignments"]

log = logging.getLogger(__name__)

MARKER = ".speechkit_complete.json"
GENERATOR_VERSION = 1

# Style name -> synthesis controls (see speechkit.synth.tts.Prosody).
STYLES: dict[str, dict] = {
    "default": dict(tempo=1.0, pitch=1.0, pitch_range=1.0),
    "whisper": dict(tempo=1.05, pitch=1.0, pitch_range=1.0, whisper=True),
    "fast": dict(tempo=0.65, pitch=1.0, pitch_range=1.0),
    "slow": dict(tempo=1.5, pitch=0.97, pitch_range=0.9),
    "animated": dict(tempo=0.95, pitch=1.35, pitch_range=1.8, volume=1.1),
}


@dataclass(frozen=True)
class SyntheticCorpusConfig:
    """Settings of a synthetic mini-Expresso.

    Attributes:
        minutes: approximate total duration of the read speech, spread evenly over speakers and styles (the
            size knob: a minute or two for tests, 120+ for training).
        seed: seed of sentences and per-utterance prosody jitter.
        voices: ``"auto"`` (MBROLA when installed, else espeak-ng), ``"mbrola"`` or ``"espeak"``.
        speakers: speaker names to use (default: all four of the chosen engine).
        styles: style names from :data:`STYLES` (default: all).
        conversations: stereo dialogue files per speaker pair and style pair.
        turns: turns per dialogue.
        text: a UTF-8 file of extra sentences, one a line (e.g. ``data_prep/wordnet_sentences.py``'s WordNet
            examples), mixed with the grammar's sentences so ordinary English words and phone contexts are covered;
            ``None``: the grammar alone.
        text_share: share of read utterances taken from ``text`` (the rest from the grammar).
        sample_rate: output rate (Expresso: 48000).
        subtype: sample encoding (Expresso: 24-bit PCM).
    """

    minutes: float = 2.0
    seed: int = 0
    voices: str = "auto"
    speakers: tuple[str, ...] | None = None
    styles: tuple[str, ...] | None = None
    conversations: int = 1
    turns: int = 6
    text: str | None = None
    text_share: float = 0.5
    sample_rate: int = 48000
    subtype: str = "PCM_24"
    version: int = field(default=GENERATOR_VERSION)

    def validate(self) -> None:
        if not self.minutes > 0:
            raise ValueError(f"minutes must be > 0. Found {self.minutes}")
        if self.voices not in ("auto", "mbrola", "espeak"):
            raise ValueError(f"voices must be 'auto', 'mbrola' or 'espeak'. Found {self.voices!r}")
        unknown = set(self.styles or ()) - set(STYLES)
        if unknown:
            raise ValueError(f"unknown styles {sorted(unknown)}; known: {sorted(STYLES)}")
        if not 0.0 <= self.text_share <= 1.0:
            raise ValueError(f"text_share must be in [0, 1]. Found {self.text_share}")
        if self.text is not None and not Path(self.text).is_file():
            raise ValueError(f"text: {self.text}: no such file (sentences one a line)")
        if self.conversations < 0 or self.turns < 2:
            raise ValueError(f"conversations must be >= 0 and turns >= 2. Found {self.conversations}, {self.turns}")


def _voice_table(voices: str) -> dict:
    from speechkit.synth import tts

    if voices == "espeak" or (voices == "auto" and not all(tts.mbrola_available(v) for v in tts.MBROLA_VOICES)):
        if voices == "auto":
            log.warning("MBROLA voices are not installed: using espeak-ng formant voices instead")
        return tts.ESPEAK_VOICES
    return tts.MBROLA_VOICES


def expresso_split_rule(durations: list[float]) -> list[str]:
    """Expresso's split of one speaker/style's short files, in file order.

    The last files go to ``test`` until their duration reaches the target (60 s, or 10% of the total when the
    total is under 10 minutes), then the last remaining files to ``dev`` likewise, the rest to ``train``. Each of
    dev and test gets at least one file when there are three or more.

    Args:
        durations: file durations in seconds, in id order.

    Returns:
        One of ``"train"``, ``"dev"``, ``"test"`` per file.
    """
    total = sum(durations)
    target = 60.0 if total >= 600 else 0.1 * total
    out = ["train"] * len(durations)
    i = len(durations) - 1
    for split in ("test", "dev"):
        acc = 0.0
        while i >= 1 and (acc < target or acc == 0.0) and len(durations) >= 3:
            out[i] = split
            acc += durations[i]
            i -= 1
    return out


def _prosody(style: str, rng: random.Random):
    """The style's synthesis controls with a little seeded jitter of tempo and pitch."""
    from speechkit.synth.tts import Prosody

    controls = dict(STYLES[style])
    controls["tempo"] *= math.exp(rng.uniform(-0.05, 0.05))
    controls["pitch"] *= math.exp(rng.uniform(-0.04, 0.04))
    return Prosody(**controls)


def _render(text: str, voice, style: str, rng: random.Random, sample_rate: int) -> np.ndarray:
    """Synthesises one utterance with a little seeded jitter of tempo and pitch, at ``sample_rate``."""
    import torch

    from speechkit.audio.io import resample
    from speechkit.synth.tts import synthesize

    syn = synthesize(text, voice, _prosody(style, rng), seed=rng.randrange(2**31))
    return resample(torch.from_numpy(syn.wav), syn.sample_rate, sample_rate).numpy()


def phone_alignments(root: str | Path, stems: list[str] | None = None) -> dict[str, list[tuple[str, float, float]]]:
    """The phones MBROLA spoke in each read file of a synthetic mini-Expresso, with their times in seconds.

    Recomputed from the transcript, the voice, the style and the file's seeded jitter exactly as the corpus was
    rendered (espeak-ng's phoneme stream, rescaled), without rendering audio again: the forced alignment a real
    corpus would need, for free. ``"_"`` is silence.

    Args:
        root: a finished synthetic mini-Expresso (MBROLA voices).
        stems: read-file stems (default: all read files).

    Returns:
        stem -> ``[(phone, start, end), ...]``.

    Raises:
        SpeechkitError: not a finished synthetic corpus, made with espeak-ng voices (no phone timings), or an
            unknown stem.
    """
    from speechkit.data.corpora.expresso import parse_stem, read_transcriptions
    from speechkit.data.phonemize import espeak_pho
    from speechkit.synth import tts

    root = Path(root)
    marker = root / MARKER
    if not marker.is_file():
        raise SpeechkitError(f"{root}: not a finished synthetic mini-Expresso (no {MARKER})")
    cfg = json.loads(marker.read_text())
    table = _voice_table(cfg["voices"])
    if table is not tts.MBROLA_VOICES:
        raise SpeechkitError(f"{root}: phone timings need the MBROLA voices (this corpus uses espeak-ng's)")
    texts = read_transcriptions(root)
    out = {}
    for stem in stems if stems is not None else [s for s in texts if parse_stem(s).kind == "read"]:
        if stem not in texts:
            raise SpeechkitError(f"{root}/read_transcriptions.txt: no read file {stem!r}")
        info = parse_stem(stem)
        prosody = _prosody(info.style, random.Random(f"{cfg['seed']}-{stem}"))
        _, out[stem] = tts.apply_prosody(espeak_pho(texts[stem], table[info.speaker].espeak_voice), prosody)
    return out


def _read_cell(job: dict) -> list[tuple[str, str, float]]:
    """Synthesises one speaker/style's read files until the target duration; returns (stem, text, seconds)."""
    import torch

    from speechkit.audio import io as audio_io

    torch.set_num_threads(1)
    cfg, voice, style = job["cfg"], job["voice"], job["style"]
    folder = Path(job["root"]) / "audio_48khz" / "read" / voice.name / style / "base"
    rows, total = [], 0.0
    for i, text in enumerate(job["sentences"]):
        if total >= job["target_seconds"]:
            break
        stem = f"{voice.name}_{style}_{i + 1:05d}"
        path = folder / f"{stem}.wav"
        try:
            seconds = audio_io.info(path).duration
        except audio_io.AudioError:
            rng = random.Random(f"{cfg['seed']}-{stem}")
            wav = _render(text, voice, style, rng, cfg["sample_rate"])
            audio_io.save(path, wav, cfg["sample_rate"], subtype=cfg["subtype"])
            seconds = len(wav) / cfg["sample_rate"]
        rows.append((stem, text, seconds))
        total += seconds
    if total < job["target_seconds"]:
        raise SpeechkitError(f"ran out of sentences for {voice.name}/{style} (internal sentence budget too small)")
    return rows


def _active_span(wav: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """First and last sample above 1% of the peak, in seconds."""
    idx = np.flatnonzero(np.abs(wav) > 0.01 * np.max(np.abs(wav)))
    return idx[0] / sample_rate, (idx[-1] + 1) / sample_rate


def _conversation(job: dict) -> dict:
    """Synthesises one stereo dialogue; returns its stem, duration and per-channel turns."""
    import torch

    from speechkit.audio import io as audio_io

    torch.set_num_threads(1)
    cfg, (va, vb), (sa, sb) = job["cfg"], job["voices"], job["styles"]
    sr = cfg["sample_rate"]
    style_dir = sa if sa == sb else f"{sa}-{sb}"
    stem = f"{va.name}-{vb.name}_{style_dir}_{job['index']:03d}"
    path = Path(job["root"]) / "audio_48khz" / "conversational" / f"{va.name}-{vb.name}" / style_dir / f"{stem}.wav"
    rng = random.Random(f"{cfg['seed']}-{stem}")
    pieces, turns, t = [], [], 0.5
    for k, text in enumerate(job["sentences"]):
        channel, voice, style = (0, va, sa) if k % 2 == 0 else (1, vb, sb)
        wav = _render(text, voice, style, rng, sr)
        start, end = _active_span(wav, sr)
        pieces.append((channel, int(round(t * sr)), wav))
        turns.append({"channel": channel + 1, "start": round(t + start, 2), "end": round(t + end, 2), "text": text})
        t += len(wav) / sr + rng.uniform(0.2, 0.8)
    total = int(round((t + 0.3) * sr))
    if not path.exists():
        stereo = np.zeros((2, total), dtype=np.float32)
        for channel, offset, wav in pieces:
            stereo[channel, offset : offset + len(wav)] += wav
        audio_io.save(path, stereo, sr, subtype=cfg["subtype"])
    return {"stem": stem, "duration": total / sr, "turns": turns, "group": f"{va.name}-{vb.name}/{style_dir}",
            "index": job["index"]}


def _conversation_plan(speakers: list, styles: list[str]) -> list[tuple[tuple, tuple[str, str]]]:
    """Speaker pairs and their style pairs: one same-style and one mixed-style pair per speaker pair."""
    pairs = [(speakers[i], speakers[i + 1]) for i in range(0, len(speakers) - 1, 2)]
    plan = []
    for n, pair in enumerate(pairs):
        plan.append((pair, ("default", "default") if "default" in styles else (styles[0], styles[0])))
        others = [s for s in styles if s != "default"]
        if others:
            plan.append((pair, (others[n % len(others)], "default" if "default" in styles else others[0])))
    return plan


def _cut_point(conv: dict, fraction: float = 1 / 3) -> float:
    """A time between two turns close to ``fraction`` of the dialogue, for Expresso-style segment splits."""
    turns = conv["turns"]
    gaps = [(turns[k]["end"] + turns[k + 1]["start"]) / 2 for k in range(len(turns) - 1)]
    return round(min(gaps, key=lambda g: abs(g - fraction * conv["duration"])), 2)


def prepare_mini_expresso(root: str | Path, config: SyntheticCorpusConfig | None = None, *, jobs: int = 1,
                          **overrides) -> Path:
    """Generates (or completes) the synthetic mini-Expresso under ``root``.

    Args:
        root: output folder.
        config: corpus settings; keyword ``overrides`` replace its fields (``minutes=10``, ``seed=1``, ...).
        jobs: worker processes.

    Returns:
        ``root``.

    Raises:
        SpeechkitError: ``root`` holds a finished corpus made with other settings.

    Example:
        >>> prepare_mini_expresso("data/mini_expresso", minutes=5, jobs=2)
    """
    cfg = SyntheticCorpusConfig(**{**asdict(config or SyntheticCorpusConfig()), **overrides})
    if cfg.speakers is not None:
        cfg = SyntheticCorpusConfig(**{**asdict(cfg), "speakers": tuple(cfg.speakers)})
    if cfg.styles is not None:
        cfg = SyntheticCorpusConfig(**{**asdict(cfg), "styles": tuple(cfg.styles)})
    cfg.validate()
    root = Path(root)
    wanted = json.loads(json.dumps(asdict(cfg)))
    marker = root / MARKER
    if marker.exists():
        # corpora made before a setting existed have its default
        found = {**json.loads(json.dumps(asdict(SyntheticCorpusConfig()))), **json.loads(marker.read_text())}
        if found == wanted:
            log.info("%s: already prepared", root)
            return root
        raise SpeechkitError(f"{root}: holds a synthetic corpus made with other settings ({found}); "
                             f"requested {wanted}. Use another folder or delete this one.")

    table = _voice_table(cfg.voices)
    names = list(cfg.speakers or table)
    missing = [n for n in names if n not in table]
    if missing:
        raise ValueError(f"unknown speakers {missing} for voices={cfg.voices!r}; known: {sorted(table)}")
    voices = [table[n] for n in names]
    styles = list(cfg.styles or STYLES)

    cells = [(v, s) for v in voices for s in styles]
    target = cfg.minutes * 60 / len(cells)
    per_cell = int(target / 0.8) + 4  # no utterance is shorter than 0.8 s
    plan = _conversation_plan(voices, styles)
    from speechkit.synth.sentences import generate_sentences

    pool = generate_sentences(len(cells) * per_cell + len(plan) * cfg.conversations * cfg.turns, seed=cfg.seed)
    if cfg.text is not None and cfg.text_share > 0:
        pool = _mix_text(pool, len(cells) * per_cell, cfg)
    cfg_dict = asdict(cfg)
    read_jobs = [dict(cfg=cfg_dict, root=str(root), voice=v, style=s, target_seconds=target,
                      sentences=pool[c : len(cells) * per_cell : len(cells)]) for c, (v, s) in enumerate(cells)]
    conv_jobs, offset = [], len(cells) * per_cell
    for pair, style_pair in plan:
        for k in range(cfg.conversations):
            conv_jobs.append(dict(cfg=cfg_dict, root=str(root), voices=pair, styles=style_pair, index=k + 1,
                                  sentences=pool[offset : offset + cfg.turns]))
            offset += cfg.turns

    read_rows, convs = _run_jobs(read_jobs, conv_jobs, jobs)
    _write_metadata(root, cfg, voices, styles, read_rows, convs)
    with atomic_open(marker) as f:
        json.dump(wanted, f, indent=2)
    return root


def _mix_text(pool: list[str], n_read: int, cfg: SyntheticCorpusConfig) -> list[str]:
    """The read part of ``pool`` with every ``1/text_share``-th sentence replaced by a line of ``cfg.text``
    (drawn without replacement, seeded); the dialogue part keeps the grammar."""
    lines = sorted({ln.strip() for ln in Path(cfg.text).read_text(encoding="utf-8").splitlines() if ln.strip()})
    if not lines:
        raise SpeechkitError(f"{cfg.text}: no sentence (one a line)")
    rng = random.Random(f"speechkit-text-mix-{cfg.seed}")
    rng.shuffle(lines)
    out, taken = list(pool), 0
    for i in range(n_read):
        if taken < len(lines) and (i + 1) * cfg.text_share >= taken + 1:  # an even spread at the chosen share
            out[i] = lines[taken]
            taken += 1
    return out


def _run_jobs(read_jobs: list[dict], conv_jobs: list[dict], jobs: int):
    from tqdm import tqdm

    total = len(read_jobs) + len(conv_jobs)
    with tqdm(total=total, desc="mini-expresso", unit="part", disable=None) as bar:
        if jobs <= 1:
            read_rows = [(_read_cell(j), bar.update())[0] for j in read_jobs]
            convs = [(_conversation(j), bar.update())[0] for j in conv_jobs]
        else:
            # spawn, not fork: forking a process that already ran torch/OpenMP threads can deadlock.
            with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
                read_futures = [pool.submit(_read_cell, j) for j in read_jobs]
                conv_futures = [pool.submit(_conversation, j) for j in conv_jobs]
                read_rows = [(f.result(), bar.update())[0] for f in read_futures]
                convs = [(f.result(), bar.update())[0] for f in conv_futures]
    return read_rows, convs


def _write_metadata(root: Path, cfg: SyntheticCorpusConfig, voices, styles, read_rows, convs) -> None:
    splits: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    with atomic_open(root / "read_transcriptions.txt") as f:
        for rows in read_rows:
            for (stem, text, _), split in zip(rows, expresso_split_rule([r[2] for r in rows]), strict=True):
                f.write(f"{stem}\t{text}\n")
                splits[split].append(stem)
    with atomic_open(root / "VAD_segments.txt") as f:
        f.write('#VAD segments of the conversational files. Format: "{filename}/channel{1,2}\\t{segments}"\n')
        f.write("#MODEL: exact turn boundaries from the synthesiser\n")
        for conv in convs:
            for ch in (1, 2):
                segs = " ".join(f"({t['start']}, {t['end']})" for t in conv["turns"] if t["channel"] == ch)
                f.write(f"{conv['stem']}/channel{ch}\t{segs}\n")
    for conv in convs:
        held_out = {1: "test", 2: "dev"}.get(conv["index"])
        if held_out is None:
            splits["train"].append(conv["stem"])
        else:
            cut = _cut_point(conv)
            splits[held_out].append(f"{conv['stem']}\t(,{cut}s)")
            splits["train"].append(f"{conv['stem']}\t({cut}s,)")
    for name, lines in splits.items():
        with atomic_open(root / "splits" / f"{name}.txt") as f:
            f.write('# If only one segment is extracted, it will have the format: '
                    '"{filename}\\t({startime(optional)},{endtime(optional)})"\n')
            f.writelines(line + "\n" for line in lines)
    read_seconds = sum(r[2] for rows in read_rows for r in rows)
    with atomic_open(root / "README.txt") as f:
        f.write(
            "Synthetic mini-Expresso, generated offline by speechkit (speechkit.synth.synthetic).\n"
            f"Settings: {json.dumps(asdict(cfg))}\n"
            f"Speakers: {', '.join(f'{v.name} ({v.engine} {v.espeak_voice}, {v.gender})' for v in voices)}\n"
            f"Styles: {', '.join(f'{s} {STYLES[s]}' for s in styles)}\n"
            f"Read speech: {sum(len(r) for r in read_rows)} files, {read_seconds / 60:.1f} min; "
            f"conversations: {len(convs)} stereo files, {sum(c['duration'] for c in convs) / 60:.1f} min.\n"
            "Layout, transcripts, VAD segments and splits follow the released Expresso dataset.\n"
            "Licence: the MBROLA voices (us1, us2, us3, en1) may be used for non-commercial and non-military\n"
            "purposes only; speech made with them inherits that restriction. espeak-ng voices are GPL-3.0.\n"
        )
