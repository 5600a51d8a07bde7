"""Nano-LLaDA's own command lines, as its README prints them, run through llada.

Each command of tests/seeds/nano_llada_commands.txt runs verbatim with only its
`uv run python -m scripts.<x>.<y>` prefix replaced by the matching `llada` subcommand (MIGRATION,
the README's migration table). Training commands get a few flags appended that shrink the model,
batch and step count to test size (a repeated flag's last value wins); every flag of the seed is
still parsed and applied. Data and tokenizer are small files where the seed expects MiniMind's.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from llada_cli.engine.data.builtin import builtin_corpus
from llada_cli.engine.model.tokenizer import Tokenizer
from tests.conftest import TESTS, Cli

SEEDS = TESTS / "seeds"
MIGRATION = {
    "scripts.train.train_pretrain": ["pretrain", "ar"],
    "scripts.eval.eval_minimind": ["sample"],
    "scripts.train.diffusion": ["pretrain", "diffusion"],
    "scripts.eval.eval_diffusion": ["sample"],
    "scripts.train.train_sft_minimind": ["sft"],
    "scripts.train.train_sft_diffusion": ["sft"],
    "scripts.eval.eval_sft_one_prompt": ["compare"],
}
TINY = ["--hidden-size", "32", "--num-hidden-layers", "1", "--num-attention-heads", "2", "--batch-size", "4"]
SMALLER = {
    "scripts.train.train_pretrain": [*TINY, "--max-seq-len", "256"],  # room for its --max-new-tokens 200
    "scripts.train.diffusion": [*TINY, "--seq-len", "64", "--max-iters", "2"],
    "scripts.train.train_sft_minimind": ["--batch-size", "4"],
    "scripts.train.train_sft_diffusion": ["--batch-size", "4"],
}


def seed_commands() -> list[tuple[str, list[str]]]:
    """(script, its arguments) for every command of the seed file, in order."""
    text = (SEEDS / "nano_llada_commands.txt").read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.startswith("uv run")]
    commands = []
    for block in blocks:
        words = shlex.split(block.replace("\\\n", " "))
        assert words[:4] == ["uv", "run", "python", "-m"]
        commands.append((words[4], words[5:]))
    return commands


def as_llada(script: str, args: list[str]) -> list[str]:
    return [*MIGRATION[script], *args, *SMALLER.get(script, [])]


@pytest.fixture(scope="module")
def nano_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like a Nano-LLaDA checkout: ./tokenizer.json and ./dataset/*.jsonl."""
    root = tmp_path_factory.mktemp("nano")
    corpus = builtin_corpus()
    texts = corpus.documents[:60]
    (root / "dataset").mkdir()
    with (root / "dataset" / "pretrain_hq.jsonl").open("w", encoding="utf-8") as handle:
        for text in texts:
            handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    with (root / "dataset" / "sft_mini_512.jsonl").open("w", encoding="utf-8") as handle:
        for conversation in corpus.conversations[:24]:
            handle.write(json.dumps({"conversations": conversation}, ensure_ascii=False) + "\n")
    Tokenizer.train(texts, 300).save(root / "tokenizer.json")
    return root


def test_every_seed_command_line_runs(nano_project, monkeypatch, tmp_path):
    monkeypatch.chdir(nano_project)
    monkeypatch.delenv("LLADA_HOME", raising=False)
    cli = Cli(tmp_path / "home")
    diffusion_runs = 0
    for script, args in seed_commands():
        if script == "scripts.train.diffusion" and diffusion_runs:
            args = [*args, "--overwrite"]  # the older README's variant of the same run
        result = cli.ok(*as_llada(script, args))
        if script == "scripts.train.diffusion":
            diffusion_runs += 1
            # Nano-LLaDA's users renamed this run's weights file before the next steps; so do we
            for renamed in ("diffusion_no_v1", "diffusion_from_ar_eq3_3g_en"):
                shutil.copytree(
                    cli.home / "runs" / "diffusion_from_ar_eq3",
                    cli.home / "runs" / renamed,
                    dirs_exist_ok=True,
                )
        if script.startswith("scripts.eval"):
            assert result.stdout.strip(), f"{script} printed no answer"
    kinds = {name: json.loads((cli.home / "runs" / name / "run.json").read_text())["kind"] for name in (
        "minimind_pretrain", "diffusion_from_ar_eq3", "minimind_sft", "diffusion_sft")}  # fmt: skip
    assert kinds == {
        "minimind_pretrain": "ar",
        "diffusion_from_ar_eq3": "diffusion",
        "minimind_sft": "ar",
        "diffusion_sft": "diffusion",
    }
    assert diffusion_runs == 2


