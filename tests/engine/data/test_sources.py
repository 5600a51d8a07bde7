"""Data sources: JSONL/text reading, every user error with its file and line, and source resolution."""

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llada_cli.engine.data.builtin import builtin_corpus
from llada_cli.engine.data.formats import ConversationCounts
from llada_cli.engine.data.sources import (
    iter_pretrain_texts,
    iter_sft_conversations,
    iter_text_paragraphs,
    load_pretrain_texts,
    load_sft_conversations,
    read_jsonl_conversations,
    read_jsonl_texts,
    source_fingerprint,
)
from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.tokenizer import Tokenizer


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def rows(*objects: object) -> list[str]:
    return [json.dumps(o, ensure_ascii=False) for o in objects]


def usage_error(match: str):
    return pytest.raises(UsageError, match=re.escape(match))


@contextmanager
def named_pipe(path: Path) -> Iterator[Path]:
    """A named pipe at `path` whose one writer closes it at once: code that opens it (as llada did)
    reads an empty file instead of waiting forever for a writer."""
    os.mkfifo(path)
    writer = threading.Thread(target=lambda: open(path, "wb").close(), daemon=True)
    writer.start()  # its open() returns when a reader opens the pipe
    try:
        yield path
    finally:
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a reader, should nothing have opened it
        writer.join()
        os.close(reader)


# ------------------------------------------------------------------------------------ texts


