"""`llada dpo` on both kinds: what it trains and records, its checks, exact resume, the API and
pipeline files (docs/algorithms.md section 14)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from llada_cli import api
from llada_cli.engine.runs.folder import Run
from llada_cli.engine.runs.record import RunInfo
from tests.conftest import MICRO
from tests.engine.training.test_resume import _interrupt_at

DPO = ["dpo", "--batch-size", "4", "--max-steps", "2", "--log-every", "1"]


def chat_runs(cli) -> None:
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "2", "--run-name", "ar")
    cli.ok(
        "pretrain",
        "diffusion",
        "--init-from",
        "ar",
        "--batch-size",
        "4",
        "--max-steps",
        "2",
        "--run-name",
        "dlm",
    )
    for kind in ("ar", "dlm"):
        cli.ok("sft", "--base", kind, "--batch-size", "4", "--max-steps", "2", "--run-name", f"{kind}-chat")


def weights(cli, run: str, step: int) -> dict:
    return load_file(Run(cli.home / "runs" / run).checkpoint_dir(step) / "model.safetensors")


def test_dpo_trains_both_kinds_on_the_builtin_pairs_and_records_them(cli):
    chat_runs(cli)
    cli.ok(*DPO, "--base", "ar-chat", "--run-name", "ar-dpo", "--beta", "0.2", "--dpop-lambda", "5")
    cli.ok(*DPO, "--base", "dlm-chat", "--run-name", "dlm-dpo", "--mc-num", "2")
    for run, kind, base in (("ar-dpo", "ar", "ar-chat@2"), ("dlm-dpo", "diffusion", "dlm-chat@2")):
        info = RunInfo.load(cli.home / "runs" / run / "run.json")
        assert (info.kind, info.stage, info.parent) == (kind, "dpo", base)
        logged = [row for row in cli.metrics(run) if "loss" in row]
        assert logged and all("reward_accuracy" in row and "reward_chosen" in row for row in logged)
    ar = RunInfo.load(cli.home / "runs" / "ar-dpo" / "run.json")
    assert (ar.objective.beta, ar.objective.dpop_lambda) == (0.2, 5.0)
    dlm = RunInfo.load(cli.home / "runs" / "dlm-dpo" / "run.json")
    assert (dlm.objective.mc_num, dlm.objective.vrpo) == (2, True)
    # the reference stays the base: a step moves the policy away from it
    moved = weights(cli, "dlm-dpo", 2)
    base = weights(cli, "dlm-chat", 2)
    assert any(not torch.equal(moved[k], base[k]) for k in base)
    shown = cli.ok("runs", "show", "dlm-dpo").stdout
    assert "dpo" in shown and "dlm-chat@2" in shown
    assert cli.ok("sample", "dlm-dpo", "--chat", "-p", "Hi", "--gen-length", "8").exit_code == 0


def test_diffusion_options_on_an_ar_base_and_bad_values_are_refused(cli):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "ar")
    for flags in (["--mc-num", "4"], ["--no-vrpo"]):
        result = cli(*DPO, "--base", "ar", "--run-name", "x", *flags)
        assert result.exit_code == 2 and "applies to diffusion training" in result.output
    bad = (
        ["--beta", "0"],
        ["--beta", "nan"],
        ["--mc-num", "0"],
        ["--dpop-lambda", "-1"],
        ["--data", "pairs.txt"],
    )
    for flags in bad:
        result = cli(*DPO, "--base", "ar", "--run-name", "x", *flags)
        assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1, result.output
    assert cli(*DPO, "--run-name", "x").exit_code == 2  # no base


def test_a_killed_dpo_run_resumes_to_the_weights_of_one_never_stopped(cli, monkeypatch):
    chat_runs(cli)
    args = [
        "dpo",
        "--base",
        "dlm-chat",
        "--batch-size",
        "4",
        "--max-steps",
        "4",
        "--save-every",
        "2",
        "--mc-num",
        "2",
    ]
    cli.ok(*args, "--run-name", "straight")
    _interrupt_at(3, monkeypatch)
    assert cli(*args, "--run-name", "killed").exit_code == 130
    monkeypatch.undo()
    cli.ok("dpo", "--run-name", "killed", "--resume")
    straight, killed = weights(cli, "straight", 4), weights(cli, "killed", 4)
    assert all(torch.equal(straight[k], killed[k]) for k in straight)


def test_a_pairs_file_the_api_and_a_pipeline_file(cli, tmp_path):
    chat_runs(cli)
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"prompt": "Hi", "chosen": "Hello.", "rejected": "Go away."}] * 6
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = api.train(
        "dpo", "api-dpo", base="ar-chat", home=cli.home, data=str(pairs), batch_size=2, max_steps=2
    )
    assert RunInfo.load(path / "run.json").data.data == str(pairs)
    experiment = tmp_path / "exp.toml"
    experiment.write_text(
        '[dpo.diffusion]\nrun-name = "p-dpo"\nbase = "dlm-chat"\nmc-num = 2\nmax-steps = 2\nbatch-size = 4\n',
        encoding="utf-8",
    )
    assert (
        " dpo --run-name p-dpo --base dlm-chat --mc-num 2 "
        in cli.ok("pipeline", str(experiment), "--dry-run").stdout
    )
    cli.ok("pipeline", str(experiment))
    assert RunInfo.load(cli.home / "runs" / "p-dpo" / "run.json").stage == "dpo"
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(
        '[sft.diffusion]\nrun-name = "d2"\nbase = "dlm"\n\n[dpo.ar]\nrun-name = "w"\nbase = "d2"\n',
        encoding="utf-8",
    )
    refused = cli("pipeline", str(wrong), "--dry-run")
    assert (
        refused.exit_code == 2
        and "a DPO run keeps its base's kind: fine-tune it under [dpo.diffusion]" in refused.output
    )
