"""Errors the engine raises on purpose. The CLI prints them as one line, never a traceback."""


class LladaError(Exception):
    """A runtime failure the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(LladaError):
    """Bad input from the user: a missing file, a malformed line, an impossible option (exit code 2)."""

    exit_code = 2
