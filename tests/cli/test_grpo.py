"""`llada grpo` on both kinds: what it trains, logs and records, its checks, exact resume while it
reuses sampled answers, prompt files, the API and pipeline files (docs/algorithms.md section 15)."""

from __future__ import annotations

import json

import torch

from llada_cli import api
from llada_cli.engine.runs.record import RunInfo
from tests.cli.test_dpo import chat_runs, weights
from tests.conftest import MICRO
from tests.engine.training.test_resume import _interrupt_at

GRPO = [
    "grpo",
    "--batch-size",
    "2",
    "--group-size",
    "2",
    "--gen-length",
    "8",
    "--max-steps",
    "2",
    "--log-every",
    "1",
]


def test_grpo_trains_both_kinds_on_the_rl_questions_and_logs_rewards(cli):
    chat_runs(cli)
    cli.ok(*GRPO, "--base", "ar-chat", "--run-name", "ar-grpo", "--kl-beta", "0.1")
    d1 = ["--estimator", "d1", "--prompt-mask-prob", "0.3", "--inner-steps", "2"]
    cli.ok(*GRPO, "--base", "dlm-chat", "--run-name", "dlm-grpo", *d1)
    cli.ok(*GRPO, "--base", "dlm-chat", "--run-name", "dlm-coupled")  # the default estimator
    for run, kind, base in (("ar-grpo", "ar", "ar-chat@2"), ("dlm-grpo", "diffusion", "dlm-chat@2")):
        info = RunInfo.load(cli.home / "runs" / run / "run.json")
        assert (info.kind, info.stage, info.parent) == (kind, "grpo", base)
        assert info.data_summary["rows"] == 40  # the builtin corpus's RL questions
        logged = [row for row in cli.metrics(run) if "loss" in row]
        assert len(logged) == 2
        for row in logged:
            assert 0 <= row["reward"] <= 1 and row["kl"] >= 0 and 0 <= row["flat_groups"] <= 1
            assert 1 <= row["answer_tokens"] <= 9  # at most the 8 slots and the stop token
    dlm = RunInfo.load(cli.home / "runs" / "dlm-grpo" / "run.json").objective
    assert (dlm.estimator, dlm.inner_steps, dlm.prompt_mask_prob, dlm.group_size) == ("d1", 2, 0.3, 2)
    assert RunInfo.load(cli.home / "runs" / "dlm-coupled" / "run.json").objective.estimator == "coupled"
    assert RunInfo.load(cli.home / "runs" / "ar-grpo" / "run.json").objective.kl_beta == 0.1
    chart = cli.ok("plot", "ar-grpo", "dlm-grpo", "--metric", "reward,kl", "--text").stdout
    assert "reward" in chart and "kl" in chart
    shown = cli.ok("runs", "show", "dlm-grpo").stdout
    assert "grpo" in shown and "dlm-chat@2" in shown
    assert cli.ok("sample", "dlm-grpo", "--chat", "-p", "Hi", "--gen-length", "8").exit_code == 0


def test_bad_options_and_bases_are_refused_in_one_line(cli):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "ar")
    result = cli(*GRPO, "--base", "ar", "--run-name", "x", "--estimator", "d1", "--prompt-mask-prob", "0.2")
    assert result.exit_code == 2 and "applies to diffusion training" in result.output
    bad = (
        ["--group-size", "1"],
        ["--temperature", "0"],
        ["--kl-beta", "-1"],
        ["--clip-eps", "1"],
        ["--inner-steps", "0"],
        ["--gen-length", "64"],  # MICRO's rows are 64 tokens: no room for a prompt
        ["--data", "prompts.txt"],
    )
    for flags in bad:
        result = cli(*GRPO, "--base", "ar", "--run-name", "x", *flags)
        assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1, (flags, result.output)
    assert not (cli.home / "runs" / "x").exists()


def test_a_block_diffusion_base_and_options_of_the_other_estimator_are_refused(cli):
    chat_runs(cli)
    cli.ok(
        "sft",
        "--base",
        "dlm",
        "--sft-form",
        "block",
        "--batch-size",
        "4",
        "--max-steps",
        "1",
        "--run-name",
        "blk",
    )
    result = cli(*GRPO, "--base", "blk", "--run-name", "x")
    assert result.exit_code == 2 and "decodes block-causally" in result.output
    result = cli(*GRPO, "--base", "dlm-chat", "--run-name", "x", "--prompt-mask-prob", "0.3")
    assert result.exit_code == 2 and "--prompt-mask-prob applies only with --estimator d1" in result.output


def test_a_killed_run_resumes_with_the_answers_it_was_reusing(cli, monkeypatch):
    chat_runs(cli)
    args = [*GRPO[:-4], "--base", "dlm-chat", "--max-steps", "3", "--save-every", "1", "--inner-steps", "2"]
    cli.ok(*args, "--run-name", "straight")
    _interrupt_at(1, monkeypatch)  # after step 1's checkpoint: step 2 reuses step 1's answers
    assert cli(*args, "--run-name", "killed").exit_code == 130
    monkeypatch.undo()
    cli.ok("grpo", "--run-name", "killed", "--resume")
    straight, killed = weights(cli, "straight", 3), weights(cli, "killed", 3)
    assert all(torch.equal(straight[k], killed[k]) for k in straight)
    assert [r["reward"] for r in cli.metrics("straight")] == [r["reward"] for r in cli.metrics("killed")]


def test_a_prompts_file_the_api_and_a_pipeline_file(cli, tmp_path):
    chat_runs(cli)
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"prompt": "Hi", "answer": "Hello"},
        {"messages": [{"role": "user", "content": "Hey"}], "answer": "Hi"},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = api.train(
        "grpo", "api-grpo", base="ar-chat", home=cli.home, data=str(prompts), batch_size=2, group_size=2,
        gen_length=4, max_steps=1,
    )  # fmt: skip
    info = RunInfo.load(path / "run.json")
    assert info.data.data == str(prompts) and info.data_summary["rows"] == 2
    experiment = tmp_path / "exp.toml"
    experiment.write_text(
        '[grpo.diffusion]\nrun-name = "p-grpo"\nbase = "dlm-chat"\ngroup-size = 2\ngen-length = 4\n'
        "max-steps = 1\nbatch-size = 2\n",
        encoding="utf-8",
    )
    assert (
        " grpo --run-name p-grpo --base dlm-chat --group-size 2 "
        in cli.ok("pipeline", str(experiment), "--dry-run").stdout
    )
    cli.ok("pipeline", str(experiment))
    assert RunInfo.load(cli.home / "runs" / "p-grpo" / "run.json").stage == "grpo"
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(
        '[sft.diffusion]\nrun-name = "d2"\nbase = "dlm"\n\n[grpo.ar]\nrun-name = "w"\nbase = "d2"\n',
        encoding="utf-8",
    )
    refused = cli("pipeline", str(wrong), "--dry-run")
    assert refused.exit_code == 2 and "[grpo.diffusion]" in refused.output
