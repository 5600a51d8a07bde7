"""Prompt inputs shared by `sample` and `compare`: repeated --prompt and --prompts-file."""

from __future__ import annotations

from pathlib import Path

from ..engine.data.lines import json_value, text_lines
from ..engine.errors import UsageError


def read_prompts_file(path: Path) -> list[str]:
    """Text lines, or .jsonl with a `prompt` field per line; blank lines are skipped. The file is
    read as every data file is (engine/data/lines.py): UTF-8, `FILE line N: ...` for a bad line."""
    prompts = []
    for number, line in text_lines(path, what="prompts file"):
        if not line.strip():
            continue
        prompts.append(_jsonl_prompt(path, number, line) if path.suffix == ".jsonl" else line)
    if not prompts:
        raise UsageError(f"prompts file {path} has no prompt")
    return prompts


def _jsonl_prompt(path: Path, number: int, line: str) -> str:
    record = json_value(line, f"{path} line {number}")
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
        raise UsageError(f"{path} line {number}: expected an object with a string field 'prompt'")
    return record["prompt"]


def gather_prompts(prompts: list[str] | None, prompts_file: Path | None) -> list[str]:
    gathered = list(prompts or []) + (read_prompts_file(prompts_file) if prompts_file else [])
    if not gathered:
        raise UsageError("give --prompt TEXT (repeatable) or --prompts-file FILE")
    return gathered
