"""External checkpoints through the CLI: `runs import`, then sample, sft and --init-from (run or file)."""

from __future__ import annotations

import json

import torch

from llada_cli.engine.model.tokenizer import Tokenizer
from tests.test_importing import minimind_state


def _files(tmp_path):
    texts = ["the quick brown fox jumps over the lazy dog", "a small model learns to denoise text"] * 20
    tokenizer = tmp_path / "tokenizer.json"
    Tokenizer.train(texts, vocab_size=300).save(tokenizer)
    checkpoint = tmp_path / "full_sft_32.pth"
    torch.save({"model": minimind_state("minimind-qk-norm")}, checkpoint)
    return checkpoint, tokenizer


def test_imported_minimind_run_samples_and_trains(cli, tmp_path):
    checkpoint, tokenizer = _files(tmp_path)
    result = cli.ok("runs", "import", str(checkpoint), "--name", "mm", "--tokenizer", str(tokenizer))
    assert "minimind-qk-norm: matched" in result.stderr
    info = json.loads((cli.home / "runs/mm/run.json").read_text())
    assert (info["kind"], info["stage"], info["model"]["num_kv_heads"], info["model"]["qk_norm"]) == (
        "ar",
        "imported",
        2,
        True,
    )
    sample = json.loads(
        cli.ok("sample", "mm", "--prompt", "the quick", "--max-new-tokens", "3", "--json").stdout
    )
    assert sample["results"][0]["new_tokens"] <= 3
    common = ["--batch-size", "2", "--max-steps", "2", "--seq-len", "16"]
    cli.ok("pretrain", "diffusion", "--init-from", "mm", *common, "--run-name", "from-run")
    cli.ok(
        "pretrain",
        "diffusion",
        "--init-from",
        str(checkpoint),
        "--tokenizer",
        str(tokenizer),
        *common,
        "--run-name",
        "from-file",
    )
    for name, parent in (("from-run", "mm@0"), ("from-file", str(checkpoint))):
        info = json.loads((cli.home / f"runs/{name}/run.json").read_text())
        assert (info["parent"], info["model"]["causal"], info["status"]) == (parent, False, "completed")


def test_init_from_a_file_needs_a_tokenizer(cli, tmp_path):
    checkpoint, _ = _files(tmp_path)
    result = cli(
        "pretrain", "diffusion", "--init-from", str(checkpoint), "--max-steps", "1", "--run-name", "x"
    )
    assert result.exit_code == 2 and "needs --tokenizer" in result.stderr


def test_checkpoint_files_sample_and_fine_tune_in_place(cli, tmp_path):
    """Nano-LLaDA's eval and SFT scripts take a weights file: so do sample, compare and sft."""
    checkpoint, tokenizer = _files(tmp_path)
    files = ["--tokenizer-dir", str(tokenizer.parent)]
    out = json.loads(
        cli.ok(
            "sample", "--checkpoint", str(checkpoint), *files, "-p", "the", "--max-new-tokens", "3", "--json"
        ).stdout
    )
    assert out["kind"] == "ar" and out["run"] == checkpoint.name and out["results"][0]["new_tokens"] <= 3
    table = cli.ok(
        "compare", "--minimind-checkpoint", str(checkpoint), *files, "-p", "the", "--max-new-tokens", "3"
    )
    assert "diffusion" not in table.stdout
    cli.ok(
        "sft",
        "--load-from",
        str(checkpoint),
        *files,
        "--batch-size",
        "2",
        "--max-steps",
        "1",
        "--run-name",
        "ft",
    )
    info = json.loads((cli.home / "runs/ft/run.json").read_text())
    assert (info["kind"], info["parent"]) == ("ar", str(checkpoint))
    assert cli.ok("runs", "show", "ft", "--json").stdout  # the run stands on its own
    scored = cli.ok(
        "eval", str(checkpoint), *files, "--seq-len", "32", "--no-questions", "--max-rows", "2", "--json"
    )
    likelihood = json.loads(scored.stdout)["likelihood"]
    assert likelihood["exact"] and likelihood["tokens"] == 2 * 31
    assert not (cli.home / "runs" / checkpoint.name).exists()  # the file was not imported


def test_an_import_shows_what_it_reads_on_a_terminal(cli, tmp_path, monkeypatch):
    from io import StringIO

    from rich.console import Console

    from llada_cli.cli import progress

    checkpoint, tokenizer = _files(tmp_path)
    screen = StringIO()
    monkeypatch.setattr(progress, "err", Console(file=screen, force_terminal=True, width=80))
    cli.ok("runs", "import", str(checkpoint), "--name", "mm", "--tokenizer", str(tokenizer))
    size = checkpoint.stat().st_size / 2**20
    assert f"importing {checkpoint.name} ({size:,.1f} MB)" in screen.getvalue()
    screen.truncate(0)
    cli.ok("-q", "runs", "import", str(checkpoint), "--name", "mm2", "--tokenizer", str(tokenizer))
    assert screen.getvalue() == ""  # --quiet: results and errors only
