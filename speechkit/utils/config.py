"""Configs with one source of truth: the dataclass.

Every trainer's config is a tree of dataclasses whose defaults and field docstrings are the only place a value is
set and described. ``speechkit train TASK`` composes it as a Hydra structured config (the dataclass registered as
the ``TASK_schema`` node that ``speechkit/conf/TASK/config.yaml`` names first, presets merged on top), so an unknown
key or a value of the wrong type is refused when the command line is read; the Python API builds the same dataclass
from plain values with :func:`from_values`. Required values are ``MISSING`` (``???``).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from omegaconf import MISSING

from speechkit.errors import SpeechkitError

__all__ = ["MISSING", "from_values", "to_plain", "section_of"]

T = TypeVar("T")


def _tuples(obj: Any) -> Any:
    """Lists back to tuples where the dataclass field is a tuple (OmegaConf keeps sequences as lists)."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return obj
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        hint = hints.get(f.name)
        origins = {typing.get_origin(hint), *(typing.get_origin(a) for a in typing.get_args(hint))}
        if isinstance(value, list) and tuple in origins:
            setattr(obj, f.name, tuple(value))
        elif dataclasses.is_dataclass(value):
            _tuples(value)
    return obj


def from_values(cls: type[T], values: Any, *, error: type[Exception] = SpeechkitError, what: str = "config") -> T:
    """``values`` (a mapping, an OmegaConf config or a ``cls`` instance) as a checked ``cls`` instance.

    Merged onto ``cls``'s defaults; ``preset`` (the Hydra preset choice) is dropped. The instance's ``validate()``
    runs when it has one.

    Raises:
        error: an unknown key, a value of the wrong type, or a required value (``???``) left unset; the message
            names the key.
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=False)
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        values = dataclasses.asdict(values)
    if not isinstance(values, dict):
        raise error(f"{what}: expected a mapping, found {type(values).__name__}")
    values = {k: v for k, v in values.items() if k != "preset"}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), values)
        obj = OmegaConf.to_object(merged)
    except MissingMandatoryValue as e:
        raise error(f"{what}: required value {e.full_key} is missing (give {e.full_key}=...)") from None
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or ""
        first = str(e).splitlines()[0]
        raise error(f"{what}: {key + ': ' if key and key not in first else ''}{first}") from None
    obj = _tuples(obj)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return typing.cast(T, obj)


def to_plain(obj: Any) -> dict:
    """A config dataclass as plain JSON-able values (tuples as lists)."""
    import json

    return json.loads(json.dumps(dataclasses.asdict(obj)))


def section_of(source: type, name: str, *, only: tuple[str, ...] | None = None, exclude: tuple[str, ...] = (),
               types: dict[str, tuple[Any, Any]] | None = None, extra: tuple[tuple[str, Any, Any], ...] = (),
               doc: str = "", module: str | None = None) -> type:
    """A config section built from the fields of the model config ``source``: same names, types and defaults, so
    a trainer's ``model`` group does not restate them.

    Args:
        source: the model config dataclass.
        name: the new class's name.
        only: the fields to take, in ``source``'s order (default: all).
        exclude: fields to leave out.
        types: ``field -> (type, default)`` where the section must differ (e.g. lists where ``source`` has tuples,
            which Hydra cannot type).
        extra: ``(name, type, default)`` fields appended after ``source``'s.
        doc: the class docstring.
        module: the module the class is reported in (its ``__module__``).
    """
    types = types or {}

    def spec(n: str, t: Any, default: Any) -> tuple:
        if isinstance(default, list | dict):
            return n, t, dataclasses.field(default_factory=lambda d=default: json_copy(d))
        return n, t, dataclasses.field(default=default)

    def json_copy(value: Any) -> Any:
        import json

        return json.loads(json.dumps(value))

    fields = []
    for f in dataclasses.fields(source):
        if (only is not None and f.name not in only) or f.name in exclude:
            continue
        if f.name in types:
            fields.append(spec(f.name, *types[f.name]))
        elif f.default is not dataclasses.MISSING:
            fields.append((f.name, f.type, dataclasses.field(default=f.default)))
        else:
            fields.append((f.name, f.type, dataclasses.field(default_factory=f.default_factory)))
    fields += [spec(*e) for e in extra]
    cls = dataclasses.make_dataclass(name, fields, kw_only=True)
    cls.__doc__ = doc
    if module is not None:
        cls.__module__ = module
    return cls
