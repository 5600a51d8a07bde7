"""The row formats users already have, read into one shape.

SFT rows become a list of {"role", "content"} messages, from any of:
- `conversations` (MiniMind) or `messages` (OpenAI chat): a list of {"role", "content"} messages,
  or ShareGPT's {"from": "human" | "gpt" | "system", "value"} messages;
- flat pairs: `prompt`/`response`, `question`/`answer`, or Alpaca's `instruction`/`input`/`output`
  (the user turn is the instruction, then a blank line and the input when there is one);
each with an optional `system` string, which becomes the first message (an empty one is left out).

A conversation is trained on when it has an assistant answer after a user turn and no empty user
or assistant message; any other is skipped and counted by its reason (ConversationCounts), so
that `llada data fetch FILE` and `llada sft` say how many were left out and why.

Pretraining text also comes from Parquet files (a string column), read in record batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError, named

ROLES = ("system", "user", "assistant")
# ShareGPT's messages: {"from": "human" | "gpt" | "system", "value": ...}, the hubs' most common SFT rows.
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}
# Tool-calling rows (MiniMind ships some) need a tool-aware template; they are skipped, not rejected.
TOOL_FIELDS = ("tool_calls", "functions", "tools")
MESSAGE_LISTS = ("conversations", "messages")
PAIRS = (("prompt", "response"), ("question", "answer"), ("instruction", "output"))
FORMATS = (
    'conversations or messages: [{"role", "content"}, ...] (or ShareGPT\'s {"from", "value"}), '
    "prompt/response, question/answer, or instruction/input/output"
)


def is_sft_row(row: dict) -> bool:
    """Whether a row has the fields of an SFT format (a text row has only its text field)."""
    return any(key in row for key in MESSAGE_LISTS) or any(a in row and b in row for a, b in PAIRS)


# Why a conversation is skipped, in the words of the count line ("2 without an assistant answer").
SKIPPED = {
    "tools": "with tool calls",
    "no_answer": "without an assistant answer",
    "answer_first": "with an answer before any question",
    "empty": "with an empty message",
}


@dataclass(frozen=True)
class Skipped:
    """A well-formed row that is not trained on; `reason` is a key of SKIPPED."""

    reason: str


def row_conversation(row: dict, where: str) -> list[dict[str, str]] | Skipped:
    """The messages of one SFT row in any accepted format, or why the conversation is skipped."""
    listed = next((key for key in MESSAGE_LISTS if key in row), None)
    if listed is not None:
        messages = _messages(row[listed], listed, where)
    else:
        pair = next((pair for pair in PAIRS if pair[0] in row and pair[1] in row), None)
        if pair is None:
            fields = ", ".join(row) or "none"
            raise UsageError(f"{where}: not an SFT row (fields: {fields}); expected {FORMATS}")
        messages = _pair(row, pair, where)
    if isinstance(messages, Skipped):
        return messages
    system = row.get("system")
    if system not in (None, "") and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": _text(system, "system", where)})
    return conversation_problem(messages) or messages


def conversation_problem(messages: list[dict[str, str]]) -> Skipped | None:
    """Why a conversation cannot be trained on (None when it can); an empty system message is
    dropped from `messages`, as an empty `system` field is."""
    messages[:] = [m for m in messages if m["role"] != "system" or m["content"].strip()]
    if any(not m["content"].strip() for m in messages):
        return Skipped("empty")
    roles = [m["role"] for m in messages]
    if "assistant" not in roles:
        return Skipped("no_answer")
    if "user" not in roles[: roles.index("assistant")]:
        return Skipped("answer_first")
    return None


@dataclass
class ConversationCounts:
    """The conversations of a source: how many were read, and how many were skipped for each reason."""

    read: int = 0
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, outcome: object) -> None:
        self.read += 1
        if isinstance(outcome, Skipped):
            self.skipped[outcome.reason] = self.skipped.get(outcome.reason, 0) + 1

    @property
    def kept(self) -> int:
        return self.read - sum(self.skipped.values())

    def line(self) -> str | None:
        """'skipped 3 of 120 conversations: 2 without an assistant answer, 1 with an empty message'."""
        if not self.skipped:
            return None
        reasons = ", ".join(f"{self.skipped[r]} {SKIPPED[r]}" for r in SKIPPED if r in self.skipped)
        read = f"{self.read} conversation{'s' if self.read != 1 else ''}"
        return f"skipped {sum(self.skipped.values())} of {read}: {reasons}"

    def summary(self) -> dict[str, int]:
        """As a run's data summary keeps it (integers by name)."""
        return {"conversations": self.read, **{f"skipped_{r}": n for r, n in self.skipped.items()}}

    @classmethod
    def of_summary(cls, summary: Mapping[str, object]) -> ConversationCounts:
        counts = cls()
        for key, value in summary.items():
            if isinstance(value, int) and key == "conversations":
                counts.read = value
            elif isinstance(value, int) and key.startswith("skipped_") and key[8:] in SKIPPED:
                counts.skipped[key[8:]] = value
        return counts


