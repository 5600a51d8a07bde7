"""The experiment files of examples/ plan what the scripts and the seed recipe do."""

from __future__ import annotations

from tests.conftest import ROOT


def test_quickstart_experiment_matches_the_quickstart_script(cli):
    root = ROOT
    plan = cli.ok("pipeline", str(root / "examples/quickstart.toml"), "--dry-run").stdout.splitlines()
    assert len(plan) == 10
    assert plan[1].endswith(
        "pretrain ar --batch-size 16 --run-name ar-base --preset tiny --vocab-size 2048 "
        "--learning-rate 0.003 --max-steps 600"
    )
    script = (root / "examples/quickstart.sh").read_text()
    for command in ("data fetch builtin", "eval ar-chat --no-likelihood", "eval dlm-chat --no-likelihood"):
        assert command in script and any(line.endswith(command) for line in plan)


def test_nano_llada_experiment_carries_the_seed_recipe(cli):
    root = ROOT
    plan = cli.ok("pipeline", str(root / "examples/nano_llada.toml"), "--dry-run").stdout.splitlines()
    ar, diffusion, ar_sft, diffusion_sft = plan[1:5]
    assert "--hidden-size 512 --num-hidden-layers 8 --num-attention-heads 8 --seq-len 256" in ar
    assert "--epochs 1 --batch-size 96" in ar
    assert "--learning-rate 0.0004 --warmup-steps 2000 --min-lr-ratio 0.025" in diffusion
    assert "--init-from minimind_pretrain" in diffusion and "--max-steps 40000" in diffusion
    assert "--seq-len 512 --batch-size 96 --epochs 2" in ar_sft and "--epochs 3" in diffusion_sft
