"""Where training text comes from: the builtin corpus, the MiniMind download, or a local file.

Files are read line by line through lines.py (MiniMind's are over a gigabyte). Any problem in a
file is a UsageError naming the file and line, so the user can fix the data and rerun.
"""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError, named
from .builtin import builtin_corpus
from .formats import FORMATS, ConversationCounts, Skipped, iter_parquet_texts, row_conversation
from .lines import MAX_LINE, MAX_LINE_BYTES, OnRead, check_file, json_objects, text_lines

MINIMIND_PRETRAIN = "pretrain_t2t_mini.jsonl"
MINIMIND_SFT = "sft_t2t_mini.jsonl"
NOT_FOUND = "; give builtin, minimind or the path of a .jsonl/.txt file"


# ------------------------------------------------------------------------------------ reading files
# Every file goes through lines.py: regular files only, UTF-8, bounded lines, `FILE line N: ...`.


def _check_readable(path: Path) -> None:
    check_file(path, "data file", NOT_FOUND)


def _lines(path: Path, on_read: OnRead | None = None) -> Iterator[tuple[int, str]]:
    return text_lines(path, on_read, "data file", NOT_FOUND)


def _json_objects(path: Path, on_read: OnRead | None = None) -> Iterator[tuple[int, dict]]:
    return json_objects(path, on_read, "data file", NOT_FOUND)


def _require_rows(rows: list | int, path: Path, what: str) -> None:
    if not rows:
        raise UsageError(f"{path} has no usable {what}; check that it is the right file")


def read_jsonl_texts(path: Path, field: str = "text") -> list[str]:
    """The `field` string of every row; rows whose text is empty are skipped."""
    return list(iter_jsonl_texts(path, field))


def iter_jsonl_texts(path: Path, field: str = "text", on_read: OnRead | None = None) -> Iterator[str]:
    """read_jsonl_texts, one row at a time: memory bounded by a line, not by the file."""
    count = 0
    for lineno, row in _json_objects(path, on_read):
        if field not in row:
            fields = ", ".join(row) or "none"
            raise UsageError(
                f"{path} line {lineno}: no field '{field}' (fields: {fields}); use {named('jsonl_field')}"
            )
        text = row[field]
        if not isinstance(text, str):
            kind = type(text).__name__
            raise UsageError(f"{path} line {lineno}: field '{field}' is {kind}, expected a string")
        if text.strip():
            count += 1
            yield text
    _require_rows(count, path, f"'{field}' texts")


def read_jsonl_conversations(path: Path) -> list[list[dict[str, str]]]:
    """SFT rows in any format of formats.py (MiniMind's {"conversations": [...]}, OpenAI's
    {"messages": [...]}, prompt/response, question/answer, Alpaca), as lists of messages."""
    return list(iter_jsonl_conversations(path))


def iter_jsonl_conversations(
    path: Path, counts: ConversationCounts | None = None
) -> Iterator[list[dict[str, str]]]:
    """read_jsonl_conversations, one row at a time: memory bounded by a line, not by the file.
    `counts` hears of every conversation read and of every one skipped (formats.SKIPPED); a file
    with none to train on is refused with those counts."""
    counts = counts if counts is not None else ConversationCounts()
    for lineno, row in _json_objects(path):
        conversation = row_conversation(row, f"{path} line {lineno}")
        counts.add(conversation)
        if not isinstance(conversation, Skipped):
            yield conversation
    if not counts.kept:
        why = counts.line() or "no conversation"
        raise UsageError(
            f"{path} has no usable conversations ({why}); each needs a user question, then an "
            "assistant answer, and no empty message"
        )


def iter_text_paragraphs(path: Path, on_read: OnRead | None = None) -> Iterator[str]:
    """One document per paragraph; paragraphs are separated by blank lines. A paragraph is held
    whole, so it is bounded as a line is (lines.MAX_LINE_BYTES)."""
    count, current, size = 0, [], 0
    for lineno, line in _lines(path, on_read):
        if line.strip():
            current.append(line)
            size += len(line)
            if size > MAX_LINE_BYTES:
                raise UsageError(
                    f"{path} line {lineno}: a paragraph longer than {MAX_LINE}, the longest document "
                    "llada reads; separate paragraphs with blank lines"
                )
        elif current:
            count += 1
            yield "\n".join(current)
            current, size = [], 0
    if current:
        count += 1
        yield "\n".join(current)
    _require_rows(count, path, "paragraphs")


# ------------------------------------------------------------------------------------ resolving a source


