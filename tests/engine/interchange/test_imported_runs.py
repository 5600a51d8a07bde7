"""Imported runs and checkpoint files (interchange/imported_runs.py): register_import makes a loadable
run; through the CLI, `runs import`, then sample, sft and --init-from (run or file), and a checkpoint
file used in place of a run."""

from __future__ import annotations

import json

import pytest
import torch

from llada_cli.engine.errors import LladaError, UsageError
from llada_cli.engine.interchange.imported_runs import register_import
from llada_cli.engine.model.tokenizer import Tokenizer
from llada_cli.engine.runs.loaded import load_run
from llada_cli.engine.runs.registry import Registry
from tests.engine.interchange.test_importing import VOCAB, imported_logits, minimind_logits, minimind_state


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
    texts = ["the quick brown fox jumps over the lazy dog", "a small model learns to denoise text"] * 20
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    Tokenizer.train(texts, vocab_size=300).save(path)
    return path


@pytest.mark.parametrize("kind", ["ar", "diffusion"])
def test_register_import_creates_a_loadable_run(tmp_path, tokenizer_path, kind):
    state = minimind_state("minimind-qk-norm")
    torch.save(state, tmp_path / "full_sft_32.pth")
    registry = Registry(tmp_path / "home")

    run, report = register_import(registry, tmp_path / "full_sft_32.pth", "mm", tokenizer_path, kind)

    loaded = load_run(run)
    tokens = Tokenizer.load(tokenizer_path).vocab_size + (kind == "diffusion")
    assert loaded.tokenizer.vocab_size == tokens == loaded.model.config.vocab_size
    assert (loaded.tokenizer.mask_id is not None) == (kind == "diffusion")
    assert loaded.step == 0 and loaded.model.config.causal == (kind == "ar")
    expected = minimind_logits(state, "minimind-qk-norm", causal=kind == "ar")
    torch.testing.assert_close(imported_logits(loaded.model)[..., :VOCAB], expected, atol=1e-5, rtol=0)
    grown = loaded.model.embed_tokens.weight[VOCAB:]  # rows for tokens the model never had: the mean
    torch.testing.assert_close(grown, state["model.embed_tokens.weight"].mean(0).expand_as(grown))
    info = json.loads(run.info_path.read_text())
    assert {k: info[k] for k in ("kind", "stage", "status", "step", "parent")} == dict(
        kind=kind, stage="imported", status="completed", step=0, parent=None
    )
    assert info["import_report"]["matched"] == report.matched and info["source"].endswith("full_sft_32.pth")
    assert {"model", "parameters", "command", "versions", "created", "format"} <= set(info)


def test_register_import_keeps_an_existing_run_unless_told(tmp_path, tokenizer_path):
    torch.save(minimind_state("minimind-qk-norm"), tmp_path / "m.pt")
    registry = Registry(tmp_path / "home")
    register_import(registry, tmp_path / "m.pt", "mm", tokenizer_path, "ar")
    with pytest.raises(UsageError, match="already exists"):
        register_import(registry, tmp_path / "m.pt", "mm", tokenizer_path, "ar")
    run, _ = register_import(registry, tmp_path / "m.pt", "mm", tokenizer_path, "diffusion", overwrite=True)
    assert run.kind == "diffusion"


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


def test_a_model_with_far_more_token_rows_than_the_tokenizer_is_refused(tmp_path, tokenizer_path):
    state = minimind_state("minimind-qk-norm")
    padded = {
        k: torch.cat([v, v.new_zeros(600, *v.shape[1:])]) if v.shape[0] == VOCAB else v
        for k, v in state.items()
    }
    torch.save(padded, tmp_path / "wide.pt")
    with pytest.raises(
        LladaError, match="token rows but the tokenizer .* ids: give the tokenizer the model was"
    ):
        register_import(Registry(tmp_path / "home"), tmp_path / "wide.pt", "wide", tokenizer_path, "ar")
    assert not (tmp_path / "home" / "runs" / "wide").exists()


def test_weights_that_are_not_finite_are_refused(tmp_path, tokenizer_path):
    state = {k: torch.full_like(v, float("nan")) for k, v in minimind_state("minimind-qk-norm").items()}
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(LladaError, match="holds NaN or infinite weights"):
        register_import(Registry(tmp_path / "home"), tmp_path / "nan.pt", "nan", tokenizer_path, "ar")
