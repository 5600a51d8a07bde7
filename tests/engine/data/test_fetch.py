"""Fetching MiniMind (with the ModelScope download replaced), writing the builtin corpus, copying a
local file."""

import io
import json
from pathlib import Path

import pytest

from llada_cli.engine.data import fetch
from llada_cli.engine.data.builtin import builtin_corpus
from llada_cli.engine.data.sources import read_jsonl_conversations, read_jsonl_texts
from llada_cli.engine.errors import LladaError


class FakeDownload:
    """Stands in for ModelScope: writes `<file>` into the folder it is given, or fails."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, str, Path]] = []

    def __call__(self, dataset_id: str, file_name: str, local_dir: Path) -> Path:
        self.calls.append((dataset_id, file_name, local_dir))
        path = local_dir / file_name
        path.write_text(json.dumps({"text": f"content of {file_name}"}) + "\n")
        if self.error:
            raise self.error
        return path


def test_fetch_moves_complete_files_into_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDownload()
    monkeypatch.setattr(fetch, "_download", fake)
    out = tmp_path / "minimind"
    paths = fetch.fetch_minimind(out)
    assert paths == [out / "pretrain_t2t_mini.jsonl", out / "sft_t2t_mini.jsonl"]
    assert sorted(p.name for p in out.iterdir()) == ["pretrain_t2t_mini.jsonl", "sft_t2t_mini.jsonl"]
    assert read_jsonl_texts(paths[0]) == ["content of pretrain_t2t_mini.jsonl"]
    assert [(d, f) for d, f, _ in fake.calls] == [
        ("gongjy/minimind_dataset", "pretrain_t2t_mini.jsonl"),
        ("gongjy/minimind_dataset", "sft_t2t_mini.jsonl"),
    ]
    assert all(local.parent == out and local.name.startswith(".partial-") for _, _, local in fake.calls)


def test_existing_files_are_not_downloaded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "_download", FakeDownload())
    fetch.fetch_minimind(tmp_path)
    second = FakeDownload(error=AssertionError("must not download"))
    monkeypatch.setattr(fetch, "_download", second)
    assert fetch.fetch_minimind(tmp_path) == [tmp_path / name for name in fetch.DEFAULT_MINIMIND_FILES]
    assert second.calls == []


def test_file_names_are_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "_download", FakeDownload())
    assert fetch.fetch_minimind(tmp_path, files=["pretrain_hq.jsonl"]) == [tmp_path / "pretrain_hq.jsonl"]


def test_failed_download_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "_download", FakeDownload(error=ConnectionError("timed out\nlong traceback")))
    (tmp_path / ".partial-pretrain_t2t_mini.jsonl").mkdir()  # debris of an earlier interrupted run
    with pytest.raises(LladaError) as info:
        fetch.fetch_minimind(tmp_path)
    assert str(info.value) == (
        "could not download pretrain_t2t_mini.jsonl from modelscope dataset gongjy/minimind_dataset: "
        f"timed out; check your network or download it by hand into {tmp_path}"
    )
    assert list(tmp_path.iterdir()) == []


def test_download_calls_modelscope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelscope.hub import file_download

    seen = {}

    def fake(dataset_id: str, file_path: str, *, local_dir: str) -> str:
        seen.update(dataset_id=dataset_id, file_path=file_path, local_dir=local_dir)
        return str(Path(local_dir) / file_path)

    monkeypatch.setattr(file_download, "dataset_file_download", fake)
    monkeypatch.setattr(fetch.socket, "create_connection", lambda *a, **k: io.BytesIO())  # "online"
    assert fetch._download("a/b", "f.jsonl", tmp_path) == tmp_path / "f.jsonl"
    assert seen == {"dataset_id": "a/b", "file_path": "f.jsonl", "local_dir": str(tmp_path)}


def test_write_builtin_round_trips_through_the_readers(tmp_path: Path) -> None:
    corpus = builtin_corpus(seed=3)
    paths = fetch.write_builtin(tmp_path / "builtin", seed=3)
    assert [p.name for p in paths] == ["pretrain.jsonl", "sft.jsonl", "questions.jsonl"]
    assert sorted(p.name for p in (tmp_path / "builtin").iterdir()) == sorted(p.name for p in paths)
    assert read_jsonl_texts(paths[0]) == corpus.documents
    assert read_jsonl_conversations(paths[1]) == corpus.conversations
    questions = [json.loads(line) for line in paths[2].read_text(encoding="utf-8").splitlines()]
    assert questions[0] == {
        "question": corpus.questions[0].question,
        "answer": corpus.questions[0].answer,
        "split": corpus.questions[0].split,
        "lang": corpus.questions[0].lang,
    }
    assert len(questions) == len(corpus.questions)


def test_offline_fetch_fails_at_once_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(address, timeout):
        assert address == ("www.modelscope.cn", 443) and timeout <= 5
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(fetch.socket, "create_connection", offline)
    with pytest.raises(LladaError) as error:
        fetch.fetch_minimind(tmp_path, ["f.jsonl"])
    message = str(error.value)
    assert "cannot reach www.modelscope.cn (Network is unreachable): are you offline?" in message
    assert "\n" not in message and list(tmp_path.iterdir()) == []


def test_a_killed_fetchs_temp_files_go_at_the_next_fetch(tmp_path: Path) -> None:
    (tmp_path / ".pretrain.jsonl.abc123.tmp").write_text('{"text": "half a fi')  # a kill mid-write
    fetch.write_builtin(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pretrain.jsonl", "questions.jsonl", "sft.jsonl"]


def test_one_fetch_at_a_time_writes_a_folder(tmp_path: Path) -> None:
    import fcntl
    import os

    fd = os.open(tmp_path, os.O_RDONLY)  # as another fetch into the same folder holds it
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(LladaError, match="another process is writing into"):
            fetch.write_builtin(tmp_path)
    finally:
        os.close(fd)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_download_removes_the_folder_it_made(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fetch, "_download", FakeDownload(error=ConnectionError("timed out")))
    with pytest.raises(LladaError):
        fetch.fetch_minimind(tmp_path / "new" / "minimind")
    assert not (tmp_path / "new" / "minimind").exists()


def test_a_local_file_is_copied_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "mine.jsonl"
    source.write_text('{"text": "one"}\n')
    out = tmp_path / "data" / "local"
    assert fetch.copy_local(source, out) == out / "mine.jsonl"
    assert (out / "mine.jsonl").read_bytes() == source.read_bytes()
    source.write_text('{"text": "two"}\n')  # fetched again: the copy is replaced

    def interrupted(src: Path, dst: Path) -> None:
        Path(dst).write_text('{"te')
        raise OSError("No space left on device")

    monkeypatch.setattr(fetch.shutil, "copyfile", interrupted)
    with pytest.raises(LladaError, match=f"cannot copy {source} to {out / 'mine.jsonl'}: No space left"):
        fetch.copy_local(source, out)
    assert [p.name for p in out.iterdir()] == ["mine.jsonl"]  # the old copy, no half a new one
    assert (out / "mine.jsonl").read_text() == '{"text": "one"}\n'
    monkeypatch.undo()
    fetch.copy_local(source, out)
    assert (out / "mine.jsonl").read_text() == '{"text": "two"}\n'
