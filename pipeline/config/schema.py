"""Declarative checks of plain-dict parameters: unknown keys, types and ranges, by key path.

A schema is a mapping of key to :class:`Field` (a leaf), :class:`Section` (a nested mapping
with fixed keys) or :class:`MapOf` (a mapping with free keys, e.g. catalogue names, whose
values share one schema). :func:`check` walks a value against it and raises
:class:`ParamsError` with the full key path and, for an unknown key, the nearest valid name::

    unknown key 'lr_shedule' in train.common.optim; did you mean 'lr_schedule'?
    train.rsgm.optim.steps: expected an integer >= 0, got -5

Nothing is converted or evaluated: a check only reads the values. Numbers written as YAML
strings (``1e-3``, which PyYAML reads as a string) are accepted for float fields when
``float()`` parses them, since the library converts them the same way.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Field", "MapOf", "ParamsError", "Schema", "Section", "check", "unknown_key_message"]

Kind = Literal["int", "float", "str", "bool", "list", "mapping", "any"]


class ParamsError(ValueError):
    """A params value is not what its schema allows; the message names the key path."""


@dataclass(frozen=True)
class Field:
    """A leaf value.

    Attributes:
        kind: ``"int"`` (not bool), ``"float"`` (int, float, or a numeric string), ``"str"``,
            ``"bool"``, ``"list"``, ``"mapping"`` or ``"any"``.
        choices: Allowed values (after the kind check), or None.
        min: Smallest allowed number (inclusive), or None.
        min_exclusive: Whether ``min`` itself is excluded.
        max: Largest allowed number (inclusive), or None.
        nullable: Whether ``null`` is allowed.
        items: Schema of each element of a ``"list"``, or None.
        length: Required list length, or None.
        also: Other values accepted as they are (e.g. the string ``"all"`` for a seed list).
    """

    kind: Kind
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    min_exclusive: bool = False
    max: float | None = None
    nullable: bool = False
    items: Field | None = None
    length: int | None = None
    also: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Section:
    """A mapping with fixed keys.

    Attributes:
        fields: Key to schema.
        required: Keys that must be present.
    """

    fields: Mapping[str, Schema]
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class MapOf:
    """A mapping with free keys (names), each value checked against ``value``.

    Attributes:
        value: The schema of every value.
        nullable_values: Whether a value may be ``null`` (an empty entry).
    """

    value: Schema
    nullable_values: bool = True
    key_choices: tuple[str, ...] | None = field(default=None)


Schema = Field | Section | MapOf


def did_you_mean(key: str, known: Sequence[str]) -> str:
    """The project's one hint for an unknown key: ``"did you mean 'x'?"`` for a near name, else
    the valid keys."""
    near = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    return f"did you mean {near[0]!r}?" if near else f"valid keys: {', '.join(sorted(known))}"


def unknown_key_message(key: str, where: str, known: Sequence[str]) -> str:
    """``"unknown key 'k' in where; did you mean 'x'?"`` (or the list of valid keys)."""
    return f"unknown key {key!r} in {where}; {did_you_mean(key, known)}"


def _describe(spec: Field) -> str:
    names = {
        "int": "an integer",
        "float": "a number",
        "str": "a string",
        "bool": "true or false",
        "list": "a list",
        "mapping": "a mapping",
        "any": "a value",
    }
    text = names[spec.kind]
    if spec.choices is not None:
        text = "one of " + ", ".join(repr(c) for c in spec.choices)
    if spec.min is not None:
        text += f" {'>' if spec.min_exclusive else '>='} {spec.min:g}"
    if spec.max is not None:
        text += f"{' and' if spec.min is not None else ''} <= {spec.max:g}"
    if spec.length is not None:
        text += f" of length {spec.length}"
    if spec.nullable:
        text += " (or null)"
    return text


def _number(value: Any, kind: Kind) -> float | None:
    """The value as a number if it is one of ``kind``, else None."""
    if isinstance(value, bool):
        return None
    if kind == "int":
        return float(value) if isinstance(value, int) else None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _check_field(value: Any, spec: Field, path: str) -> None:
    if value is None:
        if spec.nullable:
            return
        raise ParamsError(f"{path}: expected {_describe(spec)}, got null")
    if spec.also and any(value == a and type(value) is type(a) for a in spec.also):
        return
    bad = ParamsError(f"{path}: expected {_describe(spec)}, got {value!r}")
    if spec.kind in ("int", "float"):
        number = _number(value, spec.kind)
        if number is None or math.isnan(number):
            raise bad
        low_ok = spec.min is None or (
            number > spec.min if spec.min_exclusive else number >= spec.min
        )
        if not low_ok or (spec.max is not None and number > spec.max):
            raise bad
    elif spec.kind == "str" and not isinstance(value, str):
        raise bad
    elif spec.kind == "bool" and not isinstance(value, bool):
        raise bad
    elif spec.kind == "list":
        if not isinstance(value, list | tuple):
            raise bad
        if spec.length is not None and len(value) != spec.length:
            raise bad
        if spec.items is not None:
            for i, item in enumerate(value):
                _check_field(item, spec.items, f"{path}[{i}]")
    elif spec.kind == "mapping" and not isinstance(value, Mapping):
        raise bad
    if spec.choices is not None and value not in spec.choices:
        raise bad


def check(value: Any, schema: Schema, path: str) -> None:
    """Check ``value`` against ``schema``; ``path`` names it in messages (``"train.common"``).

    Raises:
        ParamsError: On the first unknown key, missing required key, wrong type or value out
            of range, naming its key path.
    """
    if isinstance(schema, Field):
        _check_field(value, schema, path)
        return
    if value is None and isinstance(schema, MapOf) and schema.nullable_values:
        return
    if not isinstance(value, Mapping):
        raise ParamsError(f"{path}: expected a mapping, got {value!r}")
    if isinstance(schema, MapOf):
        for key, item in value.items():
            if schema.key_choices is not None and key not in schema.key_choices:
                raise ParamsError(unknown_key_message(key, path, schema.key_choices))
            if item is None and schema.nullable_values:
                continue
            check(item, schema.value, f"{path}.{key}")
        return
    for key in value:
        if key not in schema.fields:
            raise ParamsError(unknown_key_message(key, path, list(schema.fields)))
    missing = [k for k in schema.required if k not in value]
    if missing:
        raise ParamsError(f"{path}: missing key {missing[0]!r}")
    for key, item in value.items():
        check(item, schema.fields[key], f"{path}.{key}")
