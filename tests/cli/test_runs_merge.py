"""`llada runs merge`: the top-k checkpoints of a run averaged into a new run that `runs show` names
the sources of (at 60 and 80 columns) and that samples like any run."""

from __future__ import annotations

import json

import pytest

from tests.conftest import MICRO

EVERY_STEP = ("--save-every", "1", "--keep-checkpoints", "0")  # a checkpoint at every step, all kept


@pytest.fixture
def trained(cli):
    """A run with a checkpoint and a validation loss at every one of its 4 steps."""
    cli.ok("pretrain", "ar", *MICRO, *EVERY_STEP, "--max-steps", "4", "-n", "r")
    return cli


def lowest_two(cli) -> list[int]:
    records = [r for r in cli.metrics("r") if "val_loss" in r]
    return sorted(r["step"] for r in sorted(records, key=lambda r: (r["val_loss"], r["step"]))[:2])


def test_runs_merge_top_k_val_makes_a_run_that_shows_its_sources_and_samples(trained):
    steps = lowest_two(trained)
    result = trained.ok("runs", "merge", "r", "--top-k-val", "2", "--name", "soup")
    labels = ", ".join(f"r@{step}" for step in steps)
    assert result.stderr == f"merged {labels} into run 'soup'\n"
    assert result.stdout.strip() == str(trained.home / "runs/soup")
    shown = json.loads(trained.ok("runs", "show", "soup", "--json").stdout)
    assert shown["merged_from"] == [{"run": "r", "step": step} for step in steps]
    assert (shown["kind"], shown["stage"], shown["checkpoints"]) == ("ar", "pretrain", [max(steps)])
    answer = trained.ok("sample", "soup", "-p", "Hello", "--max-new-tokens", "4", "--json")
    assert json.loads(answer.stdout)["results"][0]["new_tokens"] <= 4
    assert "is the parent of soup" in trained("runs", "rm", "r", input="n\n").stderr


@pytest.mark.parametrize("columns", [60, 80])
def test_runs_show_names_the_sources_of_a_merged_run(trained, columns):
    trained.ok("runs", "merge", "r@1", "r@3", "--name", "soup")
    lines = trained.ok("runs", "show", "soup", columns=columns).stdout.splitlines()
    assert all(len(line) <= columns for line in lines)
    assert any(line.split() == ["merged", "from", "r@1,", "r@3"] for line in lines)
    assert any(line.split()[:4] == ["status", "completed", "at", "step"] for line in lines)
