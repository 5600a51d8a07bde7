"""Options are declared once, as fields of the engine's config dataclasses.

`option(default, help, ...)` is a dataclass field whose metadata holds everything a front end
needs: the help text, the allowed values (the keys of a registry), extra spellings and the
bounds of a number. The CLI turns each such field into a flag, `--` + the field's name with
dashes; the Python API takes the field's name as a keyword argument. `check_options` enforces
the declared choices and bounds, so every front end refuses the same values with the same words.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UsageError, named

REQUIRED: Any = dataclasses.MISSING

# What an integer option may hold: a 64-bit signed integer, as torch's sizes, counts and seeds do
# (torch.manual_seed takes any of them). The CLI's integer flags have the same range (cli/options.py).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Spec:
    help: str
    choices: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()  # other spellings of the flag, e.g. --lr for --learning-rate
    negatable: bool = False  # a bool that has a --no-... form
    at_least: float | None = None  # value >= at_least
    above: float | None = None  # value > above
    at_most: float | None = None  # value <= at_most
    below: float | None = None  # value < below
    completes_runs: bool = False  # shell completion offers run names


def option(
    default: Any,
    help: str,
    *,
    choices: Iterable[str] | None = None,
    aliases: tuple[str, ...] = (),
    negatable: bool = False,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    completes_runs: bool = False,
) -> Any:
    """A dataclass field that is a user-facing option (`choices` may be a registry: its keys)."""
    spec = Spec(
        help=help,
        choices=tuple(choices) if choices is not None else None,
        aliases=aliases,
        negatable=negatable,
        at_least=at_least,
        above=above,
        at_most=at_most,
        below=below,
        completes_runs=completes_runs,
    )
    return dataclasses.field(default=default, metadata={"option": spec})


def option_fields(cls: type) -> list[tuple[dataclasses.Field, Spec]]:
    """The fields of a config class that are options, in declaration order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def option_values(config: Any) -> dict[str, Any]:
    """The option fields of a config and their values."""
    return {f.name: getattr(config, f.name) for f, _ in option_fields(type(config))}


def option_names(cls: type) -> set[str]:
    return {f.name for f, _ in option_fields(cls)}


def check_options(config: Any) -> None:
    """Refuse a value outside the declared choices or bounds, or not finite (NaN, infinity)."""
    check_values(type(config), option_values(config))


def check_values(cls: type, values: Mapping[str, Any]) -> None:
    """The same check on values by field name, before a config is built (or when none will be):
    a value is refused even where the command does not use it. A list's numbers are each checked."""
    specs = {f.name: spec for f, spec in option_fields(cls)}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None or value is None or isinstance(value, bool):
            continue
        if spec.choices is not None and value not in spec.choices:
            raise UsageError(f"{named(name)} '{value}' is unknown: use one of {', '.join(spec.choices)}")
        for number in value if isinstance(value, tuple) else (value,):
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                _check_bounds(name, number, spec)


def _check_bounds(name: str, value: float, spec: Spec) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{named(name)} must be a finite number, got {value}")
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        raise UsageError(f"{named(name)} {value} does not fit in 64 bits: {integer_range()}")
    rules = (
        (spec.at_least, lambda b: value >= b, "at least"),
        (spec.above, lambda b: value > b, "more than"),
        (spec.at_most, lambda b: value <= b, "at most"),
        (spec.below, lambda b: value < b, "less than"),
    )
    for bound, holds, words in rules:
        if bound is not None and not holds(bound):
            raise UsageError(f"{named(name)} must be {words} {_plain(bound)}, got {_plain(value)}")


def only_with(config: Any, names: Iterable[str], holds: bool, condition: str) -> None:
    """Refuse the options among `names` set away from their defaults (given, in effect) when they
    have no effect: unless `condition` (words, options named) holds."""
    if holds:
        return
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    changed = [name for name in names if getattr(config, name) != defaults[name]]
    if changed:
        listed = ", ".join(named(name) for name in changed)
        verb, pronoun = ("applies", "it") if len(changed) == 1 else ("apply", "them")
        raise UsageError(f"{listed} {verb} only with {condition}: add that, or drop {pronoun}")


def integer_range() -> str:
    """What an integer may be, in words (every integer option's widest range)."""
    return f"use a number from {INT_MIN} to {INT_MAX}"


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def configured(cls: type, values: Mapping[str, Any], base: Any = None) -> Any:
    """`cls` (or `base` with changes) from option values by field name; unknown names refused.

    Every config class checks its options itself, in __post_init__ (test_options checks that)."""
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise UsageError(f"{', '.join(named(n) for n in unknown)}: not an option here")
    return dataclasses.replace(base, **values) if base is not None else cls(**values)
