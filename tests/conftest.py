"""Shared fixtures: an isolated registry, a CLI runner, and one small trained pipeline per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llada_cli.cli import app

# Test files sit in subfolders that mirror llada_cli/: paths to tests/ and the repository come from here.
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# A model small enough that a few steps take well under a second on 2 cores.
MICRO = [
    "--preset",
    "tiny",
    "--hidden-size",
    "64",
    "--num-hidden-layers",
    "2",
    "--num-attention-heads",
    "2",
    "--seq-len",
    "64",
    "--vocab-size",
    "512",
    "--batch-size",
    "4",
    "--log-every",
    "1",
]


class Cli:
    """Runs `llada --home HOME ...` in-process and returns the click Result."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, columns: int = 200) -> object:
        return self.runner.invoke(
            app,
            ["--home", str(self.home), *args],
            input=input,
            catch_exceptions=False,
            env={"COLUMNS": str(columns)},
        )

    def ok(self, *args: str, input: str | None = None, columns: int = 200) -> object:
        result = self(*args, input=input, columns=columns)
        assert result.exit_code == 0, f"llada {' '.join(args)} failed:\n{result.output}"
        return result

    def metrics(self, run: str) -> list[dict]:
        lines = (self.home / "runs" / run / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("LLADA_HOME", raising=False)
    monkeypatch.delenv("LLADA_DEVICE", raising=False)
    return Cli(tmp_path / "home")


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """ar-base -> dlm-base (from ar-base) -> ar-chat, dlm-chat: the quick start in miniature."""
    cli = Cli(tmp_path_factory.mktemp("pipeline") / "home")
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "6", "--run-name", "ar-base")
    cli.ok(
        "pretrain",
        "diffusion",
        "--init-from",
        "ar-base",
        "--batch-size",
        "4",
        "--max-steps",
        "6",
        "--run-name",
        "dlm-base",
    )
    cli.ok("sft", "--base", "ar-base", "--batch-size", "4", "--max-steps", "4", "--run-name", "ar-chat")
    cli.ok("sft", "--base", "dlm-base", "--batch-size", "4", "--max-steps", "4", "--run-name", "dlm-chat")
    return cli
