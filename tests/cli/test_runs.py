"""`llada runs`: list and show at 80 columns and as JSON; rm asks, names the children, keeps the run on
no; one damaged run.json is listed corrupt and can be removed."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import MICRO, TESTS


def test_runs_list_and_show_json(pipeline):
    listed = json.loads(pipeline.ok("runs", "list", "--json").output)
    assert [r["name"] for r in listed] == ["ar-base", "ar-chat", "dlm-base", "dlm-chat"]
    shown = json.loads(pipeline.ok("runs", "show", "dlm-base@6", "--json").output)
    assert shown["kind"] == "diffusion" and 6 in shown["checkpoints"]


def test_runs_list_and_show_read_well_at_80_columns(pipeline):
    listed = pipeline.ok("runs", "list", columns=80).stdout.splitlines()
    assert max(len(line) for line in listed) <= 80
    assert listed[0].split() == [
        "name",
        "kind",
        "stage",
        "status",
        "step",
        "lr",
        "batch",
        "tokens",
        "time",
        "best",
        "val",
    ]
    rows = {line.split()[0]: line.split() for line in listed[1:5]}
    assert rows["ar-base"][1:5] == ["ar", "pretrain", "completed", "6/6"]
    assert rows["dlm-chat"][1:3] == ["dlm", "sft"] and rows["dlm-chat"][6:8] == ["4", "782"]
    assert "cross entropy" in listed[-1] and "ELBO bound" in listed[-1]
    shown = " ".join(pipeline.ok("runs", "show", "dlm-base", columns=80).stdout.split())
    assert "nats/token (ELBO bound)" in shown and "learning_rate 0.0003" in shown
    assert not re.search(r"\d\.\d{8}", shown)  # no 16-digit floats


def test_runs_rm_asks_and_keeps_data_unless_confirmed(pipeline, tmp_path):
    # a throwaway copy so the shared pipeline keeps its runs
    pipeline.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "scratch")
    refused = pipeline("runs", "rm", "scratch", input="n\n")
    assert refused.exit_code == 1 and (pipeline.home / "runs/scratch").exists()
    pipeline.ok("runs", "rm", "scratch", "--yes")
    assert not (pipeline.home / "runs/scratch").exists()
    assert "scratch" not in json.dumps(json.loads(pipeline.ok("runs", "list", "--json").stdout))


def test_runs_rm_names_the_children_and_keeps_the_run_on_no(pipeline):
    refused = pipeline("runs", "rm", "ar-base", input="n\n")
    assert refused.exit_code == 1
    assert "warning: run 'ar-base' is the parent of ar-chat, dlm-base" in refused.stderr
    assert "kept run 'ar-base'" in refused.stderr
    assert (pipeline.home / "runs/ar-base/run.json").is_file()


@pytest.mark.parametrize("damage", [{"kind": "gpt"}, {"model": None}, {"parent": 123}, {"status": 5}])
def test_one_damaged_run_json_is_listed_corrupt_and_removable(cli, damage):
    shutil.copytree(TESTS / "fixtures" / "legacy-home", cli.home)
    path = cli.home / "runs" / "legacy-dlm" / "run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **damage}))
    rows = {row["name"]: row for row in json.loads(cli.ok("runs", "list", "--json").stdout)}
    assert rows["legacy-dlm"]["status"] == "corrupt" and rows["legacy-ar"]["kind"] == "ar"
    assert "legacy-ar" in cli.ok("runs", "list").stdout
    shown = cli("runs", "show", "legacy-dlm")
    assert shown.exit_code == 1 and "field '" in shown.stderr and "Traceback" not in shown.output
    cli.ok("runs", "rm", "legacy-dlm", "--yes")
    assert not (cli.home / "runs" / "legacy-dlm").exists() and (cli.home / "runs" / "legacy-ar").exists()


def test_runs_show_the_training_time_not_the_wait_before_a_resume(cli):
    train = ("pretrain", "ar", *MICRO, "--dtype", "fp32", "--run-name", "t")
    cli.ok(*train, "--max-steps", "2")
    record = cli.home / "runs" / "t" / "run.json"
    first = json.loads(record.read_text())["train_seconds"]
    # as if it had been resumed an hour after it started
    record.write_text(
        record.read_text().replace(json.loads(record.read_text())["created"], "2026-01-01T00:00:00")
    )
    cli.ok(*train, "--resume", "--max-steps", "4")
    shown = json.loads(cli.ok("runs", "show", "t", "--json").stdout)
    [row] = json.loads(cli.ok("runs", "list", "--json").stdout)
    assert 0 < first <= shown["train_seconds"] == row["seconds"] < 600 < row["span_seconds"]
    assert "training time" in cli.ok("runs", "show", "t").stdout
