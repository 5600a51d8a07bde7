"""Atomic writes: the whole file or the old one, never half, with the permissions of a plain write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llada_cli.engine.atomic import atomic_path, write_text_atomic
from llada_cli.engine.errors import UsageError


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_the_file_gets_the_mode_a_plain_write_would_give(tmp_path: Path) -> None:
    plain, atomic = tmp_path / "plain", tmp_path / "atomic"
    plain.write_text("x")
    write_text_atomic(atomic, "x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not mkstemp's 0600


def test_a_pipe_or_a_folder_in_the_place_of_the_file_is_kept_and_refused(tmp_path: Path) -> None:
    # as root, replacing `--trace /dev/null` would make /dev/null a file: a named pipe stands for it
    pipe, folder = tmp_path / "pipe", tmp_path / "folder"
    os.mkfifo(pipe)
    folder.mkdir()
    with pytest.raises(UsageError, match="pipe.* not a regular file"):
        write_text_atomic(pipe, "x")
    with pytest.raises(UsageError, match="folder is a folder"):
        write_text_atomic(folder, "x")
    assert pipe.is_fifo() and folder.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "pipe"]


@pytest.fixture(params=[0o022, 0o002], ids=["umask-022", "umask-002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_weights_and_folders_get_the_modes_of_plain_writes(umask, tmp_path: Path) -> None:
    import torch

    from llada_cli.engine.config import ModelConfig
    from llada_cli.engine.model.checkpoint import save_weights
    from llada_cli.engine.runs.folder import Run

    config = ModelConfig(vocab_size=8, hidden_size=4, num_hidden_layers=1, num_attention_heads=1)
    save_weights(config, {"a": torch.zeros(2)}, tmp_path / "model.safetensors")  # safetensors writes 0600
    assert (tmp_path / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
    run = Run(tmp_path / "run")
    folder = run.commit_checkpoint(3, lambda tmp: (tmp / "x").write_text("x"))
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # mkdtemp gives 0700


def test_an_exported_folder_has_plain_modes(umask, pipeline, tmp_path: Path) -> None:
    pipeline.ok("export", "ar-chat", str(tmp_path / "hf"))
    for path in (tmp_path / "hf").iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name
    assert (tmp_path / "hf").stat().st_mode & 0o777 == 0o777 & ~umask
