"""`llada chat`'s sampler settings between turns: /set NAME VALUE, /set SWITCH, /unset NAME, /set.

A setting is named as its flag without the dashes in front (`gen-length`); its aliases and the
other kind's answer length (`max-new-tokens` on a diffusion run) are taken too, as by the flags.
"""

from __future__ import annotations

import difflib
import typing
from typing import TYPE_CHECKING, Any

from ..engine.errors import UsageError, named
from ..engine.options import option_fields
from ..engine.sampling.settings import ARSettings, DiffusionSettings

if TYPE_CHECKING:
    from .. import api

# The oldest turns are dropped until the context leaves an answer at least this many tokens
# (or the answer length set, when one is).
MIN_ANSWER = 16
# The answer length's field for each kind (api.Model.settings takes either name for both).
LENGTHS = {"ar": "max_new_tokens", "diffusion": "gen_length"}
NUMBERS = {int: "a whole number", float: "a number"}


def shown(name: str) -> str:
    """A field as chat names it, the way /set takes it: `gen_length` is gen-length."""
    return name.replace("_", "-")


class ChatSettings:
    """The sampler options given (flags, then /set) by field name; the others keep their defaults."""

    def __init__(self, model: api.Model, given: dict[str, Any]) -> None:
        self.model = model
        self.cls = ARSettings if model.kind == "ar" else DiffusionSettings
        self.length = LENGTHS[model.kind]
        other = next(name for name in LENGTHS.values() if name != self.length)
        if other in given and self.length in given:  # as api.Model.settings: one would be dropped
            raise UsageError(f"{named(self.length)} and {named(other)} both set the answer length: give one")
        self.given = {self.length if name == other else name: value for name, value in given.items()}
        self.specs = {field.name: spec for field, spec in option_fields(self.cls)}
        self.spellings = {shown(name): name for name in self.specs} | {shown(other): self.length}
        self.spellings |= {shown(alias): name for name, spec in self.specs.items() for alias in spec.aliases}

    def check(self, system: str | None, given: dict[str, Any] | None = None) -> None:
        """Refuse settings that cannot work, or whose answer length no turn leaves room for: even an
        empty message takes the chat template's tokens (and the system message's)."""
        settings = self.model.settings(**(self.given if given is None else given))
        room = self.model.context_length - len(self.model.encode_prompt("", chat=True, system=system))
        wanted = getattr(settings, self.length)
        if wanted is not None and wanted > room:
            template = (
                "the chat template and the system message leave" if system else "the chat template leaves"
            )
            raise UsageError(
                f"{named(self.length)} {wanted} does not fit: {template} at most {room} of the model's "
                f"{self.model.context_length} tokens for an answer; use at most {room}, or leave "
                f"{named(self.length)} out to fit each answer to its turn"
            )
        self.model.fitted(settings, [""], chat=True, system=system)  # a block length longer than that room

    def set(self, words: str, system: str | None) -> str:
        """Apply `/set NAME VALUE` (`/set SWITCH`, `/set no-SWITCH`); what to show."""
        spelled, _, text = words.partition(" ")
        text = text.strip()
        if text == "default":
            return self.unset(spelled, system)
        name, value = self._value(spelled, text)
        changed = {**self.given, name: value}
        self.check(system, changed)
        self.given = changed
        return self._line(name)

    def unset(self, spelled: str, system: str | None) -> str:
        """`/unset NAME`: the setting's default again."""
        if not spelled:
            raise UsageError("/unset needs the name of a setting; /set lists them")
        name = self._name(spelled.removeprefix("no-") if spelled not in self.spellings else spelled)
        changed = {key: value for key, value in self.given.items() if key != name}
        self.check(system, changed)
        self.given = changed
        return self._line(name)

    def needed(self) -> int:
        """The answer's room that dropping old turns makes: the length set, else MIN_ANSWER (or a
        block, which the answer needs at least)."""
        return self.given.get(self.length) or max(MIN_ANSWER, self.given.get("block_length") or 0)

    def listing(self) -> str:
        """`/set` alone: every setting and its value."""
        settings = self.model.settings(**self.given)
        width = max(len(shown(name)) for name in self.specs)
        rows = [
            f"  {shown(name):<{width}}  {_text(getattr(settings, name))}"
            + ("  (set)" if name in self.given else "")
            for name in self.specs
        ]
        return "\n".join(["settings (/set NAME VALUE, /set SWITCH, /unset NAME for the default):", *rows])

    def _line(self, name: str) -> str:
        value = _text(getattr(self.model.settings(**self.given), name))
        default = name not in self.given and value != "default"
        return f"{shown(name)} = {value}" + (" (the default)" if default else "")

    def _name(self, spelled: str) -> str:
        if spelled in self.spellings:
            return self.spellings[spelled]
        close = difflib.get_close_matches(spelled, [shown(name) for name in self.specs], n=1)
        guess = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(
            f"'{spelled}' is not a setting of {self.model.kind} sampling{guess} (/set lists them)"
        )

    def _value(self, spelled: str, text: str) -> tuple[str, Any]:
        """The field and its value, as its type: a switch (bool) takes no value, it is on, or off
        as `no-NAME` where its flag has a --no- form."""
        negated = spelled.startswith("no-") and spelled not in self.spellings
        name = self._name(spelled[3:] if negated else spelled)
        if negated and not self.specs[name].negatable:
            raise UsageError(f"{named(name)} has no 'no-' form: /unset {shown(name)} turns it off")
        hint = typing.get_type_hints(self.cls)[name]
        kind = next(k for k in typing.get_args(hint) or (hint,) if k is not type(None))
        if kind is bool:
            if text:
                raise UsageError(
                    f"{named(name)} is a switch and takes no value: /set {spelled} turns it "
                    f"{'off' if negated else 'on'}, /unset {shown(name)} gives its default"
                )
            return name, not negated
        if not text:
            raise UsageError(
                f"{named(name)} needs a value: /set {shown(name)} VALUE, or /unset {shown(name)}"
            )
        try:
            return name, kind(text)
        except ValueError:
            raise UsageError(
                f"{named(name)} expects {NUMBERS.get(kind, kind.__name__)}, got '{text}'"
            ) from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "default" if value is None else str(value)  # decided for each turn (see the flag's help)
