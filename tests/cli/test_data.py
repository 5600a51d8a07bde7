"""`llada data fetch`: builtin, minimind (download patched at its boundary), local files."""

from __future__ import annotations

import json
from pathlib import Path

from llada_cli.engine.data import fetch


def test_fetch_builtin_writes_three_files(cli):
    paths = cli.ok("data", "fetch", "builtin").stdout.split()
    assert [p.rsplit("/", 1)[1] for p in paths] == ["pretrain.jsonl", "sft.jsonl", "questions.jsonl"]
    first = json.loads(Path(paths[1]).read_text(encoding="utf-8").splitlines()[0])
    assert first["conversations"][0]["role"] in ("system", "user")


def test_fetch_minimind_downloads_once(cli, monkeypatch):
    calls = []

    def fake_download(dataset_id, file_name, local_dir):
        calls.append((dataset_id, file_name))
        path = local_dir / file_name
        path.write_text('{"text": "下载"}\n', encoding="utf-8")
        return path

    monkeypatch.setattr(fetch, "_download", fake_download)
    out = cli.ok("data", "fetch", "minimind", "--pretrain-file", "pretrain_hq.jsonl").stdout.split()
    assert calls == [
        ("gongjy/minimind_dataset", "pretrain_hq.jsonl"),
        ("gongjy/minimind_dataset", "sft_t2t_mini.jsonl"),
    ]
    assert out[0].endswith("data/minimind/pretrain_hq.jsonl")
    cli.ok("data", "fetch", "minimind", "--pretrain-file", "pretrain_hq.jsonl")
    assert len(calls) == 2  # complete files are not downloaded again


def test_fetch_minimind_network_failure_leaves_nothing(cli, monkeypatch):
    def failing(dataset_id, file_name, local_dir):
        (local_dir / file_name).write_text("half a fi")
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(fetch, "_download", failing)
    result = cli("data", "fetch", "minimind")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "pretrain_t2t_mini.jsonl" in result.stderr
    assert "Name or service not known" in result.stderr and "check your network" in result.stderr
    assert not (cli.home / "data/minimind").exists()  # the folder it made goes too


def test_fetch_local_file_checks_every_line(cli, tmp_path):
    good = tmp_path / "mine.jsonl"
    good.write_text('{"text": "one"}\n\n{"text": "two"}\n')
    result = cli.ok("data", "fetch", str(good))
    copy = cli.home / "data" / "local" / "mine.jsonl"  # copied into the data folder, as its help says
    assert "2 documents" in result.stderr and result.stdout.strip() == str(copy)
    assert copy.read_bytes() == good.read_bytes() and sorted(copy.parent.iterdir()) == [copy]
    copied = cli.ok("data", "fetch", str(good), "--out", str(tmp_path / "copy")).stdout.strip()
    assert Path(copied).read_text() == good.read_text()
    assert cli.ok("data", "fetch", str(copy)).stdout.strip() == str(copy)  # already there: left as is
    bad = tmp_path / "sft.jsonl"
    bad.write_text('{"conversations": [{"role": "user", "content": "hi"}]}\n{"conversations": 3}\n')
    result = cli("data", "fetch", str(bad))
    assert result.exit_code == 2 and f"{bad} line 2:" in result.stderr


QUESTION, ANSWER = {"role": "user", "content": "Which city?"}, {"role": "assistant", "content": "Tidar."}


def test_fetch_local_conversations_with_a_byte_order_mark(cli, tmp_path):
    path = tmp_path / "sft.jsonl"
    path.write_text(json.dumps({"conversations": [QUESTION, ANSWER]}) + "\n", encoding="utf-8-sig")
    result = cli.ok("data", "fetch", str(path))
    assert result.stderr.strip() == f"{path}: 1 conversation, every line valid"


def test_fetch_local_conversations_says_which_were_skipped_and_why(cli, tmp_path):
    path = tmp_path / "sft.jsonl"
    conversations = [[QUESTION, ANSWER]] * 3 + [[QUESTION], [{**QUESTION, "content": ""}, ANSWER]]
    path.write_text("".join(json.dumps({"conversations": c}) + "\n" for c in conversations))
    result = cli.ok("data", "fetch", str(path))
    assert result.stderr.strip() == (
        f"{path}: 3 conversations, skipped 2 of 5 conversations: "
        "1 without an assistant answer, 1 with an empty message"
    )
    none = tmp_path / "none.jsonl"
    none.write_text(json.dumps({"messages": [{"role": "system", "content": "Be brief."}]}) + "\n")
    result = cli("data", "fetch", str(none))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(
        f"error: {none} has no usable conversations (skipped 1 of 1 conversation: 1 without"
    )
