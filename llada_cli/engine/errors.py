"""Errors the engine raises on purpose. The CLI prints them as one line, never a traceback.

A message names an option by its field, written `field_name` (backticks, see `named`): the CLI
renders it as the flag (dashes for underscores), the Python API leaves the keyword argument's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NAMED = re.compile(r"`([a-z][a-z0-9_]*)`")


def named(field: str) -> str:
    """How a message refers to the option `field`."""
    return f"`{field}`"


class LladaError(Exception):
    """A runtime failure the user can act on (exit code 1)."""

    exit_code = 1

    def render(self, name: Callable[[str], str]) -> str:
        """The message with every named option shown as `name(field)` (a flag, a keyword argument)."""
        return _NAMED.sub(lambda match: name(match.group(1)), str(self))


class UsageError(LladaError):
    """Bad input from the user: a missing file, a malformed line, an impossible option (exit code 2)."""

    exit_code = 2
