"""Encoding a corpus to a units jsonl: sharded, batched by length, resumable, tolerant of bad files.

- **Inputs**: a folder (scanned recursively) or a fairseq tsv manifest. Utterance ids are paths relative to the
  folder / manifest root, without extension.
- **Shards**: ``shard=(i, n)`` takes every n-th utterance (ids sorted) starting at i, so n machines each encode one
  shard into its own file.
- **Order and batching**: a shard is processed longest first; consecutive utterances form a padded batch while
  ``batch_size * longest`` stays under ``batch_samples``. Batching never changes units (the encoder's batched path
  equals one-at-a-time processing; tested), so the output is the same for any batch size.
- **Resume**: records are appended and flushed batch by batch. With ``resume=True`` a torn last line (a job killed
  mid-write) is cut off, finished ids (and ids already in the errors file) are skipped, and the rest is processed in
  the same order: the final file equals an uninterrupted run's.
- **Bad files**: decoding or encoding failures go to ``<output>.errors.tsv`` (``id<TAB>path<TAB>reason``) and the
  job goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from speechkit.data.manifest import AUDIO_EXTENSIONS, UnitRecord, read_tsv
from speechkit.errors import SpeechkitError
from speechkit.utils.files import complete_lines, exclusive, jsonl_ids

__all__ = ["EncodeStats", "list_corpus", "encode_corpus"]

log = logging.getLogger(__name__)


@dataclass
class EncodeStats:
    """What a run did: ``encoded`` new records, ``skipped`` (already done), ``failed`` files, audio seconds."""

    encoded: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0


def list_corpus(source: str | os.PathLike) -> list[dict]:
    """Utterances of a folder or tsv manifest: ``[{"id", "path", "num_samples"}]`` sorted by id.

    ``num_samples`` comes from the manifest or the file header (``-1`` if the header is unreadable; the file is
    then reported when decoded).

    Raises:
        SpeechkitError: the source does not exist or holds no audio.
    """
    from speechkit.audio import io as audio_io

    src = Path(source)
    items = []
    if src.is_dir():
        exts = {f".{e}" for e in AUDIO_EXTENSIONS}
        for f in sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in exts):
            try:
                n = audio_io.info(f).num_frames
            except audio_io.AudioError:
                n = -1
            items.append({"id": f.relative_to(src).with_suffix("").as_posix(), "path": str(f), "num_samples": n})
    elif src.is_file() and src.suffix == ".tsv":
        root, entries = read_tsv(src)
        for e in entries:
            items.append({"id": Path(e.path).with_suffix("").as_posix(), "path": str(root / e.path),
                          "num_samples": e.num_samples})
    else:
        raise SpeechkitError(f"{src}: expected a folder of audio files or a .tsv manifest")
    if not items:
        raise SpeechkitError(f"{src}: no audio files found (extensions {', '.join(AUDIO_EXTENSIONS)})")
    ids = [i["id"] for i in items]
    if len(set(ids)) != len(ids):
        raise SpeechkitError(f"{src}: two files share an id (same path without extension)")
    return sorted(items, key=lambda i: i["id"])


def _recover(path: Path) -> set[str]:
    """Ids already in a units jsonl; a torn last line (killed mid-write) is cut off the file."""
    return jsonl_ids(path, "units record")


def _recover_errors(path: Path) -> set[str]:
    return {line.split("\t", 1)[0] for line in complete_lines(path) if line.strip()}


def _batches(stream: Iterator[dict], batch_samples: int, max_batch: int) -> Iterator[list[dict]]:
    """Groups a longest-first stream into padded batches of at most ``batch_samples`` padded samples."""
    batch: list[dict] = []
    for item in stream:
        if "error" in item:
            yield [item]
            continue
        longest = max([len(item["wav"])] + [len(b["wav"]) for b in batch])
        if batch and (longest * (len(batch) + 1) > batch_samples or len(batch) >= max_batch):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _encode(encoder, items: list[dict]) -> list[dict | None]:
    """Encodes a batch; if it fails (one bad utterance), encodes one by one and marks the failures."""
    if len(items) > 1:
        try:
            return encoder.encode_batch([b["wav"] for b in items])
        except (ValueError, RuntimeError):
            pass
    results: list[dict | None] = []
    for b in items:
        try:
            results.append(encoder(b["wav"]))
        except (ValueError, RuntimeError) as e:  # e.g. too short for one frame
            b["error"] = f"cannot be encoded ({str(e).splitlines()[0][:200]})"
            results.append(None)
    return results


def encode_corpus(encoder, source: str | os.PathLike, output: str | os.PathLike, *, shard: tuple[int, int] = (0, 1),
                  resume: bool = False, batch_seconds: float = 60.0, max_batch: int = 32, loader: str = "fairseq2",
                  workers: int = 2, progress: bool = True) -> EncodeStats:
    """Encodes every utterance of ``source`` into ``output`` (units jsonl).

    Args:
        encoder: a :class:`~speechkit.units.SpeechEncoder`.
        source: folder or tsv manifest.
        output: the jsonl to write (``<output>.errors.tsv`` collects failures).
        shard: ``(index, count)``.
        resume: continue an interrupted run; without it an existing ``output`` is an error.
        batch_seconds: padded audio per batch, in seconds at the encoder's rate (0 = one utterance at a time).
        max_batch: most utterances in a batch.
        loader: ``"fairseq2"`` or ``"torch"`` (see :func:`speechkit.audio.io.iter_audio`).
        workers: parallel audio decoders.
        progress: show a progress bar.

    Returns:
        :class:`EncodeStats`.
    """
    index, count = shard
    if not (count >= 1 and 0 <= index < count):
        raise ValueError(f"shard must be i/n with 0 <= i < n. Found {index}/{count}")
    out, err = Path(output), Path(f"{output}.errors.tsv")
    if out.exists() and not resume:
        raise SpeechkitError(f"{out}: already exists; pass --resume to continue it or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    created = not out.exists()
    out.touch()  # the lock needs the file: a second writer of the same output is refused, not interleaved
    try:
        with exclusive(out, "units file"):
            return _encode_corpus(encoder, source, out, err, index, count, resume, batch_seconds, max_batch, loader,
                                  workers, progress)
    except BaseException:
        if created and out.exists() and out.stat().st_size == 0:
            out.unlink()  # failed before writing anything: leave no empty output that would block a rerun
        raise


def _encode_corpus(encoder, source, out: Path, err: Path, index: int, count: int, resume: bool, batch_seconds: float,
                   max_batch: int, loader: str, workers: int, progress: bool) -> EncodeStats:
    from tqdm import tqdm

    from speechkit.audio.io import iter_audio

    done = _recover(out) | _recover_errors(err) if resume else set()
    items = list_corpus(source)[index::count]
    todo = [i for i in items if i["id"] not in done]
    todo.sort(key=lambda i: (-i["num_samples"], i["id"]))  # longest first: little padding, stable order
    stats = EncodeStats(skipped=len(items) - len(todo))
    sr = encoder.expected_sample_rate
    batch_samples = max(1, int(batch_seconds * sr))
    bar = tqdm(total=len(items), initial=stats.skipped, desc="encode", unit="utt", disable=None if progress else True)
    with open(out, "a", encoding="utf-8") as fout, open(err, "a", encoding="utf-8") as ferr, bar:
        stream = iter_audio(todo, sr, loader=loader, workers=workers)
        for batch in _batches(stream, batch_samples if batch_seconds > 0 else 1, max_batch):
            good = [b for b in batch if "error" not in b]
            results = _encode(encoder, good)
            lines, errors = [], []
            for b in batch:
                if "error" in b:
                    errors.append(f"{b['id']}\t{b['path']}\t{b['error']}\n")
            for b, r in zip(good, results, strict=True):
                if r is None:
                    continue
                rec = UnitRecord(b["id"], b["path"], r["units"].tolist(), r["durations"].tolist(),
                                 r["f0"].tolist() if "f0" in r else None)
                lines.append(rec.to_json() + "\n")
                stats.seconds += len(b["wav"]) / sr
            if errors:
                ferr.writelines(errors)
                ferr.flush()
                stats.failed += len(errors)
            fout.writelines(lines)
            fout.flush()
            stats.encoded += len(lines)
            bar.update(len(batch))
        os.fsync(fout.fileno())
    if stats.failed:
        log.warning("%d file(s) could not be encoded; reasons in %s", stats.failed, err)
    elif err.exists() and err.stat().st_size == 0:
        err.unlink()
    return stats

