"""`llada pipeline`: an experiment file runs every step once, skips what is done, refuses changes."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from llada_cli.engine.training.trainer import Trainer

TINY = """preset = "tiny"
hidden-size = 64
num-hidden-layers = 2
num-attention-heads = 2
seq-len = 64
vocab-size = 512
"""  # the model of every experiment here

EXPERIMENT = """
seed = 3
batch-size = 4
log-every = 1

[data]
source = "builtin"

[pretrain.ar]
run-name = "ar-base"
{tiny}learning-rate = {lr}
max-steps = 3

[pretrain.diffusion]
run-name = "dlm-base"
init-from = "ar-base"
max-steps = 2

[sft.diffusion]
run-name = "dlm-chat"
base = "dlm-base"
max-steps = 2

[sample]
run = "dlm-chat"
chat = true
prompt = "Which city is the capital of Ninaria?"
gen-length = 8
"""

RUNS = ("ar-base", "dlm-base", "dlm-chat")


def _experiment(tmp_path: Path, lr: str = "1e-3", name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(EXPERIMENT.format(lr=lr, tiny=TINY), encoding="utf-8")
    return path


def _weights(home: Path, run: str) -> dict:
    info = json.loads((home / "runs" / run / "run.json").read_text())
    return load_file(home / "runs" / run / "checkpoints" / f"step-{info['step']:07d}" / "model.safetensors")


def test_pipeline_runs_every_step_then_skips_them_all(cli, tmp_path):
    experiment = _experiment(tmp_path)
    first = cli.ok("pipeline", str(experiment))
    assert first.stdout.strip()  # the sample step printed its answer
    for run in RUNS:
        info = json.loads((cli.home / "runs" / run / "run.json").read_text())
        assert info["status"] == "completed"
    assert json.loads((cli.home / "runs/ar-base/run.json").read_text())["train"]["seed"] == 3
    lines = {run: len(cli.metrics(run)) for run in RUNS}

    second = cli.ok("pipeline", str(experiment))
    skipped = [line for line in second.stderr.splitlines() if line.endswith("skipped")]
    assert len(skipped) == 5 and "pretrain.ar: run 'ar-base' completed at step 3" in second.stderr
    assert {run: len(cli.metrics(run)) for run in RUNS} == lines


def test_changed_setting_is_refused_unless_overwrite(cli, tmp_path):
    cli.ok("pipeline", str(_experiment(tmp_path)), "--stage", "pretrain")
    before = _weights(cli.home, "dlm-base")
    changed = _experiment(tmp_path, lr="2e-3")
    refused = cli("pipeline", str(changed), "--stage", "pretrain")
    assert refused.exit_code == 2
    assert "--learning-rate 0.002 (was 0.001)" in refused.stderr and "--overwrite" in refused.stderr
    cli.ok("pipeline", str(changed), "--stage", "pretrain", "--overwrite")
    info = json.loads((cli.home / "runs/ar-base/run.json").read_text())
    assert info["train"]["learning_rate"] == 0.002
    # dlm-base starts from ar-base, which changed: it was trained again
    after = _weights(cli.home, "dlm-base")
    assert any(not (before[k] == after[k]).all() for k in before)


def test_interrupted_step_resumes(cli, tmp_path, monkeypatch):
    original = Trainer._train_step

    def interrupt_at_step_2(self):
        if self.step == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "_train_step", interrupt_at_step_2)
    experiment = _experiment(tmp_path)
    stopped = cli("pipeline", str(experiment), "--stage", "pretrain")
    assert stopped.exit_code == 130 and "pipeline stopped at step pretrain.ar" in stopped.stderr
    monkeypatch.undo()
    resumed = cli.ok("pipeline", str(experiment), "--stage", "pretrain")
    assert "pretrain ar --batch-size 4" in resumed.stderr and "--resume" in resumed.stderr
    assert json.loads((cli.home / "runs/ar-base/run.json").read_text())["step"] == 3


def test_dry_run_prints_commands_that_reproduce_the_runs(cli, tmp_path, monkeypatch):
    experiment = _experiment(tmp_path)
    planned = cli.ok("pipeline", str(experiment), "--dry-run")
    assert not (cli.home / "runs").exists()  # nothing written
    lines = planned.stdout.strip().splitlines()
    assert lines[0] == f"llada --home {cli.home} --seed 3 data fetch builtin"
    assert len(lines) == 5 and all(line.startswith("llada ") for line in lines)
    for line in lines:  # as a shell would run them (a run records the command line it was made by)
        words = shlex.split(line)
        monkeypatch.setattr(sys, "argv", words)
        cli.ok(*words[1:])
    again = cli.ok("pipeline", str(experiment))  # the runs the lines made are what the file asks for
    for step, run in (
        ("pretrain.ar", "ar-base"),
        ("pretrain.diffusion", "dlm-base"),
        ("sft.diffusion", "dlm-chat"),
    ):
        assert f"{step}: run '{run}' completed at step " in again.stderr
        assert "(made by the same command line); skipped" in again.stderr.split(f"'{run}'")[1].splitlines()[0]
    elsewhere = tmp_path / "other"
    cli.ok("--home", str(elsewhere), "pipeline", str(experiment))  # the command line's --home wins
    for run in RUNS:
        ours, theirs = _weights(cli.home, run), _weights(elsewhere, run)
        assert all((ours[k] == theirs[k]).all() for k in ours), run


def test_yaml_with_the_same_shape_plans_the_same_steps(cli, tmp_path):
    toml_plan = cli.ok("pipeline", str(_experiment(tmp_path)), "--dry-run").stdout
    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text(
        "seed: 3\nbatch-size: 4\nlog-every: 1\ndata: {source: builtin}\n"
        "pretrain:\n  ar: {run-name: ar-base, preset: tiny, hidden-size: 64, num-hidden-layers: 2,"
        " num-attention-heads: 2, seq-len: 64, vocab-size: 512, learning-rate: 0.001, max-steps: 3}\n"
        "  diffusion: {run-name: dlm-base, init-from: ar-base, max-steps: 2}\n"
        "sft:\n  diffusion: {run-name: dlm-chat, base: dlm-base, max-steps: 2}\n"
        "sample: {run: dlm-chat, chat: true, prompt: 'Which city is the capital of Ninaria?',"
        " gen-length: 8}\n",
        encoding="utf-8",
    )
    assert cli.ok("pipeline", str(yaml_file), "--dry-run").stdout == toml_plan


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[sampel]\nrun = 'x'\n", "unknown table [sampel]; did you mean sample?"),
        ("[sample]\nrun = 'x'\ngen-lenght = 8\n", "unknown key 'gen-lenght'; did you mean gen-length?"),
        ("[pretrain.ar]\nrun-name = 'x'\nresume = true\n", "'resume' is decided by the pipeline"),
        ("bach-size = 4\n[sample]\nrun = 'x'\n", "unknown key 'bach-size'"),
        ("[sample]\nrun = 'x'\nchat = 3\n", "expected true or false"),
    ],
    ids=["table", "key", "resume", "shared-key", "switch-value"],
)
def test_bad_experiment_files_are_refused_in_one_line(cli, tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    result = cli("pipeline", str(path))
    assert result.exit_code == 2 and fragment in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_dry_run_loads_no_torch(tmp_path):
    experiment = _experiment(tmp_path)
    code = (
        "import sys\n"
        "from llada_cli.cli import app\n"
        f"code = app(['--home', {str(tmp_path / 'home')!r}, 'pipeline', {str(experiment)!r}, '--dry-run'],"
        " prog_name='llada', standalone_mode=False)\n"
        "assert code == 0 and 'torch' not in sys.modules, code\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("llada --home") == 5


def test_a_run_made_outside_a_pipeline_is_refused_saying_what_to_do(pipeline, tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('[pretrain.ar]\nrun-name = "ar-base"\nmax-steps = 6\n', encoding="utf-8")
    for dry_run in (["--dry-run"], []):
        result = pipeline("pipeline", str(path), *dry_run)
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
        assert "run 'ar-base' was made outside a pipeline" in result.stderr and "--overwrite" in result.stderr
    assert not (pipeline.home / "pipelines").exists()


def test_a_copied_file_is_compared_with_the_file_that_made_its_runs(cli, tmp_path):
    original = _experiment(tmp_path)
    cli.ok("pipeline", str(original), "--stage", "pretrain")
    same = cli.ok("pipeline", str(_experiment(tmp_path, name="copy.toml")), "--stage", "pretrain")
    assert f"run 'ar-base' completed at step 3 (made by {original}); skipped" in same.stderr
    changed = cli("pipeline", str(_experiment(tmp_path, lr="2e-3", name="copy.toml")), "--stage", "pretrain")
    assert (
        changed.exit_code == 2
        and f"run 'ar-base' was made by {original} with other settings" in changed.stderr
    )
    assert "--learning-rate 0.002 (was 0.001)" in changed.stderr and "--overwrite" in changed.stderr


MERGE = (
    """
