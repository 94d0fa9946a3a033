"""Checks of arguments, shared by every layer, so a bad value gets the same message everywhere:
``"<name> must be a positive integer, got 0"``, with the name the caller knows the value by.

:func:`typed` builds a (frozen) settings dataclass from plain data (YAML, a job's configuration, a
notebook's dict), checking every key and type against the dataclass' annotations.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

_D = TypeVar("_D")


def check_integer(name: str, value: Any, minimum: int = 1, optional: bool = False) -> Any:
    """``value`` as an ``int`` if it is an integer (not a bool) >= ``minimum``, else a ``ValueError``
    naming ``name``; with ``optional`` a ``None`` passes through as ``None``."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {what}{' or None' if optional else ''}, got {value!r}")
    return int(value)


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an ``int``; ``ValueError`` naming ``name`` unless it is a non-negative integer."""
    return check_integer(name, seed, minimum=0)


def check_positive(name: str, value: Any) -> float:
    """``value`` as a ``float`` if it is a finite number (not a bool) > 0, else a ``ValueError`` naming
    ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def typed(cls: type[_D], data: Any, where: str) -> _D:
    """The dataclass ``cls`` built from the mapping ``data`` (an instance of ``cls`` passes as it is).

    Every key must be a field of ``cls`` and every value of the field's annotated type: nested
    dataclasses are built from mappings, tuples from lists, ``X | None`` fields take ``None``, ints pass
    for floats but bools never for numbers. A missing key takes the field's default. A ``ValueError``
    names the bad key by its full path from ``where`` (``experiment.settings.searches.KK``). A class
    may translate older spellings of its mapping first, in a ``normalise(mapping)`` classmethod.
    """
    return _convert(cls, data, where)


def check_options(function: Any, options: Mapping[str, Any], where: str, leave_out: Sequence[str] = ()) -> None:
    """Refuse a key of ``options`` that ``function`` (a callable or a class) takes no keyword for, or one
    of ``leave_out`` (set by the caller itself): a ``ValueError`` naming ``where.key``, before any work
    is done with them. Values are the function's to check."""
    parameters = inspect.signature(function).parameters
    takes = [name for name, p in parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in ("self", *leave_out)]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    for key in options:
        if key in leave_out or (key not in takes and not open_ended):
            name = getattr(function, "__qualname__", repr(function))
            raise ValueError(f"unknown key {where}.{key}: {name} takes {sorted(takes)}")


def _fields(cls: type, data: Any, where: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a mapping of {cls.__name__}'s settings, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [str(key) for key in data if key not in fields]
    if unknown:
        raise ValueError(f"unknown key {where}.{unknown[0]}: {cls.__name__} has {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {key: _convert(hints[key], value, f"{where}.{key}") for key, value in data.items()}
    missing = [name for name, f in fields.items() if name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{where}.{missing[0]} is required ({cls.__name__} has no default for it)")
    return cls(**values)


def _convert(kind: Any, value: Any, where: str) -> Any:
    """``value`` as the annotated type ``kind``; ``ValueError`` naming ``where`` when it is not one."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _fields(kind, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where)
            except ValueError as err:
                errors.append(err)
        raise errors[-1] if len(errors) == 1 else ValueError(f"{where} must be one of {kind}, got {value!r}")
    if origin in (tuple, list, Sequence) or kind in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ValueError(f"{where} must be a list, got {value!r}")
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or kind is tuple else items
    if origin in (dict, Mapping) or kind in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a mapping, got {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(item, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        if isinstance(value, kind):
            return value
        for member in kind:
            if value in (member.value, member.name):
                return member
        raise ValueError(f"{where} must be one of {[m.value for m in kind]}, got {value!r}")
    if kind is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return bool(value)
    if kind is int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"{where}: typed() cannot check values of type {kind!r}")


__all__ = ["check_integer", "check_options", "check_positive", "check_seed", "typed"]
