"""How unit sequences become the token ids a unit LM sees: :class:`UnitVocab`.

A unit LM is an ordinary causal LM whose vocabulary holds ``num_units`` unit tokens (unit ``u`` is token
``u + unit_offset``) and a few special tokens. Three layouts are in use:

============  ======  ===========  ===========  =====================================================
layout        offset  BOS          EOS          token sequence of units ``u1 .. un``
============  ======  ===========  ===========  =====================================================
``speechkit`` 2       1            1            ``1, u1+2, ..., un+2, 1``  (pad 0; slamkit's layout)
``slamkit``   2       1            1            the same (``<PAD>`` 0, ``<S>`` 1, ``<Un{u}>`` u+2)
``twist``     config  none         none         ``u1+offset, ..., un+offset``  (textlesslib TWIST)
============  ======  ===========  ===========  =====================================================

speechkit's own models use the slamkit layout, so a slamkit model and a speechkit model score the same
sequence the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from speechkit.errors import SpeechkitError

__all__ = ["UnitLMError", "UnitVocab"]


class UnitLMError(SpeechkitError, ValueError):
    """Bad input to a unit LM (a unit id out of range, an empty sequence, a folder that is not a unit LM...).

    The message names the argument or file, the rule, and the value found.
    """


@dataclass(frozen=True, kw_only=True)
class UnitVocab:
    """Token layout of a unit LM.

    Attributes:
        num_units: number of units K (unit ids are ``0 .. K-1``).
        unit_offset: token id of unit 0; unit ``u`` is token ``u + unit_offset``.
        bos_id: token put before every sequence, or ``None`` (TWIST has none).
        eos_id: token put after every scored or trained sequence, or ``None``; generation stops on it.
        pad_id: token used to pad batches (its predictions are never scored); any valid id works.
        layout: name of the layout (``"speechkit"``, ``"slamkit"``, ``"twist"``), for the record.
        append_eos: whether :meth:`token_ids` ends sequences with ``eos_id`` (slamkit does; a TWIST
            checkpoint's end-of-sentence id, if any, is only used to stop generation).
    """

    num_units: int
    unit_offset: int = 2
    bos_id: int | None = 1
    eos_id: int | None = 1
    pad_id: int = 0
    layout: str = "speechkit"
    append_eos: bool = True

    def validate(self) -> None:
        """Raises :class:`UnitLMError` when the layout is inconsistent."""
        if self.num_units < 1:
            raise UnitLMError(f"num_units must be >= 1. Found {self.num_units}")
        if self.unit_offset < 0:
            raise UnitLMError(f"unit_offset must be >= 0. Found {self.unit_offset}")
        units = range(self.unit_offset, self.unit_offset + self.num_units)
        for name in ("bos_id", "eos_id"):
            value = getattr(self, name)
            if value is not None and value in units:
                raise UnitLMError(f"{name} = {value} collides with the unit tokens [{units.start}, {units.stop})")
        if self.append_eos and self.eos_id is None:
            raise UnitLMError("append_eos is set but eos_id is None")
        if self.pad_id < 0:
            raise UnitLMError(f"pad_id must be >= 0. Found {self.pad_id}")

    @property
    def min_vocab_size(self) -> int:
        """The smallest LM vocabulary that holds every token of this layout."""
        ids = [self.unit_offset + self.num_units, self.pad_id + 1]
        ids += [i + 1 for i in (self.bos_id, self.eos_id) if i is not None]
        return max(ids)

    @classmethod
    def speechkit(cls, num_units: int) -> UnitVocab:
        """speechkit's layout (= slamkit's): pad 0, BOS = EOS = 1, unit ``u`` -> ``u + 2``."""
        vocab = cls(num_units=num_units)
        vocab.validate()
        return vocab

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "unit vocabulary") -> UnitVocab:
        """Reads :meth:`to_dict` output; unknown keys are refused so typos do not pass silently."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise UnitLMError(f"{source}: unknown keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        try:
            vocab = cls(**d)
        except TypeError as e:
            raise UnitLMError(f"{source}: {e}") from None
        vocab.validate()
        return vocab

    def check_units(self, units, name: str = "units") -> list[int]:
        """Unit ids as a list of ints, checked against ``[0, num_units)``.

        Args:
            units: a sequence of ints or a 1-D integer tensor / array.
            name: how the argument is called in error messages.

        Raises:
            UnitLMError: not 1-D integers, or an id out of range.
        """
        if isinstance(units, torch.Tensor):
            if units.dim() != 1 or units.dtype.is_floating_point or units.dtype == torch.bool:
                raise UnitLMError(f"{name}: expected a 1-D integer tensor of unit ids, "
                                  f"found shape {tuple(units.shape)} dtype {units.dtype}")
            values = units.tolist()
        elif hasattr(units, "tolist") and hasattr(units, "ndim"):  # numpy
            if units.ndim != 1 or units.dtype.kind not in "iu":
                raise UnitLMError(f"{name}: expected a 1-D integer array of unit ids, found {units.ndim}-D "
                                  f"{units.dtype}")
            values = units.tolist()
        elif isinstance(units, Sequence) and not isinstance(units, str | bytes):
            values = list(units)
        else:
            raise UnitLMError(f"{name}: expected a sequence of unit ids, found {type(units).__name__}")
        for i, u in enumerate(values):
            if not isinstance(u, int) or isinstance(u, bool):
                raise UnitLMError(f"{name}[{i}] = {u!r}: unit ids must be integers")
            if not 0 <= u < self.num_units:
                raise UnitLMError(f"{name}[{i}] = {u} is out of range: unit ids must be in [0, {self.num_units}) "
                                  f"for this model (num_units={self.num_units})")
        return values

    def token_ids(self, units, *, name: str = "units", append_eos: bool | None = None) -> list[int]:
        """The token ids the LM sees for ``units``: ``[bos] + [u + unit_offset ...] + [eos]``.

        Args:
            units: unit ids in ``[0, num_units)``.
            name: argument name for error messages.
            append_eos: override :attr:`append_eos` (generation prompts leave the EOS out).
        """
        values = self.check_units(units, name)
        ids = [u + self.unit_offset for u in values]
        if self.bos_id is not None:
            ids.insert(0, self.bos_id)
        if (self.append_eos if append_eos is None else append_eos) and self.eos_id is not None:
            ids.append(self.eos_id)
        return ids

    def is_unit_token(self, token_id: int) -> bool:
        return self.unit_offset <= token_id < self.unit_offset + self.num_units
