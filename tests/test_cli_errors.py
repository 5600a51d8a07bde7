"""Bad input: one clear line on stderr, exit 2 (usage) or 1 (runtime), no traceback, nothing written."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer as Backend
from tokenizers import models

from tests.conftest import MICRO


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (None, ("data file not found",)),
        ("", ("empty",)),
        ('{"text": "fine"}\n{"text": broken\n', (":2:", "invalid JSON")),
        ('{"text": "fine"}\n{"body": "x"}\n', (":2:", "'text'", "--jsonl-field")),
    ],
    ids=["missing", "empty", "malformed-line", "missing-field"],
)
def test_bad_data_files(cli, tmp_path, content, fragments):
    path = tmp_path / "corpus.jsonl"
    if content is not None:
        write(path, content)
    result = cli("pretrain", "ar", *MICRO, "--data", str(path), "--run-name", "bad")
    assert_one_line_error(result, 2, *fragments)
    assert not (cli.home / "runs" / "bad").exists()


def test_unknown_run_suggests_close_names(pipeline):
    result = pipeline("sample", "dlm-chatt", "--prompt", "x")
    assert_one_line_error(result, 2, "no run named 'dlm-chatt'", "dlm-chat")


def test_existing_run_needs_resume_or_overwrite(pipeline):
    before = (pipeline.home / "runs/ar-base/run.json").read_text()
    result = pipeline("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "ar-base")
    assert_one_line_error(
        result, 2, "already exists", "(completed at step", "--resume with a larger --max-steps", "--overwrite"
    )
    assert (pipeline.home / "runs/ar-base/run.json").read_text() == before


def test_init_from_must_be_an_ar_run_of_the_same_shape(pipeline):
    result = pipeline(
        "pretrain", "diffusion", "--init-from", "dlm-base", "--max-steps", "1", "--run-name", "x"
    )
    assert_one_line_error(result, 2, "not an AR run")
    result = pipeline(
        "pretrain",
        "diffusion",
        "--init-from",
        "ar-base",
        "--hidden-size",
        "96",
        "--max-steps",
        "1",
        "--run-name",
        "x",
    )
    assert_one_line_error(result, 2, "--hidden-size 96", "ar-base")
    assert not (pipeline.home / "runs/x").exists()


def test_diffusion_option_on_an_ar_run(pipeline):
    result = pipeline(
        "sft", "--base", "ar-base", "--pad-policy", "eos", "--max-steps", "1", "--run-name", "y"
    )
    assert_one_line_error(result, 2, "--pad-policy", "AR run")
    result = pipeline("sample", "ar-chat", "--prompt", "hi", "--steps", "4")
    assert_one_line_error(result, 2, "--steps", "ar")


def test_prompt_longer_than_context(pipeline):
    result = pipeline("sample", "ar-chat", "--prompt", "word " * 400)
    assert_one_line_error(result, 2, "more than the model's context")


def test_tokenizer_without_required_special_token(cli, tmp_path):
    backend = Backend(models.WordLevel({"<|endoftext|>": 0, "a": 1, "[UNK]": 2}, unk_token="[UNK]"))
    path = tmp_path / "tokenizer.json"
    backend.save(str(path))
    result = cli("pretrain", "ar", *MICRO, "--tokenizer", str(path), "--run-name", "t")
    assert_one_line_error(result, 2, "<|im_start|>")


def test_incompatible_options(cli):
    result = cli("pretrain", "ar", *MICRO, "--global-batch-size", "8", "--grad-accum", "2", "--run-name", "z")
    assert_one_line_error(result, 2, "--global-batch-size", "--grad-accum")
    assert not (cli.home / "runs" / "z").exists()


def test_runs_rm_asks_and_keeps_data_unless_confirmed(pipeline, tmp_path):
    # a throwaway copy so the shared pipeline keeps its runs
    pipeline.ok("pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "scratch")
    refused = pipeline("runs", "rm", "scratch", input="n\n")
    assert refused.exit_code == 1 and (pipeline.home / "runs/scratch").exists()
    pipeline.ok("runs", "rm", "scratch", "--yes")
    assert not (pipeline.home / "runs/scratch").exists()
    assert "scratch" not in json.dumps(json.loads(pipeline.ok("runs", "list", "--json").stdout))


def test_overwrite_that_fails_its_checks_gives_the_old_run_back(pipeline, tmp_path):
    before = (pipeline.home / "runs/ar-chat/run.json").read_text()
    result = pipeline(
        "sft",
        "--base",
        "ar-base",
        "--data",
        str(tmp_path / "missing.jsonl"),
        "--overwrite",
        "--run-name",
        "ar-chat",
    )
    assert_one_line_error(result, 2, "data file not found")
    assert (pipeline.home / "runs/ar-chat/run.json").read_text() == before
    assert not list((pipeline.home / "runs").glob(".*"))


def test_unknown_device_is_a_usage_error(cli):
    result = cli("--device", "gpu", "pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "d")
    assert_one_line_error(result, 2, "--device gpu", "cuda:N")