def test_read_texts_skips_blank_lines_and_empty_texts(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", *rows({"text": "one"}), "", "   ", *rows({"text": ""}, {"text": "二"}))
    assert read_jsonl_texts(path) == ["one", "二"]


def test_read_texts_with_another_field(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", *rows({"content": "x", "id": 1}))
    assert read_jsonl_texts(path, field="content") == ["x"]


def test_missing_file(tmp_path: Path) -> None:
    with usage_error(f"data file not found: {tmp_path / 'no.jsonl'}"):
        read_jsonl_texts(tmp_path / "no.jsonl")


def test_directory(tmp_path: Path) -> None:
    with usage_error(f"{tmp_path} is a folder"):
        read_jsonl_texts(tmp_path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a.jsonl", *rows({"text": "x"}))

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)  # root can read anything, so chmod would not do
    with usage_error(f"cannot read {path}: Permission denied"):
        read_jsonl_texts(path)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "\xff"}\n')
    with usage_error(f"{path} line 2: not UTF-8 text (invalid start byte at byte 11); save it as UTF-8"):
        read_jsonl_texts(path)


def test_empty_file_and_no_usable_rows(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.jsonl")
    with usage_error(f"{empty} is empty"):
        read_jsonl_texts(empty)
    blank = write(tmp_path / "blank.jsonl", "", *rows({"text": "  "}))
    with usage_error(f"{blank} has no usable 'text' texts"):
        read_jsonl_texts(blank)


def test_malformed_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", *rows({"text": "x"}), "", '{"text": "unterminated}')
    with usage_error(f"{path} line 3, column 10: invalid JSON (Unterminated string starting at)"):
        read_jsonl_texts(path)


def test_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", *rows({"text": "x"}, ["text"]))
    with usage_error(f"{path} line 2: expected a JSON object, got list"):
        read_jsonl_texts(path)


def test_missing_field_lists_the_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", *rows({"text": "x"}, {"content": "y", "id": 2}))
    with usage_error(f"{path} line 2: no field 'text' (fields: content, id); use `jsonl_field`"):
        read_jsonl_texts(path)


def test_field_that_is_not_a_string(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", *rows({"text": 3}))
    with usage_error(f"{path} line 1: field 'text' is int, expected a string"):
        read_jsonl_texts(path)


def test_a_byte_order_mark_is_skipped_in_every_format(tmp_path: Path) -> None:
    conversation = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    texts = tmp_path / "texts.jsonl"
    texts.write_bytes(b"\xef\xbb\xbf" + "".join(line + "\n" for line in rows({"text": "one"})).encode())
    sft = tmp_path / "sft.jsonl"
    sft.write_bytes(b"\xef\xbb\xbf" + rows({"conversations": conversation})[0].encode() + b"\n")
    paragraphs = tmp_path / "a.txt"
    paragraphs.write_bytes(b"\xef\xbb\xbfFirst.\n\nSecond.\n")
    assert read_jsonl_texts(texts) == ["one"]
    assert read_jsonl_conversations(sft) == [conversation]
    assert load_pretrain_texts(str(paragraphs), tmp_path) == ["First.", "Second."]


def test_a_utf16_data_file_is_refused_at_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("Tidar is the capital.\n", encoding="utf-16")
    with usage_error(f"{path} line 1: not UTF-8 text (it starts with a UTF-16 byte-order mark)"):
        load_pretrain_texts(str(path), tmp_path)


def test_a_device_or_a_named_pipe_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    fifo, sft = tmp_path / "fifo.jsonl", tmp_path / "sft.jsonl"
    with named_pipe(fifo), usage_error(f"{fifo} is a named pipe, not a file; give a file on disk"):
        load_pretrain_texts(str(fifo), tmp_path)
    with named_pipe(sft), usage_error(f"{sft} is a named pipe"):
        load_sft_conversations(str(sft), tmp_path)
    with usage_error("/dev/null is a character device, not a file"):
        load_pretrain_texts("/dev/null", tmp_path)
    with usage_error("/dev/null is a character device, not a file"):
        source_fingerprint("/dev/null", "text")


def test_a_paragraph_is_bounded_as_a_line_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llada_cli.engine.data.sources.MAX_LINE_BYTES", 20)
    path = write(tmp_path / "a.txt", "short one", "", "ten chars.", "ten chars.", "ten chars.")
    with usage_error(f"{path} line 5: a paragraph longer than 64 MiB"):
        load_pretrain_texts(str(path), tmp_path)


def test_text_paragraphs(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "first line", "same paragraph", "", "", "second", "")
    assert list(iter_text_paragraphs(path)) == ["first line\nsame paragraph", "second"]


def test_pretraining_reads_txt_paragraphs(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("First paragraph,\ntwo lines.\n\nSecond one.\n", encoding="utf-8")
    assert list(iter_pretrain_texts(str(path), tmp_path, "text")) == [
        "First paragraph,\ntwo lines.",
        "Second one.",
    ]


# ------------------------------------------------------------------------------------ conversations


def test_read_conversations_keeps_role_and_content_only(tmp_path: Path) -> None:
    conv = [{"role": "user", "content": "hi", "extra": 1}, {"role": "assistant", "content": "你好"}]
    path = write(tmp_path / "sft.jsonl", *rows({"conversations": conv}))
    assert read_jsonl_conversations(path) == [[{"role": "user", "content": "hi"}, conv[1]]]


def test_tool_calling_conversations_are_skipped(tmp_path: Path) -> None:
    tools = [
        {"role": "system", "content": "", "functions": [{"name": "f"}]},
        {"role": "user", "content": "x"},
    ]
    tool_role = [{"role": "user", "content": "x"}, {"role": "tool", "content": "{}"}]
    plain = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    path = write(tmp_path / "sft.jsonl", *rows(*({"conversations": c} for c in (tools, tool_role, plain))))
    assert read_jsonl_conversations(path) == [plain]
    only_tools = write(tmp_path / "tools.jsonl", *rows({"conversations": tools}))
    with usage_error(f"{only_tools} has no usable conversations"):
        read_jsonl_conversations(only_tools)


def test_conversations_without_a_question_and_its_answer_are_counted_and_skipped(tmp_path: Path) -> None:
    good = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    bad = [
        [{"role": "user", "content": "q"}],
        [{"role": "system", "content": "s"}],
        [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}],
    ]
    path = write(tmp_path / "sft.jsonl", *rows(*({"conversations": c} for c in [good, *bad, good])))
    counts = ConversationCounts()
    assert list(iter_sft_conversations(str(path), tmp_path, counts)) == [good, good]
    assert counts.line() == (
        "skipped 4 of 6 conversations: 2 without an assistant answer, "
        "1 with an answer before any question, 1 with an empty message"
    )
    none = write(tmp_path / "none.jsonl", *rows(*({"conversations": c} for c in bad)))
    with usage_error(f"{none} has no usable conversations (skipped 4 of 4 conversations: 2 without"):
        load_sft_conversations(str(none), tmp_path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"text": "hi"}, " line 1: not an SFT row (fields: text); expected conversations or messages"),
        ({"messages": []}, " line 1: 'messages' must be a non-empty list of messages"),
        ({"prompt": "q", "response": 3}, " line 1: field 'response' is int, expected a string"),
        ({"conversations": "hi"}, " line 1: 'conversations' must be a non-empty list of messages"),
        ({"conversations": []}, " line 1: 'conversations' must be a non-empty list of messages"),
        ({"conversations": ["hi"]}, " line 1: message 0 must be an object with a string 'role'"),
        ({"conversations": [{"content": "hi"}]}, " line 1: message 0 must be an object with a string 'role'"),
        ({"conversations": [{"role": "user"}]}, " line 1: message 0 (user) needs a string 'content'"),
        (
            {"conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}]},
            " line 1: message 1 (assistant) needs a string 'content'",
        ),
    ],
)
def test_malformed_conversations(tmp_path: Path, row: dict, message: str) -> None:
    path = write(tmp_path / "sft.jsonl", *rows(row))
    with usage_error(f"{path}{message}"):
        read_jsonl_conversations(path)


