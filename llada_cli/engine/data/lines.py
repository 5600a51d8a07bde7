"""The one reader of the text and JSON-lines files a user hands llada: training data, prompt and
question files, and chat's piped stdin.

Every problem is a UsageError `FILE line N: ...`, and memory is bounded by one line:
- only a regular file is opened: a named pipe or a device (`/dev/zero`) would hang or never end;
- lines are UTF-8; a UTF-8 byte-order mark at the start of the file is skipped, a UTF-16 file, a
  NUL byte (UTF-16 without its mark, a binary file) or any other encoding is refused;
- a line is at most MAX_LINE_BYTES (64 MiB): a file of one endless line is refused at that line,
  not read until memory runs out;
- a JSON line is an object; invalid JSON, nesting too deep for the parser and integers too long
  for Python (over 4,300 digits) are refused with the line's number.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import UsageError

MAX_LINE_BYTES = 64 << 20
MAX_LINE = "64 MiB"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
SAVE = "save it as UTF-8"
OnRead = Callable[[int], None]  # told the byte count of each line read (for a progress bar)

_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_file(path: Path, what: str = "file", hint: str = "") -> None:
    """Refuse a path that is missing, a folder, or not a regular file (before anything opens it:
    opening a named pipe waits for a writer). `hint` follows the not-found message."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {path}{hint}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path} is a folder; give a file inside it")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise UsageError(f"{path} is {kind}, not a file; give a file on disk")


def text_lines(
    path: Path, on_read: OnRead | None = None, what: str = "file", hint: str = ""
) -> Iterator[tuple[int, str]]:
    """(line number, line without its line ending) of a UTF-8 text file, streamed."""
    check_file(path, what, hint)
    try:
        with path.open("rb") as f:  # bytes, so a decoding error names its exact line
            yield from stream_lines(f.readline, str(path), on_read)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}; check its permissions") from exc


def stream_lines(
    readline: Callable[[int], bytes], name: str, on_read: OnRead | None = None
) -> Iterator[tuple[int, str]]:
    """(line number, line) of a binary stream read with `readline(limit)` (a file, stdin's
    buffer), each line decoded as it comes: a piped stdin is answered line by line."""
    lineno = 0
    while raw := readline(MAX_LINE_BYTES + 1):
        lineno += 1
        if on_read is not None:
            on_read(len(raw))
        yield lineno, decode_line(raw, name, lineno)


def decode_line(raw: bytes, name: str, lineno: int) -> str:
    """One line's text, its line ending removed; a line of any other encoding is refused."""
    where = f"{name} line {lineno}"
    if len(raw) > MAX_LINE_BYTES:
        raise UsageError(f"{where}: longer than {MAX_LINE}, the longest line llada reads; split it")
    if lineno == 1:
        if raw.startswith(UTF16_BOMS):
            raise UsageError(f"{where}: not UTF-8 text (it starts with a UTF-16 byte-order mark); {SAVE}")
        raw = raw.removeprefix(UTF8_BOM)
    if b"\0" in raw:
        raise UsageError(f"{where}: not UTF-8 text (a NUL byte: UTF-16 or a binary file?); {SAVE}")
    try:
        return raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start + 1}); {SAVE}") from None
    except MemoryError:
        raise UsageError(f"{where}: too large to read in the memory available; split the line") from None


def json_value(line: str, where: str) -> Any:
    """A JSON line parsed; `where` ("FILE line N") names it in every refusal."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        problem = f"{where}, column {exc.colno}: invalid JSON ({exc.msg})"
        raise UsageError(f"{problem}; fix or delete the line") from None
    except RecursionError:
        raise UsageError(f"{where}: JSON nested too deeply to read; fix or delete the line") from None
    except ValueError:  # an integer of over 4,300 digits (Python's limit)
        raise UsageError(f"{where}: a number of over 4,300 digits, too long to read; fix the line") from None
    except MemoryError:
        raise UsageError(f"{where}: too large to read in the memory available; split the line") from None


def json_objects(
    path: Path, on_read: OnRead | None = None, what: str = "file", hint: str = ""
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON-lines file; an empty file is refused."""
    seen_line = False
    for lineno, line in text_lines(path, on_read, what, hint):
        seen_line = True
        if not line.strip():
            continue
        where = f"{path} line {lineno}"
        row = json_value(line, where)
        if not isinstance(row, dict):
            raise UsageError(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield lineno, row
    if not seen_line:
        raise UsageError(f"{path} is empty; point to a file with data")
