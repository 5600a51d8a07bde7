"""The experiment files of examples/ plan what the scripts and the seed recipe do."""

from __future__ import annotations

from typer.testing import CliRunner

from llada_cli.cli import app
from tests.conftest import ROOT


def test_the_quickstart_script_is_what_a_dry_run_of_the_experiment_prints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the file's home, llada-home, is a relative path: a fresh one here
    monkeypatch.delenv("LLADA_HOME", raising=False)
    result = CliRunner().invoke(app, ["pipeline", str(ROOT / "examples/quickstart.toml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    script = (ROOT / "examples/quickstart.sh").read_text(encoding="utf-8")
    commands = script.split("set -euo pipefail\n\n", 1)[1]
    assert commands == result.stdout
    assert all(line.startswith("#") for line in script.split("set -euo pipefail")[0].splitlines()[1:])


def test_nano_llada_experiment_carries_the_seed_recipe(cli):
    root = ROOT
    plan = cli.ok("pipeline", str(root / "examples/nano_llada.toml"), "--dry-run").stdout.splitlines()
    ar, diffusion, ar_sft, diffusion_sft = plan[1:5]
    assert "--hidden-size 512 --num-hidden-layers 8 --num-attention-heads 8 --seq-len 256" in ar
    assert "--epochs 1 --batch-size 96" in ar
    assert "--learning-rate 0.0004 --warmup-steps 2000 --min-lr-ratio 0.025" in diffusion
    assert "--init-from minimind_pretrain" in diffusion and "--max-steps 40000" in diffusion
    assert "--seq-len 512 --batch-size 96 --epochs 2" in ar_sft and "--epochs 3" in diffusion_sft
