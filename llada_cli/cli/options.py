"""Typer options generated from the engine's config dataclasses (engine/options.py).

Each option field becomes `--field-name` (plus its aliases) in the panel of its config class.
`@with_configs(name=Group(Config, panel), ...)` appends the generated parameters to a command's
signature (Typer reads the signature) and hands the command one `Given` per group: the values
the user gave (flags or --config), and the config built from them. The command's callback
carries the same check as `check_given` (parameter values by name), for `llada pipeline`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

import typer

from ..engine.errors import UsageError, named
from ..engine.options import INT_MAX, INT_MIN, Spec, check_values, configured, integer_range, option_fields
from .common import complete_run_name, flag, with_flags

T = TypeVar("T")


class Numbers:
    """The CLI type of a tuple field: comma-separated numbers, e.g. 1,4,16 (or exactly `count`)."""

    def __init__(self, kind: type, count: int | None) -> None:
        self.kind, self.count = kind, count

    @property
    def metavar(self) -> str:
        return ",".join([self.kind.__name__.upper()] * (self.count or 1)) + ("" if self.count else ",...")

    def __call__(self, text: str) -> tuple:
        try:
            numbers = tuple(self.kind(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise typer.BadParameter(f"expected comma-separated numbers, got '{text}'") from None
        if self.count is not None and len(numbers) != self.count:
            raise typer.BadParameter(f"expected {self.count} comma-separated numbers, got '{text}'")
        return numbers


def machine_integers(params: list[Any]) -> None:
    """Refuse an integer a 64-bit integer cannot hold (engine/options.py) in every integer parameter
    of a command, whichever way it came (a flag, an argument, an environment variable, --config):
    called by every llada command as it is built (cli/root.py)."""
    for param in params:
        if param.type_descriptor.annotation is int:
            param.callback = _in_machine_range(param.callback)


def _in_machine_range(callback: Callable[..., Any] | None) -> Callable[..., Any]:
    def check(ctx: Any, param: Any, value: Any) -> Any:
        for number in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(number, int) and not INT_MIN <= number <= INT_MAX:
                raise typer.BadParameter(f"{number} does not fit in 64 bits: {integer_range()}", ctx, param)
        return value if callback is None else callback(ctx, param, value)

    return check


@dataclass(frozen=True)
class Group:
    """The options of one config class in a command: its panel, and how they show."""

    cls: type
    panel: str
    unset_default: str | None = None  # shown instead of the field defaults (e.g. "preset")
    skip: frozenset[str] = frozenset()
    prefix: str = ""  # compare's per-side options: --ar-temperature
    prefixed_aliases: bool = True  # False: aliases keep their own spelling (--gen-temp on one side)
    help: dict[str, str] = dataclasses.field(default_factory=dict)  # per-command help overrides
    hide: frozenset[str] = frozenset()  # accepted (e.g. in seed command lines) but not offered in --help

    def given(self, values: dict[str, Any]) -> Given:
        """The values given to this group, checked; a refusal names the group's own flags
        (compare's --ar-temperature, not the field both sides share)."""
        try:
            return Given(self.cls, values)
        except UsageError as error:
            if not self.prefix:
                raise
            raise UsageError(error.render(lambda field: named(self.prefix + field))) from None

    def specs(self) -> list[tuple[dataclasses.Field, Spec]]:
        return [(f, s) for f, s in option_fields(self.cls) if f.name not in self.skip]

    def parameters(self) -> list[inspect.Parameter]:
        hints = typing.get_type_hints(self.cls)
        return [self._parameter(f, spec, hints[f.name]) for f, spec in self.specs()]

    def _parameter(self, field: dataclasses.Field, spec: Spec, hint: Any) -> inspect.Parameter:
        kind = _bare(hint)
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        name = self.prefix + field.name
        alias_prefix = self.prefix if self.prefixed_aliases else ""
        flags = [flag(name), *(flag(alias_prefix + alias) for alias in spec.aliases)]
        extra: dict[str, Any] = {}
        if kind is bool:
            flags[0] += f"/--no-{name.replace('_', '-')}" if spec.negatable else ""
        elif spec.choices is not None:
            kind = Literal.__getitem__(spec.choices)
        elif typing.get_origin(kind) is tuple:
            args = typing.get_args(kind)
            numbers = Numbers(args[0], None if args[-1] is Ellipsis else len(args))
            kind, extra["parser"], extra["metavar"] = Numbers, numbers, numbers.metavar
        if spec.completes_runs:
            extra["autocompletion"] = complete_run_name
        if not required:
            extra["show_default"] = self.unset_default or _shown(field.default)
        declared = typer.Option(
            *flags,
            help=with_flags(self.help.get(field.name, spec.help)),
            rich_help_panel=self.panel,
            hidden=field.name in self.hide,
            **extra,
        )
        default = ... if required else None
        annotation = kind if required else kind | None
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, declared]
        )


def _bare(hint: Any) -> Any:
    """`int | None` -> int."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _shown(default: Any) -> str | bool:
    if default is None or default == ():
        return False
    if isinstance(default, bool):
        return "on" if default else "off"
    return ",".join(map(str, default)) if isinstance(default, tuple) else str(default)


@dataclass(frozen=True)
class Given(Generic[T]):
    """The options of one config class the user gave, by field name."""

    cls: type[T]
    values: dict[str, Any]

    def __post_init__(self) -> None:
        check_values(self.cls, self.values)  # also the options this command will not use

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.values)

    def build(self, base: T | None = None, **fallbacks: Any) -> T:
        """The config from the given values, over `base` (or the defaults) and `fallbacks`."""
        return configured(self.cls, {**fallbacks, **self.values}, base)


def with_configs(
    into: tuple[str, type] | None = None, **groups: Group
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Append the groups' options to the command; pass one `Given` per group as a keyword argument,
    or, with `into=(name, cls)`, all of them as one `cls(**givens)` in the keyword argument `name`."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        generated = {name: group.parameters() for name, group in groups.items()}

        def given(values: dict[str, Any]) -> dict[str, object]:
            """Each group's `Given`, checked, from the values of the command's parameters by name."""
            return {
                name: group.given(
                    {
                        param.name[len(group.prefix) :]: values[param.name]
                        for param in generated[name]
                        if values.get(param.name) is not None
                    }
                )
                for name, group in groups.items()
            }

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            givens = given(
                {param.name: kwargs.pop(param.name) for params in generated.values() for param in params}
            )
            if into is not None:
                givens = {into[0]: into[1](**givens)}
            return func(*args, **kwargs, **givens)

        hidden = set(groups) | ({into[0]} if into else set())
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name not in hidden]
        extra = [p for params in generated.values() for p in params]
        wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
        # the same check without running the command: `llada pipeline` checks every step first
        # (the command's callback carries it: functools.wraps copies a function's attributes)
        wrapper.check_given = given  # type: ignore[attr-defined]
        return wrapper

    return decorate
