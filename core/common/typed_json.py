"""Typed dataclasses read from JSON that anyone may have written: a PNG's metadata, a scene file.

Each field is checked against the type the dataclass declares, recursively, so a refusal names
the field and says what was wrong ("request.controls[0].scale: expected a number, got "x"")
instead of an OverflowError or AttributeError from deep inside. Numbers must be finite; lists
and texts are bounded. Ranges are the dataclasses' own `validate()`'s business.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any, Union

MAX_LIST = 256
MAX_TEXT = 100_000


def typed_from_json(kind, data: Any, where: str, error: type[Exception], max_list: int = MAX_LIST, skip: frozenset[str] = frozenset()):
    """`kind` built from the JSON object `data`; unknown keys refused. `skip` names fields the
    caller fills itself."""
    if not isinstance(data, dict):
        raise error(f"{where}: expected an object, got {describe_value(data)}")
    hints = typing.get_type_hints(kind)
    known = {f.name for f in fields(kind)} - skip
    unknown = set(data) - known
    if unknown:
        raise error(f"{where}: unknown field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
    reader = _Reader(error, max_list)
    values = {name: reader.value(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return kind(**values)
    except TypeError as exc:  # a required field missing
        raise error(f"{where}: {exc}") from None


def describe_value(value: Any) -> str:
    """A value as a refusal quotes it: short, JSON-spelled, or its kind for lists and objects."""
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


class _Reader:
    def __init__(self, error: type[Exception], max_list: int):
        self.error = error
        self.max_list = max_list

    def value(self, hint, value: Any, where: str):
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (Union, types.UnionType):
            return self._union(args, value, where)
        if origin is tuple:
            return self._tuple(args, value, where)
        if origin is dict or hint is dict:
            if not isinstance(value, dict):
                raise self.error(f"{where}: expected an object, got {describe_value(value)}")
            return value
        if is_dataclass(hint):
            return typed_from_json(hint, value, where, self.error, self.max_list)
        if hint is bool:
            if not isinstance(value, bool):
                raise self.error(f"{where}: expected true or false, got {describe_value(value)}")
            return value
        if hint is int:
            return self._int(value, where)
        if hint is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.error(f"{where}: expected a number, got {describe_value(value)}")
            if not math.isfinite(value):
                raise self.error(f"{where}: expected a finite number, got {value}")
            return float(value)
        if hint is str:
            if not isinstance(value, str):
                raise self.error(f"{where}: expected text, got {describe_value(value)}")
            if len(value) > MAX_TEXT:
                raise self.error(f"{where}: {len(value)} characters of text; at most {MAX_TEXT}")
            return value
        return value

    def _union(self, args: tuple, value: Any, where: str):
        if value is None:
            if type(None) in args:
                return None
            raise self.error(f"{where}: a value is needed, got null")
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return self.value(options[0], value, where)
        # Several kinds allowed (a pose is a preset name or a person object): the JSON kind picks.
        for option in options:
            plain = typing.get_origin(option) or option
            if (plain is str and isinstance(value, str)) or (plain is dict and isinstance(value, dict)):
                return self.value(option, value, where)
        kinds = " or ".join(
            {"str": "text", "dict": "an object"}.get(getattr(typing.get_origin(o) or o, "__name__", "?"), "?") for o in options
        )
        raise self.error(f"{where}: expected {kinds}, got {describe_value(value)}")

    def _tuple(self, args: tuple, value: Any, where: str) -> tuple:
        if not isinstance(value, (list, tuple)):
            raise self.error(f"{where}: expected a list, got {describe_value(value)}")
        if len(value) > self.max_list:
            raise self.error(f"{where}: {len(value)} entries; at most {self.max_list}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(self.value(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise self.error(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(self.value(a, item, f"{where}[{i}]") for i, (a, item) in enumerate(zip(args, value)))

    def _int(self, value: Any, where: str) -> int:
        # A whole float (12.0, as some editors write numbers) is accepted as the int it is.
        if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{where}: expected a whole number, got {describe_value(value)}")
        if abs(value) >= 2**63:
            raise self.error(f"{where}: {value} is far out of range")
        return value
