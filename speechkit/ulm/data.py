"""Training data for causal LMs: token streams packed into fixed-size blocks (nanoGPT style).

Each utterance becomes its token ids (for a unit LM: ``BOS units EOS``), the utterances are concatenated into
one stream, and training reads blocks of ``block_size + 1`` tokens at random offsets (inputs = the first
``block_size``, targets = the last ``block_size``). Validation reads consecutive non-overlapping blocks.

Which blocks make up a step is a pure function of ``(seed, step)``, split the same way on every process, so
a run under ``torchrun`` with N processes sees the same global batch as one process, and a resumed run sees the
same batches as an uninterrupted one.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from pathlib import Path

import torch

from speechkit.data.manifest import UnitRecord, iter_units_jsonl, write_units_jsonl
from speechkit.errors import DataError

__all__ = ["DataError", "dedup_units", "read_unit_sequences", "split_records", "PackedBlocks"]


def dedup_units(units: list[int]) -> list[int]:
    """Merges consecutive repeats: ``[5, 5, 2, 5]`` -> ``[5, 2, 5]``."""
    return [u for i, u in enumerate(units) if i == 0 or u != units[i - 1]]


def read_unit_sequences(path: str | os.PathLike, *, deduplicate: bool = True, min_units: int = 1) -> list[list[int]]:
    """Unit sequences of a units jsonl (one utterance a line).

    Args:
        path: the jsonl (``speechkit encode`` output).
        deduplicate: merge consecutive repeated units (a no-op on already deduplicated units).
        min_units: utterances with fewer units (after dedup) are skipped.

    Raises:
        ManifestError: malformed file; DataError: no utterance left.
    """
    seqs = []
    for rec in iter_units_jsonl(path):
        units = dedup_units(rec.units) if deduplicate else list(rec.units)
        if len(units) >= min_units:
            seqs.append(units)
    if not seqs:
        raise DataError(f"{path}: no utterance with at least {min_units} unit(s)")
    return seqs


def _valid_bucket(utt_id: str, salt: str) -> float:
    return zlib.crc32(f"{salt}:{utt_id}".encode()) / 2**32


def split_records(records: Iterable[UnitRecord], out_dir: str | os.PathLike, *, valid_fraction: float = 0.05,
                  deduplicate: bool = True, min_units: int = 2, salt: str = "speechkit") -> dict[str, int]:
    """Writes ``train.jsonl`` and ``valid.jsonl``: deduplicated, short utterances dropped, split by id hash.

    The split depends only on each utterance id (crc32 of ``salt:id``), so adding utterances never moves old
    ones across the split. When no id falls under ``valid_fraction`` (tiny corpora), the utterance with the smallest
    hash goes to validation, so a non-zero fraction always yields a validation set.

    Returns:
        ``{"train": n, "valid": m, "dropped": k}``.
    """
    if not 0 <= valid_fraction < 1:
        raise DataError(f"valid_fraction must be in [0, 1). Found {valid_fraction}")
    parts: dict[str, list[UnitRecord]] = {"train": [], "valid": []}
    dropped = 0
    for rec in records:
        if deduplicate and rec.duration is None:
            units = dedup_units(rec.units)
            rec = UnitRecord(rec.id, rec.audio, units, None, None)
        elif deduplicate:
            units, durs = [], []
            for u, d in zip(rec.units, rec.duration, strict=True):
                if units and units[-1] == u:
                    durs[-1] += d
                else:
                    units.append(u)
                    durs.append(d)
            rec = UnitRecord(rec.id, rec.audio, units, durs, None)
        if len(rec.units) < min_units:
            dropped += 1
            continue
        parts["valid" if _valid_bucket(rec.id, salt) < valid_fraction else "train"].append(rec)
    if valid_fraction > 0 and not parts["valid"] and len(parts["train"]) > 1:  # tiny corpora: keep one for validation
        first = min(parts["train"], key=lambda r: _valid_bucket(r.id, salt))
        parts["train"].remove(first)
        parts["valid"].append(first)
    if not parts["train"]:
        raise DataError(f"no training utterance left (dropped {dropped} shorter than {min_units} units)")
    out = Path(out_dir)
    for name, recs in parts.items():
        write_units_jsonl(out / f"{name}.jsonl", recs)
    return {"train": len(parts["train"]), "valid": len(parts["valid"]), "dropped": dropped}


class PackedBlocks:
    """A token stream cut into blocks of ``block_size + 1`` tokens.

    Args:
        stream: ``(num_tokens,)`` int64 token ids, utterances concatenated.
        block_size: tokens per input sequence (the LM context used in training).
        name: what the stream is (for error messages), e.g. the source file.
    """

    def __init__(self, stream: torch.Tensor, block_size: int, name: str = "data"):
        if block_size < 1:
            raise DataError(f"block_size must be >= 1. Found {block_size}")
        if stream.numel() < block_size + 1:
            raise DataError(f"{name}: {stream.numel()} tokens, fewer than one block of {block_size + 1}; "
                            "use more data or a smaller block_size")
        self.stream = stream.long()
        self.block_size = block_size
        self.name = name

    @classmethod
    def from_sequences(cls, token_seqs: Iterable[list[int]], block_size: int, name: str = "data") -> PackedBlocks:
        """Concatenates per-utterance token ids (each already with its own BOS/EOS)."""
        flat = [t for seq in token_seqs for t in seq]
        return cls(torch.tensor(flat, dtype=torch.long), block_size, name)

    @property
    def num_tokens(self) -> int:
        return self.stream.numel()

    def _blocks(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = starts[:, None] + torch.arange(self.block_size + 1)[None]   # (B, T+1)
        chunk = self.stream[idx]
        return chunk[:, :-1], chunk[:, 1:]                                 # (B, T), (B, T)

    def global_starts(self, step: int, batch_size: int, seed: int) -> torch.Tensor:
        """``(batch_size,)`` random block offsets of optimisation step ``step`` (same on every process)."""
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        return torch.randint(0, self.num_tokens - self.block_size, (batch_size,), generator=gen)

    def train_batch(self, step: int, *, batch_size: int, micro_step: int, micro_batch: int, rank: int,
                    world_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This process' share of micro-step ``micro_step`` of step ``step``: inputs and targets ``(B, T)``.

        The global batch of ``batch_size`` blocks is laid out as ``[micro_step][rank][micro_batch]``.
        """
        starts = self.global_starts(step, batch_size, seed)
        first = (micro_step * world_size + rank) * micro_batch
        return self._blocks(starts[first:first + micro_batch])

    def eval_batches(self, max_blocks: int, batch_size: int, rank: int = 0, world_size: int = 1):
        """Yields ``(inputs, targets)`` over consecutive non-overlapping blocks, this process' share."""
        n = min(max_blocks, (self.num_tokens - 1) // self.block_size)
        starts = torch.arange(n) * self.block_size
        mine = starts[rank::world_size]
        for i in range(0, len(mine), batch_size):
            yield self._blocks(mine[i:i + batch_size])