# ------------------------------------------------------------------------------------ resolving sources


def test_builtin_sources() -> None:
    corpus = builtin_corpus()
    assert load_pretrain_texts("builtin", Path("unused")) == corpus.documents
    assert load_sft_conversations("builtin", Path("unused")) == corpus.conversations


def test_minimind_needs_a_fetch_first(tmp_path: Path) -> None:
    with usage_error("run `llada data fetch minimind` first"):
        load_pretrain_texts("minimind", tmp_path)
    with usage_error("run `llada data fetch minimind` first"):
        load_sft_conversations("minimind", tmp_path)


def test_minimind_files_are_found_in_data_dir(tmp_path: Path) -> None:
    folder = tmp_path / "minimind"
    folder.mkdir()
    write(folder / "pretrain_t2t_mini.jsonl", *rows({"text": "doc"}))
    conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    write(folder / "sft_t2t_mini.jsonl", *rows({"conversations": conv}))
    assert load_pretrain_texts("minimind", tmp_path) == ["doc"]
    assert load_sft_conversations("minimind", tmp_path) == [conv]


def test_local_files_by_suffix(tmp_path: Path) -> None:
    jsonl = write(tmp_path / "a.jsonl", *rows({"body": "doc"}))
    txt = write(tmp_path / "a.txt", "para one", "", "para two")
    assert load_pretrain_texts(str(jsonl), tmp_path, field="body") == ["doc"]
    assert load_pretrain_texts(str(txt), tmp_path) == ["para one", "para two"]
    csv = write(tmp_path / "a.csv", "x")
    with usage_error(f"unsupported data file {csv}: use .jsonl"):
        load_pretrain_texts(str(csv), tmp_path)
    with usage_error(f"unsupported SFT file {txt}"):
        load_sft_conversations(str(txt), tmp_path)
    with usage_error("data file not found: typo.csv"):
        load_pretrain_texts("typo.csv", tmp_path)


def test_fingerprint_tracks_the_file(tmp_path: Path) -> None:
    documents = "\n".join(builtin_corpus().documents).encode()
    assert source_fingerprint("builtin", "text") == "builtin:" + hashlib.sha256(documents).hexdigest()[:16]
    path = write(tmp_path / "a.jsonl", *rows({"text": "doc"}))
    first = source_fingerprint(str(path), "text")
    assert first == source_fingerprint(str(path), "text")
    assert first != source_fingerprint(str(path), "body")
    write(path, *rows({"text": "a longer document"}))
    assert source_fingerprint(str(path), "text") != first
    with usage_error("data file not found"):
        source_fingerprint(str(tmp_path / "gone.jsonl"), "text")


def test_fingerprint_of_minimind(tmp_path: Path) -> None:
    assert source_fingerprint("minimind", "text") == "minimind:pretrain_t2t_mini.jsonl:text"
    (tmp_path / "minimind").mkdir()
    write(tmp_path / "minimind" / "pretrain_t2t_mini.jsonl", *rows({"text": "doc"}))
    assert str(tmp_path / "minimind" / "pretrain_t2t_mini.jsonl") in source_fingerprint(
        "minimind", "text", tmp_path
    )


def test_tokenizer_sample_spreads_over_the_file_and_cuts_long_lines(tmp_path: Path) -> None:
    import json

    from llada_cli.engine.data.sources import tokenizer_sample

    path = tmp_path / "big.jsonl"
    rows = [{"text": f"document {i} " * 10} for i in range(100)] + [{"text": "x" * 25_000}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    size = path.stat().st_size
    sample = list(tokenizer_sample(str(path), tmp_path, "text", sample_bytes=size // 10))
    assert sample[0].startswith("document 0 ") and sample[1].startswith("document 10 ")  # every 10th
    assert len([s for s in sample if s.startswith("document")]) == 10  # rows 0, 10, ..., 90
    assert [len(s) for s in sample if s.startswith("x")] == [10_000, 10_000, 5_000]  # row 100, in pieces
    Tokenizer.train(tokenizer_sample(str(path), tmp_path, "text", size), vocab_size=300)  # does not hang