def test_the_readme_flag_sets_train(cli):
    for line in (SEEDS / "nano_llada_flag_sets.txt").read_text().splitlines():
        if not line.startswith("--"):
            continue
        flags = shlex.split(line)
        cli.ok("pretrain", "diffusion", *TINY, "--seq-len", "32", "--vocab-size", "300", "--max-steps", "2",
               *flags, "--run-name", "flags", "--overwrite")  # fmt: skip
        objective = json.loads((cli.home / "runs" / "flags" / "run.json").read_text())["objective"]
        if "wsd" in flags:
            assert objective["mask_schedule"] == "wsd" and objective["use_block_curriculum"]
            assert objective["time_weighted_loss"] and objective["doc_attention_mask"]
            assert {"mask_ratio", "block_size"} <= set(cli.metrics("flags")[-1])
        else:
            assert objective["mask_schedule"] == "iid_t" and objective["repeat_penalty_weight"] == 0


# The seed's command lines, flag for flag. CI swaps the size numbers for small ones; the slow
# variant runs them at Nano-LLaDA's own size (512 hidden, 8 layers, batch 96).
FULL = {"hidden": "512", "layers": "8", "heads": "8", "seq": "256", "batch": "96", "sft_seq": "512"}


SMALL = {"hidden": "64", "layers": "2", "heads": "8", "seq": "32", "batch": "8", "sft_seq": "64"}


@pytest.mark.parametrize("size", [SMALL, pytest.param(FULL, marks=pytest.mark.slow)], ids=["small", "full"])
def test_nano_llada_command_lines_run_as_written(cli, tmp_path, size):
    data = tmp_path / "pretrain_hq.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": f"第{i}段。 Paragraph {i} tells a short story."}) + "\n" for i in range(400)
        ),
        encoding="utf-8",
    )
    sft = tmp_path / "sft_mini_512.jsonl"
    turns = (
        {"conversations": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": f"A{i}."}]}
        for i in range(20)
    )
    sft.write_text("".join(json.dumps(t) + "\n" for t in turns), encoding="utf-8")
    shape = [
        "--hidden-size",
        size["hidden"],
        "--num-hidden-layers",
        size["layers"],
        "--num-attention-heads",
        size["heads"],
    ]
    cli.ok(
        "pretrain",
        "ar",
        "--data",
        str(data),
        "--jsonl-field",
        "text",
        "--run-name",
        "minimind_pretrain",
        *shape,
        "--max-seq-len",
        size["seq"],
        "--epochs",
        "1",
        "--batch-size",
        size["batch"],
        "--vocab-size",
        "400",
        "--eval-batches",
        "1",
    )
    cli.ok(
        "pretrain",
        "diffusion",
        "--data",
        str(data),
        "--jsonl-field",
        "text",
        "--seq-len",
        size["seq"],
        *shape,
        "--inference-rope-scaling",
        "--learning-rate",
        "4e-4",
        "--lr-schedule",
        "wsd",
        "--warmup-steps",
        "2000",
        "--lr-stable-ratio",
        "0.4",
        "--min-lr-ratio",
        "0.025",
        "--mask-schedule",
        "iid_t",
        "--variable-length-prob",
        "0.01",
        "--iid-mask-eps",
        "1e-3",
        "--weight-decay",
        "0.1",
        "--init-from",
        "minimind_pretrain",
        "--run-name",
        "diffusion_from_ar_eq3",
        "--early-stop-patience",
        "5",
        "--early-stop-min-delta",
        "0.001",
        "--max-iters",
        "2",
        "--batch-size",
        size["batch"],
        "--eval-batches",
        "1",
    )
    for base, run in (("minimind_pretrain", "minimind_sft"), ("diffusion_from_ar_eq3", "diffusion_sft")):
        cli.ok(
            "sft",
            "--data",
            str(sft),
            "--load-from",
            base,
            "--run-name",
            run,
            "--max-seq-len",
            size["sft_seq"],
            "--batch-size",
            size["batch"],
            "--epochs",
            "1",
            "--eval-batches",
            "1",
        )
    info = json.loads((cli.home / "runs/diffusion_sft/run.json").read_text())
    assert (info["kind"], info["status"], info["parent"]) == (
        "diffusion",
        "completed",
        "diffusion_from_ar_eq3@2",
    )
    assert info["model"]["hidden_size"] == int(size["hidden"]) and info["model"]["rope_scaling"] == 16.0
    assert json.loads((cli.home / "runs/minimind_sft/run.json").read_text())["kind"] == "ar"
