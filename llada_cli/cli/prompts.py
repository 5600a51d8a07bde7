"""Prompt inputs shared by `sample` and `compare`: repeated --prompt and --prompts-file (`-`: stdin)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..engine.data.lines import json_value, stream_lines, text_lines
from ..engine.errors import UsageError

STDIN = Path("-")


def read_prompts_file(path: Path) -> list[str]:
    """Text lines, or .jsonl with a `prompt` field per line; blank lines are skipped. The file is
    read as every data file is (engine/data/lines.py): UTF-8, `FILE line N: ...` for a bad line.
    `-` is stdin, read the same way as a text file."""
    if path == STDIN:
        lines, source, what = stream_lines(sys.stdin.buffer.readline, "stdin"), "stdin", "stdin"
    else:
        lines, source, what = text_lines(path, what="prompts file"), str(path), f"prompts file {path}"
    jsonl = path.suffix == ".jsonl"
    prompts = [_jsonl_prompt(source, n, line) if jsonl else line for n, line in lines if line.strip()]
    if not prompts:
        raise UsageError(f"{what} has no prompt")
    return prompts


def _jsonl_prompt(source: str, number: int, line: str) -> str:
    record = json_value(line, f"{source} line {number}")
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
        raise UsageError(f"{source} line {number}: expected an object with a string field 'prompt'")
    return record["prompt"]


def gather_prompts(prompts: list[str] | None, prompts_file: Path | None) -> list[str]:
    gathered = list(prompts or []) + (read_prompts_file(prompts_file) if prompts_file else [])
    if not gathered:
        raise UsageError("give --prompt TEXT (repeatable) or --prompts-file FILE (- reads stdin)")
    return gathered
