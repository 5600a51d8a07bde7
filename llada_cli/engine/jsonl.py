"""JSON-lines files, one JSON object a line: a run's metrics.jsonl (read by `plot` and by
`runs merge --top-k-val`) and a sampling trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import LladaError

JSON_TYPES = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}


def parse_record(raw: bytes) -> dict[str, Any]:
    """One JSON-lines record (metrics, a sampling trace); ValueError says what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{JSON_TYPES.get(type(record), 'null')}, not a JSON object")
    return record


def read_metrics(path: Path, shown: str | None = None) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl (none if it does not exist yet). A last line without its
    newline is a record still being written, or torn by a kill, and is skipped; any other line
    that is not a JSON object is an error naming `shown` (default: the path) and the line."""
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            records.append(parse_record(raw))
        except ValueError as problem:
            if number == len(lines):  # no newline after it: not completely written
                continue
            raise LladaError(f"{shown or path} line {number}: {problem}") from None
    return records
