"""`llada sft` in block form and with the CAP term: what the chat model decodes with, the flags'
checks, the API and pipeline files (docs/algorithms.md section 6)."""

from __future__ import annotations

import json
from pathlib import Path

from llada_cli import api
from tests.conftest import MICRO

PROMPT = "Which city is the capital of Ninaria?"
SFT = ["sft", "--batch-size", "4", "--max-steps", "2"]


def sampled(cli, run: str, *flags: str) -> dict:
    return json.loads(cli.ok("sample", run, "--chat", "-p", PROMPT, "--json", *flags).stdout)


def test_a_block_diffusion_base_fine_tunes_in_blocks_and_its_chat_model_decodes_them(cli):
    blocks = ["--use-block-curriculum", "--wsd-block-sizes-down", "16", "--max-steps", "4"]
    cli.ok("pretrain", "diffusion", *MICRO, *blocks, "--run-name", "blocks")
    cli.ok(*SFT, "--base", "blocks", "--run-name", "chat", "--cap-weight", "0.1")
    objective = json.loads((cli.home / "runs" / "chat" / "run.json").read_text())["objective"]
    assert (objective["sft_form"], objective["block_size"], objective["cap_weight"]) == ("block", 16, 0.1)
    assert all("cap_entropy" in row for row in cli.metrics("chat") if "loss" in row)
    used = sampled(cli, "chat")
    assert (used["settings"]["attention"], used["settings"]["block_length"]) == ("block_causal", 16)
    assert used["settings"]["cache"] == "prefix"  # exact for block-causal decoding
    uncached = sampled(cli, "chat", "--cache", "none")
    assert uncached["results"][0]["token_ids"] == used["results"][0]["token_ids"]
    # told otherwise, the same base fine-tunes full and decodes bidirectionally
    cli.ok(*SFT, "--base", "blocks", "--run-name", "full", "--sft-form", "full")
    assert sampled(cli, "full")["settings"]["attention"] == "bidirectional"


def test_any_diffusion_run_fine_tunes_in_blocks_when_asked(cli):
    cli.ok("pretrain", "diffusion", *MICRO, "--max-steps", "2", "--run-name", "plain")
    cli.ok(*SFT, "--base", "plain", "--run-name", "chat", "--sft-form", "block", "--block-size", "4")
    settings = sampled(cli, "chat")["settings"]
    assert (settings["attention"], settings["block_length"], settings["method"]) == (
        "block_causal",
        4,
        "semi_ar_origin",
    )
    cli.ok(*SFT, "--base", "plain", "--run-name", "chat8", "--sft-form", "block")
    assert sampled(cli, "chat8")["settings"]["block_length"] == 8  # the default size
    refused = cli(*SFT, "--base", "plain", "--run-name", "x", "--block-size", "4")
    assert refused.exit_code == 2
    assert "--block-size applies only with --sft-form block" in refused.output
    assert len(refused.output.strip().splitlines()) == 1


def test_block_and_cap_options_are_refused_on_an_ar_base_and_out_of_range(cli):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "ar")
    for flags in (["--sft-form", "block"], ["--cap-weight", "0.1"]):
        result = cli(*SFT, "--base", "ar", "--run-name", "x", *flags)
        assert result.exit_code == 2 and "applies to diffusion training" in result.output
    for flags in (
        ["--cap-weight", "-1"],
        ["--cap-weight", "nan"],
        ["--block-size", "0"],
        ["--sft-form", "x"],
    ):
        assert cli(*SFT, "--base", "ar", "--run-name", "x", *flags).exit_code == 2


def test_the_api_and_pipeline_files_take_them(cli, tmp_path: Path):
    home = cli.home
    api.train("pretrain diffusion", "plain", home=home, **_micro(), max_steps=2)
    path = api.train("sft", "chat", base="plain", home=home, sft_form="block", block_size=4, cap_weight=0.2,
                     batch_size=4, max_steps=2)  # fmt: skip
    objective = json.loads((path / "run.json").read_text())["objective"]
    assert (objective["sft_form"], objective["block_size"], objective["cap_weight"]) == ("block", 4, 0.2)
    experiment = tmp_path / "exp.toml"
    experiment.write_text(
        '[sft.diffusion]\nrun-name = "chat2"\nbase = "plain"\nsft-form = "block"\nblock-size = 4\n'
        "cap-weight = 0.2\nmax-steps = 2\nbatch-size = 4\n",
        encoding="utf-8",
    )
    plan = cli.ok("pipeline", str(experiment), "--dry-run").stdout
    assert "--sft-form block --block-size 4 --cap-weight 0.2" in plan
    cli.ok("pipeline", str(experiment))
    assert sampled(cli, "chat2")["settings"]["block_length"] == 4


def _micro() -> dict:
    """MICRO's flags as API keywords."""
    pairs = zip(MICRO[::2], MICRO[1::2], strict=True)
    return {flag[2:].replace("-", "_"): int(value) if value.isdigit() else value for flag, value in pairs}
