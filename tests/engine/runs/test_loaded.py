"""A run's checkpoint loaded for use (runs/loaded.py): a run folder whose files disagree is refused
in one line, and a damaged `latest` pointer is ignored."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file

from llada_cli.engine.runs.loaded import load_run
from llada_cli.engine.runs.registry import Registry
from tests.conftest import MICRO, TESTS

WEIGHTS = "checkpoints/step-0000002/model.safetensors"


@pytest.fixture
def legacy(cli):
    shutil.copytree(TESTS / "fixtures" / "legacy-home", cli.home)
    return cli


def test_a_diffusion_run_with_an_ar_tokenizer_is_refused(legacy):
    runs = legacy.home / "runs"
    shutil.copy(runs / "legacy-ar" / "tokenizer.json", runs / "legacy-dlm" / "tokenizer.json")
    refused = legacy("sample", "legacy-dlm", "-p", "The", "--gen-length", "4")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "run 'legacy-dlm': its tokenizer.json has no <|mask|> token" in refused.stderr


def test_weights_of_the_other_kind_are_refused(legacy):
    runs = legacy.home / "runs"
    shutil.copy(runs / "legacy-dlm" / WEIGHTS, runs / "legacy-ar" / WEIGHTS)
    refused = legacy("sample", "legacy-ar", "-p", "The", "--max-new-tokens", "4")
    assert refused.exit_code == 1
    assert "run 'legacy-ar' is an AR run but step 2 holds a diffusion model's weights" in refused.stderr


def test_a_latest_pointer_that_is_not_text_is_ignored(legacy):
    (legacy.home / "runs" / "legacy-ar" / "latest").write_bytes(b"\xff\xfe\x00step")
    legacy.ok("sample", "legacy-ar", "-p", "The", "--max-new-tokens", "4")


def test_the_moving_average_is_used_where_a_run_kept_one_unless_told_otherwise(cli, tmp_path):
    cli.ok("pretrain", "ar", *MICRO, "--max-steps", "3", "--ema-decay", "0.5", "--run-name", "e")
    run, step = Registry(cli.home).resolve("e")
    averaged, raw = load_run(run, step), load_run(run, step, ema=False)
    assert averaged.ema and not raw.ema
    name = "embed_tokens.weight"
    assert not torch.equal(averaged.model.state_dict()[name], raw.model.state_dict()[name])
    for choice in ("--ema", "--no-ema"):
        cli.ok("sample", "e", "-p", "The", "--max-new-tokens", "4", choice)
    cli.ok("export", "e", str(tmp_path / "hf"))
    exported = load_file(str(tmp_path / "hf" / "model.safetensors"))
    embedding = averaged.model.state_dict()[name].float()
    assert torch.equal(exported["model.embed_tokens.weight"].float(), embedding)
