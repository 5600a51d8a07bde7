"""--config files (cli/commandline.py): defaults that flags override, unknown tables and keys refused."""

from __future__ import annotations

import json

from tests.conftest import MICRO


def test_config_file_supplies_defaults_and_flags_win(cli, tmp_path):
    config = tmp_path / "llada.toml"
    config.write_text("[pretrain.ar]\nmax-steps = 2\nbatch_size = 2\n")
    cli.ok("--config", str(config), "pretrain", "ar", *MICRO, "--run-name", "cfg")
    info = json.loads((cli.home / "runs/cfg/run.json").read_text())
    assert info["train"]["max_steps"] == 2 and info["train"]["batch_size"] == 4


def test_config_file_refuses_unknown_tables_and_keys(cli, tmp_path):
    path = tmp_path / "llada.toml"
    path.write_text("[sample]\ngen-lenght = 8\n", encoding="utf-8")
    result = cli("--config", str(path), "runs", "list")
    assert result.exit_code == 2 and "did you mean gen-length?" in result.stderr
