"""The run registry (runs/registry.py): a name that exists, folders a killed start or overwrite left."""

from __future__ import annotations

import json
import os

from tests.cli.test_errors import assert_one_line_error
from tests.conftest import MICRO
from tests.engine.runs.test_locks import TRAIN


def test_existing_run_needs_resume_or_overwrite(pipeline):
    before = (pipeline.home / "runs/ar-base/run.json").read_text()
    result = pipeline("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "ar-base")
    assert_one_line_error(
        result, 2, "already exists", "(completed at step", "--resume with a larger --max-steps", "--overwrite"
    )
    assert (pipeline.home / "runs/ar-base/run.json").read_text() == before


def test_a_stopped_overwrite_gives_the_old_run_back(cli):
    cli.ok(*TRAIN, "--run-name", "old")
    runs = cli.home / "runs"
    # what an overwrite killed before the new run's run.json leaves
    os.replace(runs / "old", runs / ".old.replaced")
    (runs / "old").mkdir()
    listed = cli.ok("runs", "list", "--json")
    assert "recovered run 'old'" in listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["old"]
    assert (runs / "old/checkpoints/step-0000002").is_dir() and not (runs / ".old.replaced").exists()


def test_a_folder_left_without_run_json_is_noted_refused_and_removable(cli):
    ghost = cli.home / "runs/ghost"
    ghost.mkdir(parents=True)
    (ghost / "tokenizer.json").write_text("{}")
    assert "run folder 'ghost' has no run.json" in cli.ok("runs", "list").stderr
    assert_one_line_error(cli("pretrain", "ar", "--run-name", "ghost", "--resume"), 2, "has no run.json")
    assert "removed ghost" in cli.ok("runs", "rm", "ghost", "--yes").stderr
    assert not ghost.exists()


def test_a_start_killed_before_run_json_is_started_again(cli):
    (cli.home / "runs/again").mkdir(parents=True)
    started = cli.ok(*TRAIN, "--run-name", "again")
    assert "removed the folder of run 'again'" in started.stderr
    assert (cli.home / "runs/again/checkpoints/step-0000002").is_dir()
