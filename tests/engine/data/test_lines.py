"""The one reader of user text and JSON-lines files (data/lines.py): every problem is `FILE line N:
...`, regular files only, UTF-8 with its byte-order mark skipped, bounded lines, JSON refusals."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from llada_cli.engine.data import lines
from llada_cli.engine.data.lines import check_file, json_objects, stream_lines, text_lines
from llada_cli.engine.errors import UsageError
from tests.engine.data.test_sources import named_pipe


def usage_error(match: str):
    return pytest.raises(UsageError, match=re.escape(match))


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_lines_come_without_their_endings_and_a_utf8_bom_is_skipped(tmp_path: Path) -> None:
    path = written(tmp_path / "a.txt", b"\xef\xbb\xbffirst\r\nsecond\n\nlast")
    assert list(text_lines(path)) == [(1, "first"), (2, "second"), (3, ""), (4, "last")]
    later_bom = written(tmp_path / "b.txt", b"one\n\xef\xbb\xbftwo\n")  # only the file's start is a BOM
    assert list(text_lines(later_bom))[1] == (2, "\ufefftwo")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Tidar\n".encode("utf-16"), "line 1: not UTF-8 text (it starts with a UTF-16 byte-order mark)"),
        ("Tidar\n".encode("utf-16-be"), "line 1: not UTF-8 text (a NUL byte: UTF-16 or a binary file?)"),
        (b"\0" * 64, "line 1: not UTF-8 text (a NUL byte"),
        ("ok\ncafé\n".encode("latin-1"), "line 2: not UTF-8 text (invalid continuation byte at byte 4)"),
    ],
    ids=["utf-16", "utf-16-without-bom", "nul-bytes", "latin-1"],
)
def test_text_that_is_not_utf8_is_refused_naming_its_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = written(tmp_path / "prompts.txt", data)
    with usage_error(f"{path} {message}"):
        list(text_lines(path))


def test_a_line_longer_than_the_bound_is_refused_before_it_is_read_whole(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(lines, "MAX_LINE_BYTES", 16)
    path = written(tmp_path / "a.jsonl", b"short\n" + b"x" * 1000)
    reads: list[int] = []
    with usage_error(f"{path} line 2: longer than 64 MiB, the longest line llada reads; split it"):
        list(text_lines(path, on_read=reads.append))
    assert reads == [6, 17]  # the long line was read up to the bound, not to its end
    exact = written(tmp_path / "b.jsonl", b"x" * 15 + b"\n")  # 16 bytes with its newline: allowed
    assert list(text_lines(exact)) == [(1, "x" * 15)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}", "line 2: JSON nested too deeply to read"),
        ('{"text": "a", "n": ' + "9" * 5000 + "}", "line 2: a number of over 4,300 digits, too long to read"),
        ('{"text": "a"', "line 2, column 13: invalid JSON (Expecting ',' delimiter)"),
        ("[1, 2]", "line 2: expected a JSON object, got list"),
    ],
    ids=["deep", "long-integer", "invalid", "not-an-object"],
)
def test_json_lines_that_python_cannot_read_are_refused_naming_their_line(tmp_path, line, message) -> None:
    path = written(tmp_path / "a.jsonl", (json.dumps({"text": "fine"}) + "\n" + line + "\n").encode())
    with usage_error(f"{path} {message}"):
        list(json_objects(path))


def test_json_objects_skip_blank_lines_and_refuse_an_empty_file(tmp_path: Path) -> None:
    path = written(tmp_path / "a.jsonl", b'\xef\xbb\xbf{"a": 1}\n\n  \n{"b": 2}\n')
    assert list(json_objects(path)) == [(1, {"a": 1}), (4, {"b": 2})]
    empty = written(tmp_path / "empty.jsonl", b"")
    with usage_error(f"{empty} is empty"):
        list(json_objects(empty))


def test_only_regular_files_are_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    with named_pipe(fifo), usage_error(f"{fifo} is a named pipe, not a file; give a file on disk"):
        list(text_lines(fifo))
    with usage_error("/dev/zero is a character device, not a file"):
        list(text_lines(Path("/dev/zero")))
    with usage_error(f"{tmp_path} is a folder"):
        check_file(tmp_path)
    with usage_error(f"prompts file not found: {tmp_path / 'no.txt'}; check the name"):
        check_file(tmp_path / "no.txt", "prompts file", "; check the name")


def test_a_stream_is_decoded_a_line_at_a_time(tmp_path: Path) -> None:
    stream = io.BytesIO(b"\xef\xbb\xbfhello\nsecond\n\xff\n")
    read = stream_lines(stream.readline, "stdin")
    assert next(read) == (1, "hello")
    assert stream.tell() == len(b"\xef\xbb\xbfhello\n")  # nothing read beyond the line answered
    assert next(read) == (2, "second")
    with usage_error("stdin line 3: not UTF-8 text"):
        next(read)
