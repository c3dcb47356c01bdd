"""The Expresso dataset layout: file names, transcripts and splits (real dataset and synthetic mini-Expresso).

Facts of the released layout this module reads:

- read speech: ``audio_48khz/read/{spk}/{style}/{base|longform}/{stem}.wav`` with stems ``{spk}_{style}_{id}``,
  ``{spk}_{style}_{substyle}_{id}`` (e.g. ``ex01_default_emphasis_00183``) or ``{spk}_{style}_longform_{id}``;
- dialogues: ``audio_48khz/conversational/{spkA}-{spkB}/{style}/{stem}.wav`` with stems
  ``{spkA}-{spkB}_{style}_{id}``, where ``style`` may be ``{styleA}-{styleB}`` (one per channel);
- ``read_transcriptions.txt``: ``{stem}<TAB>{text}``;
- ``splits/{train,dev,test}.txt``: ``{stem}`` or ``{stem}<TAB>({start}s,{end}s)`` with either bound optional,
  lines starting with ``#`` are comments;
- ``VAD_segments.txt``: ``{stem}[/channel{1,2}]<TAB>(start, end) (start, end) ...`` for long files (dialogues,
  one line per channel; longform read speech).

:func:`prepare_expresso` cuts the corpus into the short-segment dataset of the Expresso resynthesis experiments:
every split entry is restricted to its ``(start, end)`` window, long files are cut at their VAD regions (one
speaker per channel for dialogues), regions shorter than 0.5 s are dropped and regions longer than 15 s are
chopped into 15 s pieces; audio is resampled from 48 to 16 kHz.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from speechkit.errors import SpeechkitError
from speechkit.utils.files import read_text

__all__ = ["ExpressoError", "SplitEntry", "StemInfo", "parse_stem", "audio_path", "read_splits",
           "read_transcriptions", "read_vad_segments", "prepare_expresso", "Segment", "plan_segments", "short_segments"]

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"  # 12, 12.5, 12., .5 (not "..." or "1.2.3": found by tests/reliability)
_SEGMENT = re.compile(rf"^\(\s*({_NUMBER}?)s?\s*,\s*({_NUMBER}?)s?\s*\)$")
_VAD_REGION = re.compile(rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)")


class ExpressoError(SpeechkitError, ValueError):
    """An Expresso-layout file is missing or malformed."""


@dataclass(frozen=True)
class StemInfo:
    """What a file stem says: ``kind`` is ``"read"`` or ``"conversational"``; for dialogues ``speaker`` is
    ``"spkA-spkB"`` and ``style`` may be ``"styleA-styleB"``; ``substyle`` is e.g. ``"emphasis"`` or
    ``"longform"`` (read speech only)."""

    stem: str
    kind: str
    speaker: str
    style: str
    substyle: str | None
    id: str


@dataclass(frozen=True)
class SplitEntry:
    """One line of a split file: a stem and an optional segment in seconds (``None`` = file start / end)."""

    stem: str
    start: float | None = None
    end: float | None = None


def parse_stem(stem: str) -> StemInfo:
    """Splits an Expresso file stem into speaker, style, substyle and id.

    Example:
        >>> parse_stem("ex01_default_emphasis_00183").substyle
        'emphasis'
        >>> parse_stem("ex04-ex01_animal-animaldir_005").speaker
        'ex04-ex01'
    """
    parts = stem.split("_")
    if len(parts) < 3 or not parts[-1].isdigit():
        raise ExpressoError(f"{stem!r} is not an Expresso file stem ({{speaker}}_{{style}}[_{{substyle}}]_{{id}})")
    kind = "conversational" if "-" in parts[0] else "read"
    substyle = "_".join(parts[2:-1]) or None
    if kind == "conversational" and substyle is not None:
        raise ExpressoError(f"{stem!r}: dialogue stems are {{spkA}}-{{spkB}}_{{style}}_{{id}}")
    return StemInfo(stem, kind, parts[0], parts[1], substyle, parts[-1])


def audio_path(root: str | os.PathLike, stem: str) -> Path:
    """The wav file of ``stem`` under an Expresso root (``{root}/audio_48khz/...``)."""
    s = parse_stem(stem)
    base = Path(root) / "audio_48khz"
    if s.kind == "conversational":
        return base / "conversational" / s.speaker / s.style / f"{stem}.wav"
    folder = "longform" if s.substyle == "longform" else "base"
    return base / "read" / s.speaker / s.style / folder / f"{stem}.wav"


def read_transcriptions(root: str | os.PathLike) -> dict[str, str]:
    """Reads ``read_transcriptions.txt``: stem -> text."""
    path = Path(root) / "read_transcriptions.txt"
    if not path.is_file():
        raise ExpressoError(f"{path}: missing (an Expresso root holds read_transcriptions.txt)")
    out = {}
    for n, line in enumerate(read_text(path, ExpressoError).splitlines(), start=1):
        if not line.strip():
            continue
        stem, sep, text = line.partition("\t")
        if not sep:
            raise ExpressoError(f"{path}:{n}: expected 'stem<TAB>text', found {line!r}")
        out[stem] = text.strip()
    return out


def read_splits(root: str | os.PathLike) -> dict[str, list[SplitEntry]]:
    """Reads ``splits/{train,dev,test}.txt``; returns split name -> entries in file order."""
    out = {}
    for split in SPLITS:
        path = Path(root) / "splits" / f"{split}.txt"
        if not path.is_file():
            raise ExpressoError(f"{path}: missing (an Expresso root holds splits/{split}.txt)")
        entries = []
        for n, line in enumerate(read_text(path, ExpressoError).splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            stem, _, seg = line.partition("\t")
            start = end = None
            if seg.strip():
                m = _SEGMENT.match(seg.strip())
                if m is None:
                    raise ExpressoError(f"{path}:{n}: segment must look like '(12.5s,60.0s)', found {seg!r}")
                start = float(m.group(1)) if m.group(1) else None
                end = float(m.group(2)) if m.group(2) else None
            entries.append(SplitEntry(stem.strip(), start, end))
        out[split] = entries
    return out


def read_vad_segments(root: str | os.PathLike) -> dict[tuple[str, int | None], list[tuple[float, float]]]:
    """Reads ``VAD_segments.txt``: ``(stem, channel)`` -> speech regions in seconds (channel 1/2, or ``None`` for
    a mono file). An absent file gives an empty dict (then :func:`prepare_expresso` runs a VAD itself).

    Raises:
        ExpressoError: a malformed line (the message names the file and line).
    """
    path = Path(root) / "VAD_segments.txt"
    if not path.is_file():
        return {}
    out: dict[tuple[str, int | None], list[tuple[float, float]]] = {}
    for n, line in enumerate(read_text(path, ExpressoError).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, rest = line.partition("\t")
        if not sep:
            raise ExpressoError(f"{path}:{n}: expected '{{stem}}[/channel{{1,2}}]<TAB>(start, end) ...', found "
                                f"{line[:80]!r}")
        stem, _, chan = key.strip().partition("/")
        channel = None
        if chan:
            if chan not in ("channel1", "channel2"):
                raise ExpressoError(f"{path}:{n}: channel must be 'channel1' or 'channel2', found {chan!r}")
            channel = int(chan[-1])
        regions = []
        for m in _VAD_REGION.finditer(rest):
            start, end = float(m.group(1)), float(m.group(2))
            if end < start:
                raise ExpressoError(f"{path}:{n}: segment ends before it starts: ({start}, {end})")
            regions.append((start, end))
        leftover = _VAD_REGION.sub("", rest).strip()
        if leftover:
            raise ExpressoError(f"{path}:{n}: segments must look like '(1.5, 3.25)', found {leftover[:60]!r}")
        out.setdefault((stem.strip(), channel), []).extend(regions)
    return out



# ------------------------------------------------------------------------------------- the short-segment dataset
MARKER = ".speechkit_complete.json"
PREPARE_VERSION = 1


@dataclass(frozen=True)
class Segment:
    """One utterance of the prepared dataset.

    Attributes:
        id: output name: the file stem for a whole read file, ``{stem}_rss{k:03d}`` for a piece of a read file,
            ``{stem}-{speaker}_{style}_css{k:03d}`` for a dialogue turn (the names of Expresso's own processing).
        split: ``train``, ``dev`` or ``test``.
        stem: the source file's stem.
        kind: ``read`` or ``conversational``.
        speaker: who speaks (for a dialogue, the speaker of ``channel``).
        style: the style of that speaker.
        substyle: read speech only (``emphasis``, ``longform``, ...).
        channel: 1 or 2 for dialogues (``None`` for mono files).
        start: start in seconds in the source file.
        end: end in seconds in the source file.
        text: the transcript when the segment is a whole read file, else ``None``.
    """

    id: str
    split: str
    stem: str
    kind: str
    speaker: str
    style: str
    substyle: str | None
    channel: int | None
    start: float
    end: float
    text: str | None = None


def short_segments(duration: float, window: tuple[float | None, float | None],
                   regions: list[tuple[float, float]] | None, *, max_seconds: float = 15.0,
                   min_seconds: float = 0.5) -> list[tuple[float, float]]:
    """Expresso's cutting rule for one file (or one channel).

    Speech ``regions`` (the whole file when ``None``) are clipped to the split's ``window`` (``None`` bounds =
    file start / end); a region shorter than ``min_seconds`` is dropped, one longer than ``max_seconds`` is cut
    into ``max_seconds`` pieces (a last piece shorter than ``min_seconds`` is dropped).

    Example:
        >>> short_segments(40.0, (None, 30.0), [(1.0, 2.0), (3.0, 35.0)])
        [(1.0, 2.0), (3.0, 18.0), (18.0, 30.0)]
    """
    lo = 0.0 if window[0] is None else window[0]
    hi = duration if window[1] is None else min(window[1], duration)
    out = []
    for start, end in ([(0.0, duration)] if regions is None else regions):
        start, end = max(start, lo), min(end, hi)
        while end - start > max_seconds + 1e-9:
            out.append((round(start, 4), round(start + max_seconds, 4)))
            start += max_seconds
        if end - start >= min_seconds:
            out.append((round(start, 4), round(end, 4)))
    return out


def _speaker_style(info: StemInfo, channel: int | None) -> tuple[str, str]:
    if info.kind == "read":
        return info.speaker, info.style
    speakers, styles = info.speaker.split("-"), info.style.split("-")
    return speakers[channel - 1], styles[channel - 1] if len(styles) == 2 else styles[0]


def _silero_regions(path: Path, channel: int | None) -> list[tuple[float, float]]:
    """Speech regions (seconds) found by silero-vad (its model ships in the package)."""
    from silero_vad import get_speech_timestamps, load_silero_vad

    from speechkit.audio import io as audio_io

    wav, sr = audio_io.load(path, sample_rate=16000, channel=None if channel is None else channel - 1)
    stamps = get_speech_timestamps(wav, load_silero_vad(), sampling_rate=sr, return_seconds=True)
    return [(float(s["start"]), float(s["end"])) for s in stamps]


def plan_segments(stem: str, windows: list[tuple[str, SplitEntry]], duration: float, channels: int,
                  vad: dict, *, path: Path | None = None, text: str | None = None, max_seconds: float = 15.0,
                  min_seconds: float = 0.5, regions_fn=None) -> list[Segment]:
    """The segments of one source file across all splits that list it, numbered in time order per channel.

    Args:
        stem: the file stem.
        windows: ``(split, entry)`` for every split line naming ``stem``.
        duration: the file's length in seconds.
        channels: its channel count (dialogues: 2).
        vad: :func:`read_vad_segments`'s table.
        path: the audio file (for silero-vad when ``vad`` has no entry).
        text: the file's transcript (kept only for whole-file segments).
        max_seconds: longest segment.
        min_seconds: shortest segment kept.
        regions_fn: ``(channel) -> regions`` when ``vad`` has no entry and the file needs cutting (dialogues,
            read files longer than ``max_seconds``); default silero-vad.

    Returns:
        The segments, sorted by channel then start time.
    """
    info = parse_stem(stem)
    if info.kind == "conversational" and channels != 2:
        raise ExpressoError(f"{stem}: a dialogue file must be stereo (one speaker per channel); it has {channels} "
                            "channel(s)")
    out = []
    for channel in ((1, 2) if info.kind == "conversational" else (None,)):
        regions = vad.get((stem, channel))
        if regions is None and (info.kind == "conversational" or duration > max_seconds):
            regions = (regions_fn or (lambda ch: _silero_regions(path, ch)))(channel)
        pieces = sorted((s, e, split) for split, w in windows
                        for s, e in short_segments(duration, (w.start, w.end), regions, max_seconds=max_seconds,
                                                   min_seconds=min_seconds))
        speaker, style = _speaker_style(info, channel)
        for k, (s, e, split) in enumerate(pieces):
            whole = regions is None and len(pieces) == 1 and (s, e) == (0.0, round(duration, 4))
            if whole:
                seg_id = stem
            elif info.kind == "read":
                seg_id = f"{stem}_rss{k:03d}"
            else:
                seg_id = f"{stem}-{speaker}_{style}_css{k:03d}"
            out.append(Segment(seg_id, split, stem, info.kind, speaker, style, info.substyle, channel, s, e,
                               text if whole else None))
    return out


def _prepare_file(job: dict) -> tuple[list[dict], list[tuple[str, str]]]:
    """Cuts and resamples one source file; returns its manifest records and its errors."""
    import torch

    from speechkit.audio import io as audio_io

    torch.set_num_threads(1)
    root, out, stem = Path(job["root"]), Path(job["out"]), job["stem"]
    sr = job["sample_rate"]
    try:
        path = audio_path(root, stem)
        head = audio_io.info(path)
        windows = [(split, SplitEntry(stem, *w)) for split, w in job["windows"]]
        vad = {(stem, ch): r for ch, r in job["vad"]}
        segments = plan_segments(stem, windows, head.duration, head.num_channels, vad, path=path,
                                 text=job["text"], max_seconds=job["max_seconds"], min_seconds=job["min_seconds"])
    except (SpeechkitError, ValueError) as e:
        return [], [(stem, str(e))]
    records, errors = [], []
    for seg in segments:
        rel = Path(seg.split) / seg.speaker / f"{seg.kind[:4]}-{seg.style}" / f"{seg.id}.wav"
        target = out / rel
        try:
            if not target.exists():  # finished files are kept: an interrupted run resumes
                first = int(round(seg.start * head.sample_rate))
                count = max(1, int(round(seg.end * head.sample_rate)) - first)
                wav, _ = audio_io.load(path, sample_rate=sr, channel=None if seg.channel is None else seg.channel - 1,
                                       frame_offset=first, num_frames=count)
                audio_io.save(target, wav, sr, subtype="PCM_16")
            num_samples = audio_io.info(target).num_frames
        except audio_io.AudioError as e:
            errors.append((seg.id, str(e)))
            continue
        records.append({**asdict(seg), "audio": rel.as_posix(), "num_samples": num_samples,
                        "duration": round(num_samples / sr, 4)})
    return records, errors


def prepare_expresso(root: str | os.PathLike, out: str | os.PathLike, *, sample_rate: int = 16000,
                     max_seconds: float = 15.0, min_seconds: float = 0.5, splits: tuple[str, ...] = SPLITS,
                     jobs: int = 1) -> Path:
    """Cuts an Expresso root (the release or the synthetic mini-Expresso) into the short-segment dataset.

    Writes under ``out``:

    - ``{split}/{speaker}/{read|conv}-{style}/{id}.wav``: 16-bit mono segments at ``sample_rate``;
    - ``{split}.jsonl``: one :class:`Segment` a line plus ``audio`` (path relative to ``out``), ``num_samples``
      and ``duration``; read by :class:`speechkit.data.datasets.ExpressoDataset`;
    - ``{split}.tsv``: the same audio as a fairseq manifest (for ``speechkit encode``);
    - ``errors.tsv``: files that could not be used, with the reason (the job goes on without them).

    Dialogues are split by speaker (channel 1 = the first speaker of ``{spkA}-{spkB}``); speech regions come from
    ``VAD_segments.txt``, or from silero-vad for files it does not list. Re-running is safe: finished segments are
    kept, and a completion marker makes a second call with the same settings return at once.

    Args:
        root: the Expresso root (``audio_48khz/``, ``splits/``, ``read_transcriptions.txt``).
        out: output folder.
        sample_rate: output rate (16000 for HuBERT and the Expresso vocoders).
        max_seconds: longest segment.
        min_seconds: shortest segment kept.
        splits: which splits to prepare.
        jobs: worker processes.

    Returns:
        ``out``.

    Raises:
        ExpressoError: ``root`` is not an Expresso root, or ``out`` holds a dataset prepared with other settings.

    Example:
        >>> prepare_expresso("data/expresso", "data/expresso_16k", jobs=2)
        >>> ds = ExpressoDataset("data/expresso_16k", "test")
    """
    import json

    from tqdm import tqdm

    from speechkit.data.manifest import ManifestEntry, write_tsv
    from speechkit.utils.files import atomic_open

    root, out = Path(root), Path(out)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or not splits:
        raise ExpressoError(f"splits must be a non-empty subset of {SPLITS}. Found {tuple(splits)}")
    if not 0 < min_seconds <= max_seconds:
        raise ExpressoError(f"need 0 < min_seconds <= max_seconds. Found {min_seconds}, {max_seconds}")
    if not (root / "audio_48khz").is_dir():
        raise ExpressoError(f"{root}: not an Expresso root (no audio_48khz/ folder)")
    settings = {"root": str(root.resolve()), "sample_rate": sample_rate, "max_seconds": max_seconds,
                "min_seconds": min_seconds, "splits": list(splits), "version": PREPARE_VERSION}
    marker = out / MARKER
    if marker.exists():
        found = json.loads(marker.read_text())
        if found == settings:
            return out
        raise ExpressoError(f"{out}: holds an Expresso dataset prepared with other settings ({found}); requested "
                            f"{settings}. Use another folder or delete this one.")
    table = read_splits(root)
    texts = read_transcriptions(root)
    vad = read_vad_segments(root)
    windows: dict[str, list] = {}
    for split in splits:
        for e in table[split]:
            windows.setdefault(e.stem, []).append((split, (e.start, e.end)))
    vad_by_stem: dict[str, list] = {}
    for (stem, channel), regions in vad.items():
        vad_by_stem.setdefault(stem, []).append((channel, regions))
    jobs_ = [{"root": str(root), "out": str(out), "stem": stem, "windows": w, "text": texts.get(stem),
              "vad": vad_by_stem.get(stem, []),
              "sample_rate": sample_rate, "max_seconds": max_seconds, "min_seconds": min_seconds}
             for stem, w in windows.items()]
    records, errors = _run(jobs_, jobs)
    by_split: dict[str, list[dict]] = {s: [] for s in splits}
    for r in records:
        by_split[r["split"]].append(r)
    for split, rows in by_split.items():
        rows.sort(key=lambda r: r["id"])
        with atomic_open(out / f"{split}.jsonl") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        write_tsv(out / f"{split}.tsv", out, [ManifestEntry(r["audio"], r["num_samples"]) for r in rows])
    with atomic_open(out / "errors.tsv") as f:
        f.writelines(f"{name}\t{why}\n" for name, why in errors)
    if errors:
        log.warning("%d Expresso file(s) or segment(s) skipped; reasons in %s", len(errors), out / "errors.tsv")
    with atomic_open(marker) as f:
        json.dump(settings, f, indent=2)
    tqdm.write(f"prepared {len(records)} segments in {out} "
               + ", ".join(f"{s}: {len(rows)}" for s, rows in by_split.items()))
    return out


def _run(jobs: list[dict], workers: int) -> tuple[list[dict], list[tuple[str, str]]]:
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from tqdm import tqdm

    records, errors = [], []
    with tqdm(total=len(jobs), desc="expresso", unit="file", disable=None) as bar:
        if workers <= 1:
            results = (_prepare_file(j) for j in jobs)
            for r, e in results:
                records += r
                errors += e
                bar.update()
        else:  # spawn, not fork: forking after torch/OpenMP threads started can deadlock
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                for r, e in pool.map(_prepare_file, jobs, chunksize=4):
                    records += r
                    errors += e
                    bar.update()
    return records, errors