batch-size = 4

[pretrain.ar]
run-name = "ar-base"
"""
    + TINY
    + """max-steps = 3
eval-every = 1
keep-checkpoints = 0

[runs.merge]
sources = "ar-base"
name = "ar-top2"
top-k-val = 2
"""
)


def test_a_merge_step_averages_the_runs_of_the_file_and_is_skipped_once_done(cli, tmp_path):
    experiment = tmp_path / "merge.toml"
    experiment.write_text(MERGE, encoding="utf-8")
    planned = cli.ok("pipeline", str(experiment), "--dry-run").stdout
    assert "runs merge ar-base --name ar-top2 --top-k-val 2" in planned
    cli.ok("pipeline", str(experiment))
    merged = json.loads((cli.home / "runs" / "ar-top2" / "run.json").read_text())
    assert len(merged["merged_from"]) == 2 and {s["run"] for s in merged["merged_from"]} == {"ar-base"}
    again = cli.ok("pipeline", str(experiment))
    assert "runs.merge: run 'ar-top2' completed" in again.stderr and again.stderr.count("skipped") == 2


def test_shared_values_go_only_to_the_steps_they_apply_to(cli, tmp_path):
    # a run with a parent takes its shape and tokenizer, and SFT reads conversations: given those
    # options it would be refused when it starts, after the steps before it had run
    experiment = tmp_path / "shared.toml"
    experiment.write_text(
        'preset = "tiny"\njsonl-field = "text"\nbatch-size = 4\n'
        '[pretrain.ar]\nrun-name = "a"\nmax-steps = 1\n'
        '[pretrain.diffusion]\nrun-name = "d"\ninit-from = "a"\nmax-steps = 1\n'
        '[sft.ar]\nrun-name = "c"\nbase = "a"\nmax-steps = 1\n',
        encoding="utf-8",
    )
    lines = cli.ok("pipeline", str(experiment), "--dry-run").stdout.splitlines()
    ar, diffusion, sft = (
        next(line for line in lines if f" {word} " in line) for word in ("ar", "diffusion", "sft")
    )
    assert "--preset tiny" in ar and "--jsonl-field text" in ar and "--batch-size 4" in ar
    assert "--preset" not in diffusion and "--jsonl-field text" in diffusion
    assert "--preset" not in sft and "--jsonl-field" not in sft and "--batch-size 4" in sft
