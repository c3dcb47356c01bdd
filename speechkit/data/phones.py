"""Frame-level phone labels from phone alignments: the supervision of phone-target HuBERT training and the ground
truth of the tokenizer benchmark (PNMI, ABX).

An alignment is ``[(phone, start_seconds, end_seconds), ...]`` (see
:func:`speechkit.synth.synthetic.phone_alignments`); a frame's phone is the one covering its centre, ``"_"``
(silence) where none does. A phone inventory is a plain text file, one phone per line, the line index its id.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SILENCE", "frame_phones", "PhoneInventory", "write_phone_labels"]

SILENCE = "_"


def frame_phones(alignment: list[tuple[str, float, float]], frames: int, hop_seconds: float) -> list[str]:
    """The phone at the centre of each of ``frames`` frames of ``hop_seconds`` (:data:`SILENCE` outside every
    segment).

    Example:
        >>> frame_phones([("h", 0.0, 0.05), ("i", 0.05, 0.1)], 6, 0.02)
        ['h', 'h', 'i', 'i', 'i', '_']
    """
    out = []
    j = 0
    for i in range(frames):
        t = (i + 0.5) * hop_seconds
        while j < len(alignment) and alignment[j][2] <= t:
            j += 1
        out.append(alignment[j][0] if j < len(alignment) and alignment[j][1] <= t else SILENCE)
    return out


class PhoneInventory:
    """Phone symbols and their ids (silence first).

    Args:
        phones: the symbols; :data:`SILENCE` is put first when missing.
    """

    def __init__(self, phones: list[str]):
        phones = [SILENCE] + sorted(set(phones) - {SILENCE})
        self.phones = phones
        self.ids = {p: i for i, p in enumerate(phones)}

    def __len__(self) -> int:
        return len(self.phones)

    @classmethod
    def from_alignments(cls, alignments: dict[str, list[tuple[str, float, float]]]) -> PhoneInventory:
        return cls([p for segs in alignments.values() for p, _, _ in segs])

    @classmethod
    def load(cls, path: str | os.PathLike) -> PhoneInventory:
        """Reads a ``phones.txt`` (one symbol per line)."""
        from speechkit.errors import SpeechkitError

        p = Path(path)
        if not p.is_file():
            raise SpeechkitError(f"{p}: no such phone inventory")
        from speechkit.utils.files import read_lines

        phones = read_lines(p, SpeechkitError)
        if not phones or phones[0] != SILENCE or len(set(phones)) != len(phones):
            raise SpeechkitError(f"{p}: a phone inventory lists distinct phones, one a line, {SILENCE!r} first")
        inv = cls(phones)
        inv.phones, inv.ids = phones, {ph: i for i, ph in enumerate(phones)}  # the file's order is the ids'
        return inv

    def save(self, path: str | os.PathLike) -> Path:
        from speechkit.utils.files import atomic_open

        with atomic_open(path) as f:
            f.write("".join(f"{p}\n" for p in self.phones))
        return Path(path)

    def encode(self, phones: list[str]) -> list[int]:
        """Ids of ``phones``; a phone outside the inventory raises ``KeyError`` naming it."""
        try:
            return [self.ids[p] for p in phones]
        except KeyError as e:
            raise KeyError(f"phone {e.args[0]!r} is not in the inventory") from None


def write_phone_labels(alignments: dict[str, list[tuple[str, float, float]]], num_frames: dict[str, int],
                       ids: dict[str, str], inventory: PhoneInventory, hop_seconds: float,
                       output: str | os.PathLike) -> Path:
    """Writes frame-level phone ids as a labels jsonl (``{"id", "audio", "units", "duration"}``, durations all 1),
    the format ``speechkit train hubert`` reads as ``data.train_labels``.

    Args:
        alignments: stem -> phone alignment.
        num_frames: stem -> frames of the encoder (``HubertConfig.num_frames`` of the file's samples).
        ids: stem -> record id (the manifest path without extension).
        inventory: phone ids.
        hop_seconds: frame hop (0.02 for 50 Hz models).
        output: the jsonl.
    """
    from speechkit.data.manifest import UnitRecord, write_units_jsonl

    records = []
    for stem, frames in num_frames.items():
        labels = inventory.encode(frame_phones(alignments[stem], frames, hop_seconds))
        records.append(UnitRecord(ids[stem], ids[stem], labels, [1] * len(labels)))
    return write_units_jsonl(output, records)
