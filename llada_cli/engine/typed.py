"""Values read from a file (run.json, a config or experiment file) checked against the types their
dataclass declares, so that a hand-edited `"batch_size": "16"` is refused where it is read, in
one line, instead of failing deep inside training."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Union

from .errors import UsageError, named

INT_LIMIT = 2**63  # what a torch or numpy integer holds


def expected(value: Any, hint: Any) -> str | None:
    """None when `value` conforms to the type `hint`, else what was expected ('an integer')."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if origin in (Union, types.UnionType):
        if any(expected(value, arg) is None for arg in args):
            return None
        return " or ".join(str(expected(object(), arg)) for arg in args)
    if origin is Literal:
        return None if value in args else "one of " + ", ".join(str(a) for a in args)
    if hint is type(None):
        return None if value is None else "null"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < INT_LIMIT
        return None if ok else "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "a number"
    if hint in (str, Path):
        return None if isinstance(value, (str, Path)) else "a string"
    if origin in (list, tuple):
        item = args[0] if args else Any
        ok = isinstance(value, (list, tuple)) and all(expected(v, item) is None for v in value)
        return None if ok else f"a list of {_plural(item)}"
    if origin is dict:
        key, item = args if args else (Any, Any)
        ok = isinstance(value, dict) and all(
            expected(k, key) is None and expected(v, item) is None for k, v in value.items()
        )
        return None if ok else "an object"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return None if isinstance(value, (dict, hint)) else "an object"
    return None  # a type the files never hold


def check_types(cls: type, values: Mapping[str, Any]) -> None:
    """Refuse the first value whose type is not the one its field of `cls` declares."""
    for name, what, value in mismatches(cls, values):
        raise UsageError(f"{named(name)} must be {what}, got {shown(value)}")


def mismatches(cls: type, values: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(field, what it must be, the value) for each value of a field of `cls` of another type."""
    hints = field_types(cls)
    for name, value in values.items():
        if name in hints and (what := expected(value, hints[name])) is not None:
            yield name, what, value


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The evaluated type of each dataclass field (the modules use postponed annotations)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _plural(hint: Any) -> str:
    words = {int: "integers", float: "numbers", str: "strings"}
    return words.get(hint, "values")


def shown(value: Any) -> str:
    """A value as a message quotes it: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