def _source_path(source: str, data_dir: Path | None, minimind_file: str) -> Path:
    if source == "minimind" and data_dir is not None:
        path = Path(data_dir) / "minimind" / minimind_file
        if not path.is_file():
            raise UsageError(f"MiniMind data not found at {path}; run `llada data fetch minimind` first")
        return path
    return Path(source).expanduser()


def load_pretrain_texts(source: str, data_dir: Path, field: str = "text") -> list[str]:
    """Documents of "builtin", "minimind", or a .jsonl / .txt file."""
    return list(iter_pretrain_texts(source, data_dir, field))


def iter_pretrain_texts(
    source: str, data_dir: Path, field: str = "text", on_read: OnRead | None = None
) -> Iterator[str]:
    """load_pretrain_texts, one document at a time (MiniMind's file is over a gigabyte)."""
    if source == "builtin":
        return iter(builtin_corpus().documents)
    path = _source_path(source, data_dir, MINIMIND_PRETRAIN)
    if path.suffix == ".txt":
        return iter_text_paragraphs(path, on_read)
    if path.suffix == ".jsonl":
        return iter_jsonl_texts(path, field, on_read)
    _check_readable(path)
    if path.suffix == ".parquet":
        return iter_parquet_texts(path, field, on_read)
    raise UsageError(
        f'unsupported data file {path}: use .jsonl ({{"{field}": ...}} rows), .txt, '
        f'or .parquet (a "{field}" column)'
    )


def source_size(source: str, data_dir: Path) -> int | None:
    """Bytes of a file source (None for the builtin corpus)."""
    if source == "builtin":
        return None
    path = _source_path(source, data_dir, MINIMIND_PRETRAIN)
    return path.stat().st_size if path.is_file() else None


def tokenizer_sample(
    source: str, data_dir: Path, field: str, sample_bytes: int, piece_chars: int = 10_000
) -> Iterator[str]:
    """Text to train a tokenizer on: about `sample_bytes` of documents spread over the whole
    source (every k-th), cut into pieces of at most `piece_chars` characters, since BPE
    training on one enormous unbroken word runs for minutes."""
    size = source_size(source, data_dir)
    stride = max(1, (size or 0) // max(1, sample_bytes))
    for index, text in enumerate(iter_pretrain_texts(source, data_dir, field)):
        if index % stride == 0:
            for start in range(0, len(text), piece_chars):
                yield text[start : start + piece_chars]


def load_sft_conversations(source: str, data_dir: Path) -> list[list[dict[str, str]]]:
    """Conversations of "builtin", "minimind", or a .jsonl file of {"conversations": [...]} rows."""
    return list(iter_sft_conversations(source, data_dir))


def iter_sft_conversations(
    source: str, data_dir: Path, counts: ConversationCounts | None = None
) -> Iterator[list[dict[str, str]]]:
    """load_sft_conversations, one conversation at a time; `counts` as in iter_jsonl_conversations."""
    if source == "builtin":
        return _counted(builtin_corpus().conversations, counts or ConversationCounts())
    path = _source_path(source, data_dir, MINIMIND_SFT)
    if path.suffix != ".jsonl":
        _check_readable(path)
        raise UsageError(f"unsupported SFT file {path}: use .jsonl with one conversation a row ({FORMATS})")
    return iter_jsonl_conversations(path, counts)


def _counted(
    conversations: list[list[dict[str, str]]], counts: ConversationCounts
) -> Iterator[list[dict[str, str]]]:
    for conversation in conversations:
        counts.add(conversation)
        yield conversation


def sft_fingerprint(source: str, data_dir: Path) -> str:
    """A string that changes whenever the conversations of `source` may have changed."""
    if source == "builtin":
        conversations = json.dumps(builtin_corpus().conversations, ensure_ascii=False)
        return "builtin-sft:" + hashlib.sha256(conversations.encode()).hexdigest()[:16]
    path = _source_path(source, data_dir, MINIMIND_SFT)
    _check_readable(path)
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def source_fingerprint(source: str, field: str, data_dir: Path | None = None) -> str:
    """A string that changes whenever the pretraining text of `source` may have changed.

    "minimind" needs `data_dir` to find the file; without it only the file name is used.
    """
    if source == "builtin":  # the generated text itself: any change to the generator changes it
        return "builtin:" + hashlib.sha256("\n".join(builtin_corpus().documents).encode()).hexdigest()[:16]
    if source == "minimind" and data_dir is None:
        return f"minimind:{MINIMIND_PRETRAIN}:{field}"
    path = _source_path(source, data_dir, MINIMIND_PRETRAIN)
    _check_readable(path)
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{field}"
