"""The whole pipeline through the CLI: files, registry, resume, sampling, compare, plot."""

from __future__ import annotations

import json
import math
import re

import pytest
from safetensors.torch import load_file

from llada_cli.engine.runs.record import RunInfo
from llada_cli.engine.training.trainer import Trainer
from tests.conftest import MICRO


def test_help_lists_every_command(cli):
    output = cli.ok("--help").output
    for command in ("data", "pretrain", "sft", "sample", "compare", "plot", "runs", "eval"):
        assert command in output


def test_pipeline_writes_runs_with_lineage(pipeline):
    runs = pipeline.home / "runs"
    ar, dlm = (
        json.loads((runs / "ar-base/run.json").read_text()),
        json.loads((runs / "dlm-base/run.json").read_text()),
    )
    assert (ar["kind"], ar["stage"], ar["status"]) == ("ar", "pretrain", "completed")
    assert (dlm["kind"], dlm["parent"], dlm["model"]["causal"]) == ("diffusion", "ar-base@6", False)
    # the vocabulary grows by exactly the mask token
    assert dlm["model"]["vocab_size"] == ar["model"]["vocab_size"] + 1
    tokenizer = json.loads((runs / "dlm-base/tokenizer.json").read_text())
    assert any(t["content"] == "<|mask|>" for t in tokenizer["added_tokens"])
    chat = json.loads((runs / "dlm-chat/run.json").read_text())
    assert (chat["kind"], chat["stage"], chat["parent"]) == ("diffusion", "sft", "dlm-base@6")
    metrics = pipeline.metrics("ar-base")
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(m["loss"]) for m in metrics)
    assert "val_loss" in metrics[-1] and metrics[-1]["tokens"] == 6 * 4 * 64
    assert (runs / "ar-base/latest").read_text().strip() == "step-0000006"


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


def test_sample_json_reports_forward_passes(pipeline):
    result = pipeline.ok(
        "sample", "dlm-chat", "--prompt", "Hello", "--chat", "--max-new-tokens", "8", "--steps", "8", "--json"
    )
    doc = json.loads(result.stdout)
    assert doc["kind"] == "diffusion" and len(doc["results"]) == 1
    first = doc["results"][0]
    assert first["forward_passes"] <= 8 and first["new_tokens"] <= 8
    ar = json.loads(
        pipeline.ok(
            "sample", "ar-chat", "-p", "Hi", "-p", "Hello there", "--max-new-tokens", "5", "--jsonl"
        ).stdout.splitlines()[1]
    )
    assert ar["prompt"] == "Hello there" and ar["new_tokens"] <= 5


def test_compare_prints_both_answers_and_summary(pipeline):
    result = pipeline(
        "compare",
        "--ar",
        "ar-chat",
        "--diffusion",
        "dlm-chat",
        "-p",
        "Hi",
        "-p",
        "Who are you?",
        "--max-new-tokens",
        "8",
        columns=80,
    )
    output = result.stdout
    assert result.exit_code == 0 and max(len(line) for line in output.splitlines()) <= 80
    assert "ar: ar-chat@4" in output and "diffusion: dlm-chat@4" in output
    # every number has its own labelled column: a row per prompt and side, and each side's total
    header = next(line for line in output.splitlines() if "seconds" in line).split()
    assert header == ["side", "prompt", "new", "tokens", "seconds", "tokens/s", "forward", "passes"]
    rows = [line.split() for line in output.splitlines() if line.strip().startswith(("ar ", "diffusion "))]
    assert [row[:2] for row in rows] == [[s, p] for s in ("ar", "diffusion") for p in ("#1", "#2", "all")]
    for side in (rows[:3], rows[3:]):
        assert int(side[2][2]) == int(side[0][2]) + int(side[1][2])  # new tokens summed
        assert int(side[2][5]) == int(side[0][5]) + int(side[1][5])  # forward passes summed
    # each side says how it decoded: the same answer length, the diffusion default sampler
    assert "ar: 8 tokens, --temperature 0.0" in output
    assert (
        "diffusion: 8 tokens, --method semi_ar_padding --block-length 8 --cache none --threshold 0.9"
        in " ".join(output.split())
    )
    doc = json.loads(
        pipeline.ok(
            "compare",
            "--ar",
            "ar-chat",
            "--diffusion",
            "dlm-chat",
            "-p",
            "Hi",
            "--max-new-tokens",
            "8",
            "--json",
        ).stdout
    )
    assert doc["ar"]["summary"]["forward_passes"] >= 1 and doc["diffusion"]["settings"]["gen_length"] == 8
    fitted = json.loads(
        pipeline.ok("compare", "--ar", "ar-chat", "--diffusion", "dlm-chat", "-p", "Hi", "--json").stdout
    )  # no length given: one length for both sides, what the shorter context room allows
    lengths = fitted["ar"]["settings"]["max_new_tokens"], fitted["diffusion"]["settings"]["gen_length"]
    assert lengths[0] == lengths[1] and 0 < lengths[0] <= 64


