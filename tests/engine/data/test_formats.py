"""The data formats users already have (data/formats.py): SFT rows in six shapes, the conversations
skipped and why, pretraining text in Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llada_cli.engine.data.formats import ConversationCounts, Skipped, row_conversation
from llada_cli.engine.data.sources import iter_pretrain_texts, read_jsonl_conversations
from llada_cli.engine.errors import UsageError
from tests.conftest import MICRO

USER, ANSWER = {"role": "user", "content": "Which city?"}, {"role": "assistant", "content": "Tidar."}
SYSTEM = {"role": "system", "content": "Be brief."}


def write_rows(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"conversations": [USER, ANSWER]}, [USER, ANSWER]),
        ({"messages": [SYSTEM, USER, ANSWER]}, [SYSTEM, USER, ANSWER]),
        ({"prompt": "Which city?", "response": "Tidar.", "system": "Be brief."}, [SYSTEM, USER, ANSWER]),
        ({"question": "Which city?", "answer": "Tidar."}, [USER, ANSWER]),
        ({"instruction": "Which city?", "input": "", "output": "Tidar."}, [USER, ANSWER]),
        (
            {"instruction": "Name the capital.", "input": "Ninaria", "output": "Tidar."},
            [{"role": "user", "content": "Name the capital.\n\nNinaria"}, ANSWER],
        ),
        ({"messages": [USER, ANSWER], "system": "Be brief."}, [SYSTEM, USER, ANSWER]),
        (
            {
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": "Which city?"},
                    {"from": "gpt", "value": "Tidar."},
                ]
            },
            [SYSTEM, USER, ANSWER],
        ),
    ],
    ids=[
        "conversations",
        "messages",
        "prompt-response",
        "question-answer",
        "alpaca",
        "alpaca-input",
        "system",
        "sharegpt",
    ],
)
def test_each_sft_format_reads_into_messages(tmp_path, row, expected):
    assert read_jsonl_conversations(write_rows(tmp_path / "sft.jsonl", row)) == [expected]


def test_a_row_of_no_known_format_names_file_line_and_formats(tmp_path):
    path = write_rows(tmp_path / "sft.jsonl", {"prompt": "q", "response": "a"}, {"query": "q", "reply": "a"})
    with pytest.raises(
        UsageError, match=r"sft\.jsonl line 2: not an SFT row \(fields: query, reply\); expected"
    ):
        read_jsonl_conversations(path)


EMPTY_SYSTEM = {"role": "system", "content": " "}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"conversations": [USER]}, "no_answer"),
        ({"messages": [SYSTEM]}, "no_answer"),
        ({"conversations": [ANSWER, USER]}, "answer_first"),
        ({"conversations": [SYSTEM, ANSWER, USER, ANSWER]}, "answer_first"),
        ({"conversations": [{"role": "user", "content": " "}, ANSWER]}, "empty"),
        ({"prompt": "Which city?", "response": ""}, "empty"),
        ({"conversations": [USER, {"role": "tool", "content": "{}"}]}, "tools"),
    ],
    ids=[
        "no-answer",
        "system-only",
        "answer-first",
        "answer-before-user",
        "empty-user",
        "empty-pair",
        "tool",
    ],
)
def test_rows_that_cannot_be_trained_on_are_skipped_with_their_reason(row, reason):
    assert row_conversation(row, "f line 1") == Skipped(reason)


def test_an_empty_system_message_is_left_out_as_an_empty_system_field_is():
    assert row_conversation({"messages": [EMPTY_SYSTEM, USER, ANSWER]}, "f line 1") == [USER, ANSWER]
    assert row_conversation({"prompt": "Which city?", "response": "Tidar.", "system": ""}, "") == [
        USER,
        ANSWER,
    ]


def test_conversation_counts_say_what_was_skipped_and_why_in_one_line():
    counts = ConversationCounts()
    for outcome in [[USER, ANSWER]] * 117 + [Skipped("empty"), Skipped("no_answer"), Skipped("no_answer")]:
        counts.add(outcome)
    assert counts.kept == 117
    assert (
        counts.line()
        == "skipped 3 of 120 conversations: 2 without an assistant answer, 1 with an empty message"
    )
    assert ConversationCounts.of_summary({"rows": 5, **counts.summary()}) == counts
    assert ConversationCounts.of_summary({"rows": 5}).line() is None


def test_sft_trains_on_alpaca_and_openai_rows(cli, tmp_path):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "base")
    rows = [
        {"instruction": "Which city is the capital of Ninaria?", "input": "", "output": "Tidar."},
        {"messages": [USER, ANSWER]},
    ] * 8
    data = write_rows(tmp_path / "mixed.jsonl", *rows)
    cli.ok(
        "sft",
        "--base",
        "base",
        "--data",
        str(data),
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--run-name",
        "chat",
    )
    assert json.loads((cli.home / "runs/chat/run.json").read_text())["status"] == "completed"


def test_pretraining_reads_parquet_by_column(tmp_path, cli):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "corpus.parquet"
    texts = [f"Document {i} about the capital of Ninaria, which is Tidar." for i in range(200)]
    pq.write_table(pa.table({"content": texts + [None, ""], "id": list(range(202))}), path, row_group_size=64)
    assert list(iter_pretrain_texts(str(path), tmp_path, "content")) == texts
    with pytest.raises(UsageError, match=r"no column 'text' \(columns: content, id\)"):
        list(iter_pretrain_texts(str(path), tmp_path, "text"))
    with pytest.raises(UsageError, match=r"row 1: column 'id' is int"):
        list(iter_pretrain_texts(str(path), tmp_path, "id"))
    cli.ok(
        "pretrain",
        "ar",
        *MICRO,
        "--data",
        str(path),
        "--jsonl-field",
        "content",
        "--max-steps",
        "1",
        "--run-name",
        "pq",
    )


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "corpus.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    with pytest.raises(UsageError, match=r"pip install 'llada-cli\[parquet\]'"):
        list(iter_pretrain_texts(str(path), tmp_path, "text"))
