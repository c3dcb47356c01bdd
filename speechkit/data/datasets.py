"""torch Datasets over prepared corpora.

:class:`ExpressoDataset` reads the short-segment dataset written by
:func:`speechkit.data.corpora.expresso.prepare_expresso`; :func:`collate_audio` pads a list of its items into a
batch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from speechkit.data.corpora.expresso import ExpressoError
from speechkit.utils.files import read_text

__all__ = ["ExpressoDataset", "collate_audio", "read_prepared"]


def read_prepared(folder: str | os.PathLike, split: str) -> list[dict]:
    """The records of ``{folder}/{split}.jsonl`` (see :func:`~speechkit.data.corpora.expresso.prepare_expresso`).

    Raises:
        ExpressoError: the manifest is missing or a line is not JSON (the message names the file and line).
    """
    path = Path(folder) / f"{split}.jsonl"
    if not path.is_file():
        raise ExpressoError(f"{path}: missing; run speechkit.data.corpora.expresso.prepare_expresso(root, "
                            f"{str(folder)!r}) with split {split!r} first")
    rows = []
    for n, line in enumerate(read_text(path, ExpressoError).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ExpressoError(f"{path}:{n}: not a JSON object ({e.msg})") from None
    return rows


class ExpressoDataset(torch.utils.data.Dataset):
    """Utterances of one split of a prepared Expresso dataset.

    Each item is a dict: ``wav`` (``(samples,)`` float32), ``sample_rate``, ``id``, ``speaker``, ``style``,
    ``text`` (``None`` when the segment has no transcript), ``kind`` (``read`` / ``conversational``), ``stem``,
    ``channel``, ``start``, ``end``.

    Args:
        folder: the output folder of ``prepare_expresso``.
        split: ``train``, ``dev`` or ``test``.
        sample_rate: resample to this rate (``None``: the prepared rate, 16 kHz by default).
        kinds: keep only these kinds (e.g. ``("read",)``).
        speakers: keep only these speakers.
        styles: keep only these styles.

    Example:
        >>> ds = ExpressoDataset("data/expresso_16k", "test", kinds=("read",))
        >>> item = ds[0]; item["wav"].shape, item["speaker"], item["style"], item["text"]
        >>> loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=collate_audio)
    """

    def __init__(self, folder: str | os.PathLike, split: str, *, sample_rate: int | None = None,
                 kinds: tuple[str, ...] | None = None, speakers: tuple[str, ...] | None = None,
                 styles: tuple[str, ...] | None = None):
        self.folder, self.split, self.sample_rate = Path(folder), split, sample_rate
        rows = read_prepared(folder, split)
        self.records = [r for r in rows if (kinds is None or r["kind"] in kinds)
                        and (speakers is None or r["speaker"] in speakers)
                        and (styles is None or r["style"] in styles)]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def speakers(self) -> list[str]:
        """Sorted speaker names of the kept records."""
        return sorted({r["speaker"] for r in self.records})

    @property
    def styles(self) -> list[str]:
        """Sorted style names of the kept records."""
        return sorted({r["style"] for r in self.records})

    def __getitem__(self, index: int) -> dict:
        from speechkit.audio import io as audio_io

        r = self.records[index]
        wav, sr = audio_io.load(self.folder / r["audio"], sample_rate=self.sample_rate)
        keep = ("id", "speaker", "style", "text", "kind", "stem", "channel", "start", "end")
        return {"wav": wav, "sample_rate": sr, **{k: r.get(k) for k in keep}}


def collate_audio(items: list[dict]) -> dict:
    """Pads items' ``wav`` into ``(batch, max_samples)`` with ``lengths`` ``(batch,)``; other keys become lists.

    Raises:
        ValueError: items have different sample rates.
    """
    rates = {it["sample_rate"] for it in items}
    if len(rates) != 1:
        raise ValueError(f"items must share one sample rate to be batched. Found {sorted(rates)}")
    lengths = torch.tensor([len(it["wav"]) for it in items])
    wav = torch.zeros(len(items), int(lengths.max()))
    for i, it in enumerate(items):
        wav[i, : len(it["wav"])] = it["wav"]
    rest = {k: [it[k] for it in items] for k in items[0] if k not in ("wav", "sample_rate")}
    return {"wav": wav, "lengths": lengths, "sample_rate": rates.pop(), **rest}