def test_plot_writes_png_in_the_current_folder(pipeline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = pipeline.ok("plot", "ar-base", "dlm-base")
    png = tmp_path / "loss-ar-base-dlm-base.png"
    assert result.stdout.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (pipeline.home / "runs/ar-base/loss.png").exists()


def test_eval_reports_likelihood_and_the_three_question_sets(pipeline):
    doc = json.loads(
        pipeline.ok(
            "eval", "dlm-chat", "--max-rows", "2", "--mc-num", "2", "--answer-length", "8", "--json"
        ).stdout
    )
    assert doc["likelihood"]["exact"] is False and doc["likelihood"]["bits_per_token"] > 0
    accuracy = doc["accuracy"]
    assert {"all", "seen", "forward", "reverse", "seen/en", "reverse/zh"} <= set(accuracy)
    assert accuracy["all"]["total"] == sum(accuracy[s]["total"] for s in ("seen", "forward", "reverse"))
    assert all(0 <= row["accuracy"] <= 1 for row in accuracy.values())
    ar = json.loads(pipeline.ok("eval", "ar-base", "--max-rows", "2", "--no-questions", "--json").stdout)
    assert ar["likelihood"]["exact"] is True and "accuracy" not in ar


def _interrupt_at(step: int, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Trainer._train_step

    def train_step(self):
        if self.step == step:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "_train_step", train_step)


def _without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in records]


def test_interrupted_run_resumes_with_identical_results(cli, monkeypatch):
    args = ["pretrain", "diffusion", *MICRO, "--max-steps", "6", "--save-every", "3", "--eval-every", "3"]
    cli.ok(*args, "--run-name", "straight")
    _interrupt_at(4, monkeypatch)
    killed = cli(*args, "--run-name", "killed")
    assert killed.exit_code == 130
    assert (
        f"run 'killed' resumes from step 3: llada --home {cli.home} pretrain diffusion "
        "--run-name killed --resume" in killed.stderr
    )
    monkeypatch.undo()
    cli.ok(*args, "--run-name", "killed", "--resume")
    assert _without_timing(cli.metrics("killed")) == _without_timing(cli.metrics("straight"))
    straight = load_file(cli.home / "runs/straight/checkpoints/step-0000006/model.safetensors")
    resumed = load_file(cli.home / "runs/killed/checkpoints/step-0000006/model.safetensors")
    assert all((straight[k] == resumed[k]).all() for k in straight)


def test_config_file_supplies_defaults_and_flags_win(cli, tmp_path):
    config = tmp_path / "llada.toml"
    config.write_text("[pretrain.ar]\nmax-steps = 2\nbatch_size = 2\n")
    cli.ok("--config", str(config), "pretrain", "ar", *MICRO, "--run-name", "cfg")
    info = json.loads((cli.home / "runs/cfg/run.json").read_text())
    assert info["train"]["max_steps"] == 2 and info["train"]["batch_size"] == 4


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_training_through_the_cli_works_in_either_dtype(cli, dtype):
    # --dtype auto picks bf16 on AVX512-BF16 CPUs and fp32 elsewhere: both paths must train
    cli.ok("pretrain", "diffusion", *MICRO, "--max-steps", "2", "--dtype", dtype, "--run-name", "base")
    cli.ok(
        "sft",
        "--base",
        "base",
        "--batch-size",
        "4",
        "--max-steps",
        "2",
        "--dtype",
        dtype,
        "--run-name",
        "chat",
    )
    for run in ("base", "chat"):
        info = json.loads((cli.home / "runs" / run / "run.json").read_text())
        assert info["status"] == "completed" and info["train"]["dtype"] == dtype
        assert all(math.isfinite(m["loss"]) for m in cli.metrics(run) if "loss" in m)


