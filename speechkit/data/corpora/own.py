"""A user's own speech corpus, in any of four layouts, made uniform for the training recipes.

``prepare_own_data(audio, out)`` finds the utterances of ``audio`` (a folder tree, a LibriSpeech-style corpus, the
real Expresso release, or a manifest TSV), converts each to 16 kHz mono 16-bit WAV under ``out/wav/<speaker>/<id>.wav``
and writes, next to it:

- ``utterances.tsv``: ``id  speaker  split  seconds  text`` a line (a header first; text empty where there is none);
- ``splits/{train,dev,test}.txt``: the ids of each split (the names ``speechkit train unit_mel/vocos``'s
  ``data.train_list`` read);
- ``{train,dev,test}.tsv``: fairseq audio manifests of each split (``speechkit train kmeans/hubert``);
- ``bad.tsv``: files that could not be used, with the reason (only with ``skip_bad``; otherwise they stop the run).

Layouts (``layout="auto"`` detects them in this order):

- ``manifest``: ``audio`` is a ``.tsv`` file, either with a header naming the columns ``path`` (required), ``id``,
  ``speaker``, ``text`` (paths relative to the TSV's folder or absolute), or a fairseq manifest (first line the root
  folder, then ``relpath<TAB>samples``);
- ``expresso``: ``audio`` holds ``audio_48khz/`` and ``splits/`` (the real release): its read speech, the official
  splits and transcriptions;
- ``librispeech``: ``speaker/chapter/*.flac`` with ``speaker-chapter.trans.txt`` transcripts beside them;
- ``folder``: any tree of audio files soundfile reads; the speaker is the first folder level (files directly in
  ``audio`` belong to one speaker named after the folder).

Splits (except Expresso's official ones) are deterministic and balanced per speaker: each speaker's utterances are
ranked by a hash of their id, and the first ``test_fraction`` of them go to test, the next ``dev_fraction`` to dev
(at least one each for speakers with three or more utterances; speakers with fewer go to train, with a warning).
The same corpus always splits the same way, whatever order the files were found in.

Converting resumes: a WAV already written (they are written atomically) is not converted again.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from speechkit.errors import SpeechkitError

__all__ = ["LAYOUTS", "OwnDataError", "Utterance", "detect_layout", "find_utterances", "prepare_own_data",
           "split_utterances", "read_utterances", "resolve_encoder"]

LAYOUTS = ("auto", "folder", "librispeech", "expresso", "manifest")
AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "mp3", "opus", "aiff", "aif", "au")
SAMPLE_RATE = 16000
_SAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


class OwnDataError(SpeechkitError, ValueError):
    """A corpus that cannot be prepared: the message names the file and the rule."""


@dataclass(frozen=True)
class Utterance:
    """One recording: ``id`` (unique, file-name safe), source ``path``, ``speaker``, ``text`` (``None``: no
    transcript) and, for corpora with official splits, ``split``."""

    id: str
    path: Path
    speaker: str
    text: str | None = None
    split: str | None = None


def _safe(name: str) -> str:
    return _SAFE.sub("_", name).strip("_") or "x"


def detect_layout(audio: str | os.PathLike) -> str:
    """The layout of ``audio`` (see the module docstring).

    Raises:
        OwnDataError: ``audio`` does not exist.
    """
    p = Path(audio)
    if p.is_file():
        return "manifest"
    if not p.is_dir():
        raise OwnDataError(f"{p}: no such folder or manifest (--audio)")
    if (p / "audio_48khz").is_dir() and (p / "splits").is_dir():
        return "expresso"
    if next(p.glob("*/*/*.trans.txt"), None) is not None:
        return "librispeech"
    return "folder"


def _audio_files(root: Path) -> list[Path]:
    return sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS)


def _folder(root: Path) -> list[Utterance]:
    utts = []
    for f in _audio_files(root):
        rel = f.relative_to(root)
        speaker = _safe(rel.parts[0]) if len(rel.parts) > 1 else _safe(root.resolve().name)
        utts.append(Utterance(_safe(rel.with_suffix("").as_posix().replace("/", "-")), f, speaker))
    return utts


def _librispeech(root: Path) -> list[Utterance]:
    texts: dict[str, str] = {}
    for t in sorted(root.glob("*/*/*.trans.txt")):
        for n, line in enumerate(t.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            key, _, text = line.strip().partition(" ")
            if not text.strip():
                raise OwnDataError(f"{t}:{n}: a transcript line must be '<utterance id> <text>'. Found {line!r}")
            texts[key] = text.strip()
    utts = []
    for f in _audio_files(root):
        rel = f.relative_to(root)
        speaker = _safe(rel.parts[0]) if len(rel.parts) > 1 else _safe(root.resolve().name)
        utts.append(Utterance(_safe(f.stem), f, speaker, texts.get(f.stem)))
    return utts


def _expresso(root: Path) -> list[Utterance]:
    from speechkit.data.corpora import expresso

    texts = expresso.read_transcriptions(root)
    utts = []
    for split, entries in expresso.read_splits(root).items():
        for e in entries:
            info = expresso.parse_stem(e.stem)
            if info.kind != "read" or e.start is not None:
                continue  # dialogues (two channels, segment windows) are left to `speechkit prepare expresso`
            utts.append(Utterance(e.stem, expresso.audio_path(root, e.stem), info.speaker, texts.get(e.stem),
                                  split))
    return utts


def _manifest(path: Path) -> list[Utterance]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines:
        raise OwnDataError(f"{path}: the manifest is empty")
    head = lines[0].split("\t")
    if "path" in head:
        col = {name: i for i, name in enumerate(head)}
        utts = []
        for n, line in enumerate(lines[1:], 2):
            if not line.strip():
                continue
            cells = line.split("\t")
            if len(cells) != len(head):
                raise OwnDataError(f"{path}:{n}: {len(cells)} columns where the header names {len(head)}")
            f = Path(cells[col["path"]])
            f = f if f.is_absolute() else path.parent / f
            speaker = cells[col["speaker"]] if "speaker" in col and cells[col["speaker"]] else "speaker"
            text = cells[col["text"]].strip() if "text" in col and cells[col["text"]].strip() else None
            uid = cells[col["id"]] if "id" in col and cells[col["id"]] else f.stem
            utts.append(Utterance(_safe(uid), f, _safe(speaker), text))
        return utts
    if len(head) == 1 and Path(head[0]).is_dir():  # fairseq tsv: root, then relpath<TAB>samples
        root = Path(head[0])
        utts = []
        for line in lines[1:]:
            if line.strip():
                rel = Path(line.split("\t")[0])
                speaker = _safe(rel.parts[0]) if len(rel.parts) > 1 else "speaker"
                utts.append(Utterance(_safe(rel.with_suffix("").as_posix().replace("/", "-")), root / rel, speaker))
        return utts
    raise OwnDataError(f"{path}: a manifest must be a TSV whose header names the columns (path, and optionally id, "
                       f"speaker, text) or a fairseq manifest whose first line is an existing folder. Found first "
                       f"line {lines[0]!r}")


def read_transcripts(path: str | os.PathLike) -> dict[str, str]:
    """``id<TAB>text`` or ``id text`` (Kaldi ``text``) lines."""
    p = Path(path)
    if not p.is_file():
        raise OwnDataError(f"{p}: no such transcripts file (--transcripts)")
    out = {}
    for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, text = line.partition("\t") if "\t" in line else line.partition(" ")
        if not sep or not text.strip():
            raise OwnDataError(f"{p}:{n}: a transcript line must be '<id><TAB><text>' or '<id> <text>'. "
                               f"Found {line!r}")
        out[Path(key.strip()).stem] = text.strip()
    return out


def find_utterances(audio: str | os.PathLike, layout: str = "auto", transcripts: str | os.PathLike | None = None
                    ) -> tuple[str, list[Utterance]]:
    """The utterances of a corpus, checked: ``(layout, utterances)``.

    Raises:
        OwnDataError: an unknown layout, no audio files, duplicate utterance ids (both files named), or
            transcripts for some utterances only (the first without one named).
    """
    if layout not in LAYOUTS:
        raise OwnDataError(f"--layout must be one of {', '.join(LAYOUTS)}. Found {layout!r}")
    p = Path(audio)
    if layout == "auto":
        layout = detect_layout(p)
    elif layout == "manifest" and not p.is_file():
        raise OwnDataError(f"{p}: --layout manifest needs a TSV file")
    elif layout != "manifest" and not p.is_dir():
        raise OwnDataError(f"{p}: no such folder (--audio)")
    utts = {"folder": _folder, "librispeech": _librispeech, "expresso": _expresso, "manifest": _manifest}[layout](p)
    if not utts:
        raise OwnDataError(f"{p}: no audio files (extensions {', '.join(AUDIO_EXTENSIONS)}) in the {layout} layout")
    if transcripts is not None:
        texts = read_transcripts(transcripts)
        utts = [Utterance(u.id, u.path, u.speaker, texts.get(u.id, texts.get(u.path.stem)), u.split) for u in utts]
    seen: dict[str, Path] = {}
    for u in utts:
        if u.id in seen:
            raise OwnDataError(f"duplicate utterance id {u.id!r}: {seen[u.id]} and {u.path} (ids must be unique; "
                               "rename one of the files)")
        seen[u.id] = u.path
    with_text = [u for u in utts if u.text]
    if with_text and len(with_text) < len(utts):
        missing = next(u for u in utts if not u.text)
        raise OwnDataError(f"transcripts cover {len(with_text)} of {len(utts)} utterances; {missing.path} (id "
                           f"{missing.id!r}) has none: give transcripts for every file or for none")
    return layout, utts


def _rank(uid: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{uid}".encode()).hexdigest()


def split_utterances(utts: list[Utterance], dev_fraction: float = 0.05, test_fraction: float = 0.05,
                     seed: int = 0) -> dict[str, str]:
    """``{id: "train" | "dev" | "test"}``: official splits where the corpus has them, else per-speaker hashing.

    Warns (one line a speaker) for speakers with fewer than three utterances, which go to train only.
    """
    if not (0 <= dev_fraction < 1 and 0 <= test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise OwnDataError(f"dev and test fractions must be in [0, 1) with a sum below 1. Found {dev_fraction} and "
                           f"{test_fraction}")
    out = {u.id: u.split for u in utts if u.split}
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for u in utts:
        if not u.split:
            by_speaker[u.speaker].append(u.id)
    for speaker, ids in sorted(by_speaker.items()):
        ids.sort(key=lambda i: _rank(i, seed))
        n = len(ids)
        if n < 3:
            warnings.warn(f"speaker {speaker!r} has {n} utterance(s): all go to train (dev and test need 3 or more)",
                          stacklevel=2)
            n_test = n_dev = 0
        else:
            n_test = max(1 if test_fraction > 0 else 0, round(n * test_fraction))
            n_dev = max(1 if dev_fraction > 0 else 0, round(n * dev_fraction))
        for i, uid in enumerate(ids):
            out[uid] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    return out


def _convert(job: tuple[str, str]) -> tuple[float | None, str | None]:
    """Source -> 16 kHz mono PCM-16 WAV; ``(seconds, None)`` or ``(None, reason)``."""
    from speechkit.audio import io

    src, dst = job
    d = Path(dst)
    if d.is_file():  # written atomically by an earlier run
        return io.info(d).num_frames / SAMPLE_RATE, None
    try:
        wav, _ = io.load(src, sample_rate=SAMPLE_RATE)
    except io.AudioError as e:
        return None, e.problem
    peak = float(wav.abs().max())
    if peak == 0.0:
        return None, "is silent (every sample is 0)"
    if peak > 1.0:
        wav = wav / peak
    io.save(d, wav, SAMPLE_RATE, subtype="PCM_16")
    return wav.numel() / SAMPLE_RATE, None


def prepare_own_data(audio: str | os.PathLike, out: str | os.PathLike, *, layout: str = "auto",
                     transcripts: str | os.PathLike | None = None, skip_bad: bool = False,
                     dev_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0, jobs: int = 1,
                     log: Callable[[str], None] = print) -> dict:
    """Prepares ``audio`` under ``out`` (see the module docstring); returns a summary dict.

    Raises:
        OwnDataError: see :func:`find_utterances`; unusable files without ``skip_bad`` (each named with its
            reason, also written to ``out/bad.tsv``); no usable file left.
    """
    from speechkit.data.manifest import ManifestEntry, write_tsv
    from speechkit.utils.files import atomic_open, exclusive, remove_stale_temporaries

    out = Path(out)
    layout, utts = find_utterances(audio, layout, transcripts)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out, "prepared corpus"):
        if (out / "wav").is_dir():
            remove_stale_temporaries(out / "wav")  # a killed run's half-written conversions
        jobs_list = [(str(u.path), str(out / "wav" / u.speaker / f"{u.id}.wav")) for u in utts]
        if jobs > 1:
            from multiprocessing import get_context

            with get_context("spawn").Pool(jobs) as pool:
                results = pool.map(_convert, jobs_list, chunksize=8)
        else:
            results = [_convert(j) for j in jobs_list]
        bad = [(u, why) for u, (_, why) in zip(utts, results, strict=True) if why is not None]
        with atomic_open(out / "bad.tsv") as f:
            f.writelines(f"{u.path}\t{why}\n" for u, why in bad)
        if bad and not skip_bad:
            listed = "\n".join(f"  {u.path}: {why}" for u, why in bad[:10])
            more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise OwnDataError(f"{len(bad)} of {len(utts)} files cannot be used (all listed in {out / 'bad.tsv'}):\n"
                               f"{listed}{more}\npass --skip-bad to go on without them")
        good = [(u, secs) for u, (secs, why) in zip(utts, results, strict=True) if why is None]
        if not good:
            raise OwnDataError(f"{audio}: none of the {len(utts)} audio files can be used (reasons in "
                               f"{out / 'bad.tsv'})")
        splits = split_utterances([u for u, _ in good], dev_fraction, test_fraction, seed)
        with atomic_open(out / "utterances.tsv") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            w.writerow(["id", "speaker", "split", "seconds", "text"])
            for u, secs in good:
                w.writerow([u.id, u.speaker, splits[u.id], f"{secs:.3f}", u.text or ""])
        summary: dict = {"source": str(audio), "layout": layout, "utterances": len(good), "bad": len(bad),
                         "speakers": len({u.speaker for u, _ in good}), "transcribed": bool(good[0][0].text)}
        for name in ("train", "dev", "test"):
            part = [(u, secs) for u, secs in good if splits[u.id] == name]
            with atomic_open(out / "splits" / f"{name}.txt") as f:
                f.writelines(f"{u.id}\n" for u, _ in part)
            write_tsv(out / f"{name}.tsv", out / "wav",
                      [ManifestEntry(f"{u.speaker}/{u.id}.wav", round(secs * SAMPLE_RATE)) for u, secs in part])
            summary[f"{name}_seconds"] = round(sum(s for _, s in part), 2)
            summary[f"{name}_utterances"] = len(part)
    log(f"prepared {summary['utterances']} utterances of {summary['speakers']} speaker(s) ({layout} layout) in "
        f"{out}: train {summary['train_seconds'] / 60:.1f} min, dev {summary['dev_seconds'] / 60:.1f} min, test "
        f"{summary['test_seconds'] / 60:.1f} min" + (f"; {len(bad)} file(s) skipped (bad.tsv)" if bad else ""))
    return summary


def resolve_encoder(spec: str) -> dict:
    """Where the HuBERT of an ``--encoder`` choice is: ``{"hubert", "layer", "kmeans"}`` (``layer``/``kmeans``
    ``None`` where the choice has none).

    ``spec``: ``default`` (the default bundle's encoder), a speech-encoder folder (``encoder.json``), a HuBERT
    checkpoint (fairseq ``.pt``, Hugging Face or speechkit folder), or a model-card name (a ``hubert`` or
    ``speech-encoder`` card, fetched into the cache).

    Raises:
        OwnDataError: a name that is neither a path nor a card, or a card of another kind.
    """
    import json

    from speechkit import hub

    if spec == "default":
        spec = str(hub.local_model_dir(hub.DEFAULT_MODEL) / "encoder")
    p = hub.local_model_dir(spec)
    if p.exists():
        if (p / "encoder.json").is_file():
            meta = json.loads((p / "encoder.json").read_text())
            if "hubert" not in meta:
                raise OwnDataError(f"{p / 'encoder.json'}: an MFCC encoder has no HuBERT to train k-means on")
            return {"hubert": str(p / meta["hubert"]), "layer": int(meta["layer"]), "kmeans": str(p / meta["kmeans"])}
        return {"hubert": str(p), "layer": None, "kmeans": None}
    if not hub.is_card_name(spec):
        raise OwnDataError(f"--encoder {spec}: no such file or folder")
    try:
        card = hub.load_card(spec)
    except hub.HubError as e:
        raise OwnDataError(f"--encoder {spec!r} is neither a path nor a model card ({e}); give default, scratch, "
                           "a folder, a checkpoint, or a card name from `speechkit models --kind speech-encoder`"
                           ) from None
    if card.path is not None:
        return resolve_encoder(str(hub.fetch(card.name)["folder"] / "encoder"))
    if card.kind == "hubert":
        return {"hubert": str(hub.fetch(card.name)["checkpoint"]), "layer": getattr(card, "layer", None),
                "kmeans": None}
    if card.kind == "speech-encoder" and card.requires:
        return {"hubert": str(hub.fetch(card.requires[0])["checkpoint"]), "layer": int(card.layer),
                "kmeans": str(hub.fetch(card.name)["kmeans"])}
    raise OwnDataError(f"--encoder {spec!r} is a {card.kind} card; it needs a hubert or speech-encoder card "
                       "(`speechkit models --kind speech-encoder`)")


def read_utterances(folder: str | os.PathLike) -> list[dict]:
    """The rows of a prepared corpus' ``utterances.tsv`` (``id, speaker, split, seconds, text``), with ``wav``."""
    p = Path(folder) / "utterances.tsv"
    if not p.is_file():
        raise OwnDataError(f"{p}: no such file; prepare the corpus first (speechkit prepare own-data)")
    with open(p, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        r["wav"] = Path(folder) / "wav" / r["speaker"] / f"{r['id']}.wav"
        r["seconds"] = float(r["seconds"])
    return rows