def _messages(value: object, key: str, where: str) -> list[dict[str, str]] | Skipped:
    if not isinstance(value, list) or not value:
        raise UsageError(f"{where}: '{key}' must be a non-empty list of messages")
    messages = []
    for i, message in enumerate(value):
        if isinstance(message, dict) and "role" not in message and isinstance(message.get("from"), str):
            role = SHAREGPT_ROLES.get(message["from"], message["from"])
            message = {**message, "role": role, "content": message.get("value")}
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise UsageError(f"{where}: message {i} must be an object with a string 'role'")
        if message["role"] not in ROLES or any(message.get(key) for key in TOOL_FIELDS):
            return Skipped("tools")
        if not isinstance(message.get("content"), str):
            raise UsageError(f"{where}: message {i} ({message['role']}) needs a string 'content'")
        messages.append({"role": message["role"], "content": message["content"]})
    return messages


def _pair(row: dict, pair: tuple[str, str], where: str) -> list[dict[str, str]]:
    asked, answered = pair
    question = _text(row[asked], asked, where)
    if asked == "instruction" and row.get("input"):
        question = f"{question}\n\n{_text(row['input'], 'input', where)}"
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": _text(row[answered], answered, where)},
    ]


def _text(value: object, field: str, where: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{where}: field '{field}' is {type(value).__name__}, expected a string")
    return value


# ------------------------------------------------------------------------------------ parquet


def iter_parquet_texts(path: Path, field: str, on_read: Callable[[int], None] | None = None) -> Iterator[str]:
    """The non-empty strings of column `field`, a record batch at a time (the file is never loaded
    whole); `on_read` hears about the share of the file's bytes each batch stands for."""
    try:
        import pyarrow.parquet as pq  # an optional extra
    except ImportError:
        raise UsageError(
            f"{path}: reading .parquet needs pyarrow: pip install 'llada-cli[parquet]'"
        ) from None
    try:
        table = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises its own errors for a file that is not Parquet
        raise UsageError(f"{path}: not a readable Parquet file ({error})") from None
    columns = table.schema_arrow.names
    if field not in columns:
        raise UsageError(
            f"{path}: no column '{field}' (columns: {', '.join(columns)}); use {named('jsonl_field')}"
        )
    total_rows, size = max(1, table.metadata.num_rows), path.stat().st_size
    row = 0
    for batch in table.iter_batches(batch_size=1024, columns=[field]):
        for value in batch.column(0).to_pylist():
            row += 1
            if value is not None and not isinstance(value, str):
                raise UsageError(
                    f"{path} row {row}: column '{field}' is {type(value).__name__}, expected text"
                )
            if value and value.strip():
                yield value
        if on_read is not None:
            on_read(size * batch.num_rows // total_rows)
