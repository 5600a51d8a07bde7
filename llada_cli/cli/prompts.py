"""Prompt inputs shared by `sample` and `compare`: repeated --prompt and --prompts-file."""

from __future__ import annotations

import json
from pathlib import Path

from ..engine.errors import UsageError


def read_prompts_file(path: Path) -> list[str]:
    """Text lines, or .jsonl with a `prompt` field per line; blank lines are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"prompts file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read prompts file {path}: {error}") from None
    prompts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        prompts.append(_jsonl_prompt(path, number, line) if path.suffix == ".jsonl" else line)
    if not prompts:
        raise UsageError(f"prompts file {path} has no prompt")
    return prompts


def _jsonl_prompt(path: Path, number: int, line: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}:{number}: invalid JSON ({error.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
        raise UsageError(f"{path}:{number}: expected an object with a string field 'prompt'")
    return record["prompt"]


def gather_prompts(prompts: list[str] | None, prompts_file: Path | None) -> list[str]:
    gathered = list(prompts or []) + (read_prompts_file(prompts_file) if prompts_file else [])
    if not gathered:
        raise UsageError("give --prompt TEXT (repeatable) or --prompts-file FILE")
    return gathered