def test_compare_errors_name_its_own_flags_and_the_summary_sums_forward_passes(pipeline):
    too_long = pipeline(
        "compare", "--ar", "ar-chat", "--diffusion", "dlm-chat", "-p", "Hi", "--max-new-tokens", "500"
    )
    assert too_long.exit_code == 2
    assert (
        too_long.stderr.startswith("error: --max-new-tokens 500 does not fit")
        and "--gen-length" not in too_long.stderr
    )
    clash = pipeline(
        "compare", "--diffusion", "dlm-chat", "-p", "Hi", "--diffusion-threshold", "0.5", "--diffusion-exact"
    )
    assert clash.exit_code == 2 and "--diffusion-exact decodes a fixed number" in clash.stderr
    assert "drop --diffusion-threshold" in clash.stderr
    doc = json.loads(
        pipeline.ok("compare", "--diffusion", "dlm-chat", "-p", "Hi", "-p", "Who?", "--json").stdout
    )
    side = doc["diffusion"]
    assert side["summary"]["forward_passes"] == sum(r["forward_passes"] for r in side["results"])


def test_resume_extends_a_finished_run_and_refuses_other_changes(cli):
    args = ["pretrain", "ar", *MICRO, "--max-steps", "2", "--run-name", "short"]
    cli.ok(*args)
    finished = cli("pretrain", "ar", "--run-name", "short", "--resume")
    assert finished.exit_code == 2 and "--max-steps" in finished.stderr
    changed = cli("pretrain", "ar", "-n", "short", "--resume", "--max-steps", "4", "--learning-rate", "0.01")
    assert changed.exit_code == 2 and "--learning-rate 0.01" in changed.stderr
    wrong_kind = cli("pretrain", "diffusion", "--run-name", "short", "--resume", "--max-steps", "4")
    assert wrong_kind.exit_code == 2 and "llada pretrain ar" in wrong_kind.stderr
    cli.ok("pretrain", "ar", "--run-name", "short", "--resume", "--max-steps", "4")
    info = json.loads((cli.home / "runs/short/run.json").read_text())
    assert info["train"]["max_steps"] == 4 and info["status"] == "completed"
    assert [r["step"] for r in cli.metrics("short") if r.get("kind", "train") == "train"][-1] == 4


def test_a_run_says_what_it_is_first(cli):
    result = cli.ok("pretrain", "ar", *MICRO, "--max-steps", "2", "--run-name", "said")
    first, data, warning = result.stderr.splitlines()[:3]
    assert re.fullmatch(
        r"said: AR pretraining, preset tiny, 0\.\dM parameters; cpu (fp32|bf16), \d+ threads?; 2 steps", first
    ), first
    assert data.startswith("said: 4 rows a step (") and "train rows" in data
    assert "2 steps are too few to learn much" in warning
    sft = cli.ok("sft", "--base", "said", "--max-steps", "1", "--batch-size", "2", "--run-name", "chat")
    assert sft.stderr.startswith("chat: AR SFT of said, ")


def test_the_printed_resume_hint_of_an_interrupted_sft_runs_as_written(cli, monkeypatch):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "2", "--run-name", "base")
    _interrupt_at(3, monkeypatch)
    args = ["sft", "--base", "base", "--batch-size", "4", "--max-steps", "4", "--save-every", "2"]
    killed = cli(*args, "--run-name", "c1")
    assert killed.exit_code == 130
    hint = killed.stderr.split("resumes from step 2: ", 1)[1].split()
    assert hint[:3] == ["llada", "--home", str(cli.home)] and "--base" not in hint
    monkeypatch.undo()
    cli.ok(*hint[3:])
    assert RunInfo.load(cli.home / "runs" / "c1" / "run.json").status == "completed"


def test_a_resumed_run_names_the_preset_it_was_made_with(cli, monkeypatch):
    _interrupt_at(2, monkeypatch)
    killed = cli("pretrain", "ar", *MICRO, "--max-steps", "4", "--save-every", "1", "--run-name", "t")
    assert killed.exit_code == 130
    monkeypatch.undo()
    resumed = cli.ok("pretrain", "ar", "--run-name", "t", "--resume")
    assert "AR pretraining, preset tiny," in resumed.stderr.splitlines()[0]
    assert RunInfo.load(cli.home / "runs" / "t" / "run.json").preset == "tiny"
