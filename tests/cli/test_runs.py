"""`llada runs`: list and show at 60 and 80 columns, piped (tab-separated) and as JSON, without
loading torch; rm asks, names the children, keeps the run on no; one damaged run.json is listed
corrupt and can be removed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import click
import pytest

from llada_cli.cli import app
from tests.conftest import MICRO, TESTS


def test_runs_list_and_show_json(pipeline):
    listed = json.loads(pipeline.ok("runs", "list", "--json").output)
    assert [r["name"] for r in listed] == ["ar-base", "ar-chat", "dlm-base", "dlm-chat"]
    shown = json.loads(pipeline.ok("runs", "show", "dlm-base@6", "--json").output)
    assert shown["kind"] == "diffusion" and 6 in shown["checkpoints"]


def listed_in_a_terminal(cli, columns: int) -> list[str]:
    """`runs list` as a terminal `columns` wide shows it (CliRunner's stdout is no terminal)."""
    result = cli.runner.invoke(
        app,
        ["--home", str(cli.home), "runs", "list"],
        env={"COLUMNS": str(columns), "TTY_COMPATIBLE": "1"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return click.unstyle(result.stdout).splitlines()


def tab_separated(cli) -> dict[str, dict[str, str]]:
    """Piped `runs list`: run name -> column -> value."""
    header, *lines = cli.ok("runs", "list").stdout.splitlines()
    rows = [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines]
    return {row["name"]: row for row in rows}


def test_runs_list_piped_is_tab_separated_with_a_header(pipeline):
    header, *lines = pipeline.ok("runs", "list", columns=60).stdout.splitlines()
    assert header.split("\t") == [
        "name", "kind", "stage", "status", "step", "lr", "batch", "tokens", "time", "best_val"
    ]  # fmt: skip
    assert all(len(line.split("\t")) == 10 for line in lines) and len(lines) == 4
    rows = tab_separated(pipeline)
    assert [rows["ar-base"][c] for c in ("kind", "stage", "status", "step", "lr")] == [
        "ar", "pretrain", "completed", "6/6", "0.0003"
    ]  # fmt: skip
    assert rows["dlm-chat"]["kind"] == "dlm" and rows["dlm-chat"]["batch"] == "4"


@pytest.fixture
def long_runs(cli):
    """The legacy runs and one with a long name, a long schedule and a learning rate of 3.5e-05."""
    shutil.copytree(TESTS / "fixtures" / "legacy-home", cli.home)
    long = cli.home / "runs" / "dlm-sft-4k-v2"
    shutil.copytree(cli.home / "runs" / "legacy-dlm", long)
    record = json.loads((long / "run.json").read_text())
    record |= {"name": long.name, "step": 12000, "total_steps": 60000, "tokens": 123456789}
    record["request"]["train"]["learning_rate"] = 3.5e-05
    (long / "run.json").write_text(json.dumps(record))
    return cli


@pytest.mark.parametrize("columns", [60, 80])
def test_runs_list_fits_the_terminal_by_leaving_columns_out_never_by_cutting_values(long_runs, columns):
    whole = tab_separated(long_runs)
    header, *lines = listed_in_a_terminal(long_runs, columns)
    assert max(map(len, [header, *lines])) <= columns and "\u2026" not in "".join(lines)
    shown = re.split(r"\s{2,}", header.strip())
    assert shown[:5] == ["name", "kind", "stage", "status", "step"]
    for line in lines[: len(whole)]:
        cells = re.split(r"\s{2,}", line.strip())
        assert cells == [whole[cells[0]][column.replace(" ", "_")] for column in shown]
    assert sorted(line.split()[0] for line in lines[: len(whole)]) == sorted(whole)
    if len(shown) < 10:
        assert "left out at this width" in " ".join(lines[len(whole) :])


def test_runs_list_and_show_read_well_at_80_columns(pipeline):
    header, *lines = listed_in_a_terminal(pipeline, 80)
    assert len(re.split(r"\s{2,}", header.strip())) == 10  # every column fits these runs at 80
    rows = {line.split()[0]: line.split() for line in lines[:4]}
    assert rows["ar-base"][1:6] == ["ar", "pretrain", "completed", "6/6", "0.0003"]
    assert rows["dlm-chat"][1:3] == ["dlm", "sft"] and rows["dlm-chat"][6:8] == ["4", "780"]
    assert "cross entropy" in lines[-1] and "ELBO bound" in lines[-1]
    shown = " ".join(pipeline.ok("runs", "show", "dlm-base", columns=80).stdout.split())
    assert "nats/token (ELBO bound)" in shown and "learning_rate 0.0003" in shown
    assert not re.search(r"\d\.\d{8}", shown)  # no 16-digit floats


def loads_no_torch(home, *args: str) -> None:
    """`llada --home HOME ARGS` in a fresh interpreter succeeds without ever importing torch."""
    script = (
        "import sys\n"
        "from llada_cli.cli import main\n"
        "sys.argv = ['llada', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    command = [sys.executable, "-c", script, "--home", str(home), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", [["runs", "list"], ["runs", "show", "ar-base"]])
def test_runs_list_and_show_load_no_torch(pipeline, command):
    loads_no_torch(pipeline.home, *command)


def test_runs_rm_asks_and_keeps_data_unless_confirmed(pipeline, tmp_path):
    # a throwaway copy so the shared pipeline keeps its runs
    pipeline.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "scratch")
    refused = pipeline("runs", "rm", "scratch", input="n\n")
    assert refused.exit_code == 1 and (pipeline.home / "runs/scratch").exists()
    assert refused.stdout.startswith("Delete 1 run: scratch?")
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
