"""Every bad input is answered in one clear line on stderr with the right exit code, no traceback,
and nothing is written: the error contract of every command.

Option values (on the command line and through --config), sampling values, data files, broken
run.json files, a full disk, config files, tokenizers, imports, run names and global options.
Exit code 2 is a usage error, 1 a runtime one. `one_line_error` allows a training run's own lines
before the error; `assert_one_line_error` wants the error alone. Refusals to resume (changed
settings, removed or damaged checkpoints) are in engine/training/test_resume.py; a name that is
taken and overwrites, in engine/runs/test_registry.py and test_lifecycle.py."""

from __future__ import annotations

import errno
import json
import os
import shutil
from contextlib import contextmanager

import pytest
from tokenizers import Tokenizer as Backend
from tokenizers import models

from llada_cli.cli import app
from tests.conftest import MICRO
from tests.engine.data.test_sources import named_pipe

ONE_STEP = [*MICRO, "--max-steps", "2", "--run-name", "bad"]
DIFFUSION = ("pretrain", "diffusion")
AR = ("pretrain", "ar")


def one_line_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()  # a training run's own lines may come first
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:] and "Traceback" not in result.output, result.stderr
    return errors[0].removeprefix("error: ")


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


TRAINING_VALUES = [
    (AR, "--learning-rate", "nan", "--learning-rate must be a finite number, got nan"),
    (AR, "--learning-rate", "-1", "--learning-rate must be at least 0, got -1"),
    (AR, "--epochs", "nan", "--epochs must be a finite number, got nan"),
    (AR, "--epochs", "inf", "--epochs must be a finite number, got inf"),
    (AR, "--hidden-size", "-8", "--hidden-size must be at least 1, got -8"),
    (AR, "--min-lr-ratio", "-2", "--min-lr-ratio must be at least 0, got -2"),
    (AR, "--weight-decay", "nan", "--weight-decay must be a finite number, got nan"),
    (AR, "--grad-clip", "nan", "--grad-clip must be a finite number, got nan"),
    (AR, "--warmup-steps", "-3", "--warmup-steps must be at least 0, got -3"),
    (AR, "--keep-checkpoints", "-1", "--keep-checkpoints must be at least 0, got -1"),
    (DIFFUSION, "--iid-mask-eps", "-1", "--iid-mask-eps must be more than 0, got -1"),
    (DIFFUSION, "--iid-mask-eps", "nan", "--iid-mask-eps must be a finite number, got nan"),
    (DIFFUSION, "--variable-length-prob", "2", "--variable-length-prob must be at most 1, got 2"),
    (DIFFUSION, "--block-sizes-up", "4,-1", "--wsd-block-sizes-up must be at least 1, got -1"),
    (AR, "--vocab-size", "100", "--vocab-size must be at least 259, got 100"),
    (AR, "--jsonl-field", "", "--jsonl-field must name a field, e.g. text"),
]


@pytest.mark.parametrize(("command", "flag", "value", "message"), TRAINING_VALUES)
def test_training_values_are_refused_before_anything_is_written(cli, command, flag, value, message):
    result = cli(*command, *ONE_STEP, flag, value)
    assert one_line_error(result, 2) == message and result.stderr.count("\n") == 1
    assert not (cli.home / "runs").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("learning-rate", "nan", "--learning-rate must be a finite number, got nan"),
        ("epochs", "inf", "--epochs must be a finite number, got inf"),
        ("hidden-size", "-8", "--hidden-size must be at least 1, got -8"),
    ],
)
def test_the_same_values_through_config_are_refused(cli, tmp_path, key, value, message):
    config = tmp_path / "bad.toml"
    config.write_text(f"[pretrain.ar]\n{key} = {value}\n")
    result = cli("--config", str(config), *AR, "--max-steps", "2", "--run-name", "bad")
    assert one_line_error(result, 2) == message
    assert not (cli.home / "runs").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"pretrain = 5\n", "'pretrain' must be a table of options, e.g. [pretrain]"),
        (bytes(range(256)), "not a text file (expected TOML or YAML)"),
        (None, "is a folder"),
        ("fifo", "is a named pipe, not a file"),  # opening it would wait for a writer
    ],
)
def test_config_files_that_are_not_configs(cli, tmp_path, content, message):
    config = tmp_path / "c.toml"
    if content == "fifo":
        os.mkfifo(config)
    else:
        config.mkdir() if content is None else config.write_bytes(content)
    assert message in one_line_error(cli("--config", str(config), *AR, *ONE_STEP), 2)


@pytest.mark.parametrize(
    ("run", "args", "message"),
    [
        ("ar-base", ["--temperature", "nan"], "--temperature must be a finite number, got nan"),
        ("dlm-base", ["--threshold", "nan"], "--threshold must be a finite number, got nan"),
        ("ar-base", ["--max-new-tokens", "100000000000"], "--max-new-tokens 100000000000 does not fit"),
        ("ar-base", ["--json", "--jsonl"], "--json and --jsonl: choose one output format"),
        # an option the run's kind does not use is still checked
        ("dlm-base", ["--max-new-tokens", "-1"], "--max-new-tokens must be at least 1, got -1"),
        # either name gives the answer length; both together left one unused
        ("dlm-base", ["--gen-length", "8", "--max-new-tokens", "9"], "--gen-length and --max-new-tokens"),
        ("ar-base", ["--max-new-tokens", "8", "--gen-length", "9"], "--max-new-tokens and --gen-length"),
    ],
)
def test_sampling_values(pipeline, run, args, message):
    assert message in one_line_error(pipeline("sample", run, "-p", "hi", *args), 2)


def test_eval_names_its_own_flag(pipeline):
    assert "'--answer-length'" in one_line_error(pipeline("eval", "ar-base", "--answer-length", "-1"), 2)
    for run in ("ar-chat", "dlm-chat"):  # too long for the context: the sampler's check, eval's flag
        message = one_line_error(pipeline("eval", run, "--no-likelihood", "--answer-length", "100000000"), 2)
        assert message.startswith("--answer-length 100000000 does not fit")


def test_a_monte_carlo_budget_beyond_a_million_is_refused_before_allocating_it(pipeline):
    args = ("eval", "dlm-chat", "--no-questions", "--max-rows", "1", "--mc-num", str(10**12))
    assert_one_line_error(pipeline(*args), 2, "--mc-num 1000000000000 is out of range: 1 to 1,048,576")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe{", "is corrupt (not UTF-8 text)"),
        (b"[1, 2]", "does not describe a run (not a JSON object)"),
        (b'{"name": "broken"', "is corrupt"),
        ("kind", "field 'kind' is missing"),
        ("model", "field 'model' is missing"),
    ],
)
def test_a_broken_run_json_is_named_and_hides_no_other_run(cli, pipeline, content, message):
    runs = cli.home / "runs"
    shutil.copytree(pipeline.home / "runs" / "ar-base", runs / "good")
    shutil.copytree(pipeline.home / "runs" / "ar-base", runs / "broken")
    info = runs / "broken" / "run.json"
    if isinstance(content, bytes):
        info.write_bytes(content)
    else:  # a run.json that lacks a key every run has
        data = json.loads(info.read_text())
        del data[content]
        info.write_text(json.dumps(data))
    listing = cli.ok("runs", "list", columns=80).stdout
    rows = {line.split()[0]: line for line in listing.splitlines() if line.split()}
    assert "completed" in rows["good"] and "corrupt" in rows["broken"]
    for command in (("runs", "show", "broken"), ("sample", "broken", "-p", "hi")):
        error = one_line_error(cli(*command), 1)
        assert error.startswith(str(info)) and message in error and "fix or remove it" in error


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(cli, monkeypatch):
    from llada_cli.engine.model import checkpoint

    saved = []
    real_save = checkpoint.save_file

    def save_until_the_disk_is_full(tensors, path, metadata=None):
        if saved:
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(path)
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", save_until_the_disk_is_full)
    result = cli(*AR, *MICRO, "--max-steps", "4", "--save-every", "2", "--run-name", "full")
    error = one_line_error(result, 1)
    assert error == "cannot save the checkpoint of step 4: No space left on device; step 2 is intact"
    run = cli.home / "runs" / "full"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-0000002"]
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--num-attention-heads", "-4"], 2, "'--num-attention-heads'"),
        (["--num-attention-heads", "0"], 2, "'--num-attention-heads'"),
        (["-n", "ar-base"], 2, "run 'ar-base' already exists in"),
    ],
)
def test_import_options(pipeline, args, code, message):
    run = pipeline.home / "runs" / "ar-base"
    weights = run / "checkpoints" / "step-0000006" / "model.safetensors"
    tokenizer = ["--tokenizer", str(run / "tokenizer.json")]
    result = pipeline("runs", "import", str(weights), *tokenizer, "-n", "imported", *args)
    error = one_line_error(result, code)
    assert message in error and "--resume" not in error
    assert not (pipeline.home / "runs" / "imported").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ar-base", "dlm-base"], "cannot merge ar-base@6 with dlm-base@6: an AR run and a diffusion run"),
        (["ar-base", "--top-k-val", "0"], "Invalid value for '--top-k-val'"),
        (["ar-base", "--top-k-val", "9"], "--top-k-val 9 needs 9 checkpoints of run 'ar-base'"),
        (["ar-base@6", "ar-base"], "checkpoint ar-base@6 is given twice"),
        (["ar-base"], "a merge needs two or more checkpoints"),
    ],
)
def test_runs_merge_refusals(pipeline, args, message):
    assert_one_line_error(pipeline("runs", "merge", *args, "--name", "merged"), 2, message)
    assert not (pipeline.home / "runs" / "merged").exists()


def test_a_plain_pickle_is_refused_without_a_library_warning(cli, pipeline, tmp_path):
    import pickle

    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    tokenizer = pipeline.home / "runs" / "ar-base" / "tokenizer.json"
    result = cli("runs", "import", str(path), "--tokenizer", str(tokenizer), "-n", "p")
    assert one_line_error(result, 1) == f"cannot read {path}: not a PyTorch checkpoint (UnpicklingError)"


def test_home_that_is_a_file(cli, tmp_path):
    home = tmp_path / "file"
    home.write_text("")
    result = cli.runner.invoke(app, ["--home", str(home), "runs", "list"])
    assert one_line_error(result, 2) == f"--home {home} is a file; give a folder (it is created if missing)"


@pytest.mark.parametrize("name", ["nl\n", "a/b", ".hidden", "tab\tname", "-dash"])
def test_unsafe_run_names_are_refused_in_one_line(cli, name):
    result = cli(*AR, *MICRO, "--max-steps", "2", "--run-name", name)
    message = one_line_error(result, 2)
    assert message.startswith(f"run name {name!r} may use letters, digits") or "--run-name" in message
    runs = cli.home / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_an_unexpected_error_is_one_line_and_its_traceback_is_behind_v(cli, monkeypatch):
    from llada_cli.engine.runs.registry import Registry

    def broken(self):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(Registry, "runs", broken)
    message = one_line_error(cli("runs", "list"), 1)
    assert message == (
        "internal error in llada runs list: RuntimeError: boom second line; "
        "rerun with -v for the traceback and report it"
    )
    with pytest.raises(RuntimeError, match="boom"):
        cli("-v", "runs", "list")


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--pad-tokens", "0", "--pad-tokens must be at least 1, got 0"),
        ("--pad-tokens", "-2", "--pad-tokens must be at least 1, got -2"),
        (
            "--pad-policy",
            "some",
            "llada sft: Invalid value for '--pad-policy': 'some' is not one of 'capped', 'eos', 'ignore'.",
        ),
    ],
)
def test_sft_padding_values_are_refused_before_anything_is_written(pipeline, flag, value, message):
    result = pipeline("sft", "--base", "dlm-base", "--max-steps", "2", "--run-name", "bad-sft", flag, value)
    assert one_line_error(result, 2) == message
    assert not (pipeline.home / "runs" / "bad-sft").exists()


FINE, DEEP = b'{"text": "fine"}\n', b"[" * 100_000 + b"]" * 100_000
UTF16 = " line 1: not UTF-8 text (it starts with a UTF-16 byte-order mark)"
FIFO, DEVICE = (" is a named pipe, not a file",), ("/dev/zero is a character device, not a file",)


@contextmanager
def bad_file(path, content):
    """`path` with `content` (bytes), a named pipe ("fifo"), or another path ("/dev/zero")."""
    if content == "fifo":
        with named_pipe(path):
            yield path
        return
    if isinstance(content, bytes):
        path.write_bytes(content)
    yield path if content is None or isinstance(content, bytes) else content


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (None, ("data file not found",)),
        (b"", ("empty",)),
        (FINE + b'{"text": broken\n', (" line 2, column 10: invalid JSON",)),
        (FINE + b'{"body": "x"}\n', (" line 2: no field 'text'", "--jsonl-field")),
        (FINE + b'{"text": ' + DEEP + b"}\n", (" line 2: JSON nested too deeply",)),
        (FINE + b'{"text": "a", "n": ' + b"9" * 5000 + b"}\n", (" line 2: a number of over 4,300 digits",)),
        (FINE.decode().encode("utf-16"), (UTF16,)),
        (FINE + b"\0" * 100, (" line 2: not UTF-8 text (a NUL byte",)),
        ("fifo", FIFO),
        ("/dev/zero", DEVICE),
    ],
    ids=[
        "missing",
        "empty",
        "malformed",
        "missing-field",
        "deep",
        "long-int",
        "utf-16",
        "nul",
        "fifo",
        "device",
    ],
)
def test_bad_data_files(cli, tmp_path, content, fragments):
    with bad_file(tmp_path / "corpus.jsonl", content) as path:
        result = cli("pretrain", "ar", *MICRO, "--data", str(path), "--run-name", "bad")
    assert_one_line_error(result, 2, *fragments)
    assert not (cli.home / "runs" / "bad").exists()


SAMPLE, SWEEP = ("sample", "ar-chat"), ("sweep", "dlm-chat")
COMPARE = ("compare", "--ar", "ar-chat", "--diffusion", "dlm-chat")
UTF16_PROMPTS = '{"prompt": "Hi", "answer": "Hello"}\n'.encode("utf-16")


@pytest.mark.parametrize(
    ("command", "content", "fragments"),
    [
        (SAMPLE, UTF16_PROMPTS, (UTF16,)),
        (COMPARE, UTF16_PROMPTS, (UTF16,)),
        (SWEEP, UTF16_PROMPTS, (UTF16,)),
        (SAMPLE, b'{"prompt": "Hi"}\n{"prompt": "\xff"}\n', (" line 2: not UTF-8 text (invalid start byte",)),
        (SAMPLE, b'{"prompt": ' + DEEP + b"}\n", (" line 1: JSON nested too deeply",)),
        (SAMPLE, "fifo", FIFO),
        (SWEEP, "fifo", FIFO),
        (SAMPLE, "/dev/zero", DEVICE),
    ],
    ids=["sample-utf16", "compare-utf16", "sweep-utf16", "not-utf8", "deep", "fifo", "sweep-fifo", "device"],
)
def test_a_prompts_file_that_is_no_utf8_text_is_refused_in_one_line(
    pipeline, tmp_path, command, content, fragments
):
    with bad_file(tmp_path / "prompts.jsonl", content) as path:
        result = pipeline(*command, "--prompts-file", str(path))
    assert_one_line_error(result, 2, str(path), *fragments)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "stdin has no prompt"),
        ("\n \n", "stdin has no prompt"),
        ("Hi\n".encode("utf-16"), "stdin line 1: not UTF-8 text"),
    ],
    ids=["empty", "blank", "utf-16"],
)
def test_prompts_from_stdin_are_read_as_a_prompts_file_is(cli, stdin, message):
    result = cli("sample", "any-run", "--prompts-file", "-", input=stdin)
    assert_one_line_error(result, 2, message)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "more than 0 (frames per second), got 0"),
        ("-3", "more than 0 (frames per second), got -3"),
        ("nan", "a finite number, got nan"),
        ("inf", "a finite number, got inf"),
    ],
)
def test_a_live_frame_rate_that_is_not_a_positive_number_is_refused_before_loading(cli, value, message):
    result = cli("sample", "any-run", "-p", "Hi", "--live", "--live-fps", value)
    assert_one_line_error(result, 2, f"--live-fps must be {message}")
    result = cli("sample", "any-run", "-p", "Hi", "--live-fps", "4")
    assert_one_line_error(result, 2, "--live-fps applies only with --live")


def test_sft_refuses_a_file_with_no_conversation_to_train_on(pipeline, tmp_path):
    path = tmp_path / "sft.jsonl"
    rows = [
        {"conversations": [{"role": "system", "content": "Be brief."}]},
        {"conversations": [{"role": "assistant", "content": "Tidar."}, {"role": "user", "content": "Hi"}]},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = pipeline(
        "sft", "--base", "ar-base", "--data", str(path), "--max-steps", "1", "--run-name", "none"
    )
    assert_one_line_error(
        result,
        2,
        f"{path} has no usable conversations (skipped 2 of 2 conversations: 1 without an assistant answer, "
        "1 with an answer before any question)",
    )
    assert not (pipeline.home / "runs" / "none").exists()


def test_unknown_run_suggests_close_names(pipeline):
    result = pipeline("sample", "dlm-chatt", "--prompt", "x")
    assert_one_line_error(result, 2, "no run named 'dlm-chatt'", "dlm-chat")


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


def test_unknown_device_is_a_usage_error(cli):
    result = cli("--device", "gpu", "pretrain", "ar", *MICRO, "--max-steps", "1", "--run-name", "d")
    assert_one_line_error(result, 2, "--device 'gpu'", "cuda:N")
    # checked before any command, even one that uses no device; a newline cannot split the line
    assert_one_line_error(cli("--device", "cuda\nx", "runs", "list"), 2, "--device 'cuda\\nx'")


# ---------------------------------------------------------------------------------------------
# numbers out of the machine's range: 64-bit integers, ASCII digits


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--seed", "99999999999999999999999", "sample", "ar-base", "-p", "hi"], ("--seed", "64 bits")),
        (["sample", "ar-base", "-p", "hi", "--seed", "99999999999999999999999"], ("--seed", "64 bits")),
        (["--threads", "99999999999999999999999", "runs", "list"], ("--threads", "1024")),
        (["eval", "dlm-base", "--mc-num", "99999999999999999999"], ("--mc-num", "64 bits")),
        (["sample", "ar-base@\u00b2", "-p", "hi"], ("'ar-base@\u00b2'", "must be a step number")),
        (["sample", "ar-base@\u00b3\u2070\u2070", "-p", "hi"], ("must be a step number",)),
        (["sample", "ar-base@99999999999999999999", "-p", "hi"], ("more than any run can reach",)),
        (["runs", "show", "@6"], ("the run name before @ is empty",)),
        (["sample", "", "-p", "hi"], ("the run name is empty",)),
    ],
)
def test_numbers_a_machine_cannot_hold_and_unicode_digits(pipeline, args, fragments):
    assert_one_line_error(pipeline(*args), 2, *fragments)


def test_a_seed_beyond_64_bits_in_a_config_file_is_refused_before_training(cli, tmp_path):
    config = write(tmp_path / "c.toml", "[pretrain.ar]\nseed = 99999999999999999999\n")
    result = cli("--config", str(config), *AR, *ONE_STEP)
    assert_one_line_error(result, 2, "--seed", "64 bits")
    assert not (cli.home / "runs").exists()


# ---------------------------------------------------------------------------------------------
# options a command ignores, and values that cannot work: refused, saying why


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["sample", "ar-base", "-p", "hi", "--seq-len", "32"],
            ("--seq-len", "run 'ar-base' records its own"),
        ),
        (["eval", "ar-base", "--no-questions", "--seq-len", "32"], ("--seq-len", "checkpoint file")),
        (["compare", "--ar", "ar-base", "-p", "hi", "--seq-len", "32"], ("--seq-len", "checkpoint file")),
        (["sample", "ar-base", "-p", "hi", "--tokenizer", "RUNS/ar-base/tokenizer.json"], ("--tokenizer",)),
        (["sample", "ar-chat", "-p", "hi", "--system", "Be brief."], ("--system", "--chat")),
        (["sample", "dlm-base", "-p", "hi", "--threshold", "1.5"], ("--threshold must be at most 1",)),
        (["sample", "dlm-base", "-p", "hi", "--mode", "quality", "--threshold", "0.8"], ("--mode quality",)),
        (
            ["compare", "--diffusion", "dlm-base", "-p", "hi", "--diffusion-block-length", "0"],
            ("at least 1",),
        ),
        (["compare", "--ar", "ar-base", "-p", "hi", "--ar-temperature", "-1"], ("--ar-temperature must",)),
        (["compare", "--ar", "ar-base", "-p", "hi", "--ar-top-k", "-1"], ("--ar-top-k must be at least 0",)),
        (["runs", "show", "ar-base@99999"], ("no checkpoint at step 99999; it has: ",)),
        (["eval", "ar-base", "--no-questions", "--no-likelihood"], ("nothing to measure",)),
        (["eval", "ar-base", "--no-likelihood", "--data", "minimind"], ("--data choose the likelihood's",)),
        (["eval", "ar-base", "--no-questions", "--jsonl-field", "body"], ("--data builtin is not one",)),
        (["pretrain", "ar", "-n", "x", "--jsonl-field", "body"], ("--jsonl-field names the text", "builtin")),
        (["sft", "--base", "ar-base", "-n", "x", "--jsonl-field", "body"], ("SFT reads conversations",)),
        (["data", "fetch", "builtin", "--sft-file", "a.jsonl"], ("--sft-file has no effect on a named",)),
        (["chat", "dlm-chat", "--gen-length", "8", "--max-new-tokens", "9"], ("both set the answer length",)),
        (
            ["pretrain", "ar", "-n", "x", "--ema-decay", "0.9", "--fsdp", "--devices", "2"],
            ("--fsdp on several",),
        ),
        (["sample", "ar-base", "-p", "hi", "--no-ema"], ("ar-base@6 holds no moving average", "--ema-decay")),
        (["eval", "dlm-chat", "--ema"], ("dlm-chat@4 holds no moving average", "drop --ema")),
        (["data", "fetch", "x.jsonl", "--pretrain-file", "a.jsonl"], ("--pretrain-file has no effect",)),
        (["data", "fetch", "minimind", "--jsonl-field", "body"], ("--jsonl-field has no effect",)),
    ],
)
def test_options_without_effect_and_values_that_cannot_work(pipeline, args, fragments):
    args = [arg.replace("RUNS", str(pipeline.home / "runs")) for arg in args]
    assert_one_line_error(pipeline(*args), 2, *fragments)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--wsd-block-sizes-up", "4,8"], ("--wsd-block-sizes-up applies only with --use-block-curriculum",)),
        (["--block-curriculum-form", "masked_blocks"], ("only with --use-block-curriculum",)),
        (["--wsd-max-mask-ratio", "0.9"], ("only with --mask-schedule wsd",)),
        (["--preset", "small"], ("--preset: a run that starts from 'ar-base' takes its shape",)),
        (["--max-position-embeddings", "32"], ("shorter than the context of 'ar-base@6' (64 tokens)",)),
        (["--seq-len", "32", "--max-position-embeddings", "16"], ("--max-position-embeddings 16 is",)),
    ],
)
def test_a_continued_run_refuses_what_would_have_no_effect(pipeline, args, fragments):
    result = pipeline(*DIFFUSION, "--init-from", "ar-base", *args, "--max-steps", "1", "--run-name", "x")
    assert_one_line_error(result, 2, *fragments)
    assert not (pipeline.home / "runs" / "x").exists()


def test_a_context_shorter_than_the_training_rows_is_refused(cli):
    result = cli(*AR, *ONE_STEP, "--max-position-embeddings", "10")
    assert_one_line_error(result, 2, "--max-position-embeddings 10 is the model's context", "--seq-len 64")
    assert not (cli.home / "runs").exists()


# ---------------------------------------------------------------------------------------------
# resources and environment: a figure format, the terminal, memory, deep files, symlink loops


def test_sweep_refuses_a_figure_format_before_it_sweeps(pipeline):
    result = pipeline("sweep", "dlm-base", "--out", "s.xyz", "--limit", "1")
    assert_one_line_error(result, 2, "--out s.xyz: cannot write .xyz figures", ".png")


def test_bash_completion_with_a_word_number_that_is_not_one(monkeypatch, capsys):
    monkeypatch.setenv("_LLADA_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "llada sa")
    monkeypatch.setenv("COMP_CWORD", "abc")
    with pytest.raises(SystemExit) as stopped:
        app([], prog_name="llada")
    error = capsys.readouterr().err
    assert stopped.value.code == 2 and error.count("\n") == 1 and "COMP_CWORD='abc'" in error


@pytest.mark.parametrize(
    "failure",
    [
        lambda: RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 65000000000 bytes. Error code 12 (Cannot allocate memory)"
        ),
        lambda: __import__("torch").OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        lambda: MemoryError(),
    ],
    ids=["cpu", "cuda", "python"],
)
def test_a_batch_too_large_for_the_memory_is_one_line_suggesting_grad_accum(cli, monkeypatch, failure):
    from llada_cli.engine.training.trainer import Trainer

    def out_of_memory(self):
        raise failure()

    monkeypatch.setattr(Trainer, "_train_step", out_of_memory)
    message = one_line_error(cli(*AR, *ONE_STEP), 1)
    assert message.startswith("a micro-batch of 4 rows does not fit in cpu memory"), message
    assert "--batch-size" in message and "--grad-accum" in message and "internal error" not in message


def nested(depth: int, yaml: bool) -> str:
    return ("a: " if yaml else "[sample]\na = ") + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("deep.toml", nested(100_000, yaml=False), "nested too deeply"),
        ("deep.yaml", nested(100_000, yaml=True), "nested too deeply"),
        ("keys.yaml", "sample:\n  1: 2\n", "key 1 is not a name (YAML reads it as int)"),
        ("keys.yaml", "yes: 2\n", "key True is not a name (YAML reads it as bool)"),
        ("alias.yaml", "a: &x [*x]\n", ""),  # a list that holds itself: walked once, not forever
    ],
)
def test_config_and_experiment_files_nested_too_deep_or_with_keys_that_are_not_names(
    cli, tmp_path, name, text, message
):
    path = write(tmp_path / name, text)
    for args in (("--config", str(path), "runs", "list"), ("pipeline", str(path), "--dry-run")):
        error = one_line_error(cli(*args), 2)
        assert error.startswith(str(path)) and message in error, error


def test_symlink_loops_as_home_or_export_folder_are_named_in_one_line(cli, pipeline, tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for home in (tmp_path / "a", tmp_path / "a" / "runs"):
        result = cli.runner.invoke(app, ["--home", str(home), "runs", "list"])
        assert_one_line_error(result, 2, f"--home {home}: ", "symbolic links")
    for folder in (tmp_path / "a", tmp_path / "a" / "out"):
        assert_one_line_error(pipeline("export", "ar-base", str(folder)), 2, f"{folder}: ", "symbolic links")


# ---------------------------------------------------------------------------------------------
# experiment files (llada pipeline): every step's values read as its command reads them, before
# any step runs

AR_STEP = '[pretrain.ar]\nrun-name = "a"\n'
NOT_AN_INTEGER = "Input should be a valid integer, unable to parse string as an integer"
EXPERIMENT_VALUES = {
    "max-steps": (
        AR_STEP + 'max-steps = "four"\n',
        f"[pretrain.ar] max-steps: {NOT_AN_INTEGER} (got 'four')",
    ),
    "yaml-date": (
        "pretrain:\n  ar: {run-name: a, max-steps: 2024-01-01}\n",
        f"[pretrain.ar] max-steps: {NOT_AN_INTEGER} (got datetime.date(2024, 1, 1))",
    ),
    "gen-length": (
        '[sample]\nrun = "x"\ngen-length = "abc"\n',
        f"[sample] gen-length: {NOT_AN_INTEGER} (got 'abc')",
    ),
    "bound": (AR_STEP + "learning-rate = -1\n", "[pretrain.ar] learning-rate: must be at least 0, got -1"),
    "shared": ("batch-size = 'x'\n" + AR_STEP, f".toml: batch-size: {NOT_AN_INTEGER} (got 'x')"),
    "seed": ('seed = "abc"\n' + AR_STEP, f".toml: seed: {NOT_AN_INTEGER} (got 'abc')"),
    "threads": ("threads = 0\n" + AR_STEP, ".toml: threads: Input should be greater than or equal to 1"),
    "home-number": ("home = 5\n" + AR_STEP, ".toml: home: expected a path (a string in quotes), got 5"),
    "home-file": ("home = 'THIS-FILE'\n" + AR_STEP, ".toml: home THIS-FILE is a file; give a folder"),
    "argument": ("[eval]\nlikelihood = false\n", ".toml: [eval]: Missing argument 'run'"),
    "no-prompt": ('[sample]\nrun = "x"\nprompt = []\n', "[sample] prompt: an empty list; give one or more"),
    "no-run": ("[eval]\nrun = []\n", "[eval] run: an empty list; give one or more"),
    "no-plot": ('[plot]\nout = "loss.png"\n', "[plot]: give runs, the runs to plot"),
    "no-base": ('[sft.ar]\nrun-name = "c"\n', "[sft.ar]: give base, the run to fine-tune"),
    "sft-kind": (
        '[pretrain.diffusion]\nrun-name = "d"\n[sft.ar]\nrun-name = "c"\nload-from = "d@2"\n',
        "[sft.ar] load-from: 'd@2' is the diffusion run of [pretrain.diffusion]; an SFT run keeps its "
        "base's kind: fine-tune it under [sft.diffusion]",
    ),
    "init-kind": (
        '[sft.diffusion]\nrun-name = "d"\nbase = "x"\n'
        '[pretrain.diffusion]\nrun-name = "e"\ninit-from = "d"\n',
        "[pretrain.diffusion] init-from: 'd' is the diffusion run of [sft.diffusion]; a diffusion "
        "pretraining continues an AR run",
    ),
    "merged-base": (
        '[runs.merge]\nsources = ["x@1", "x@2"]\nname = "m"\n[sft.ar]\nrun-name = "c"\nbase = "m"\n',
        "[sft.ar] base: 'm' is made by [runs.merge], which runs after the training steps",
    ),
    "top-key": ("batch-sise = 4\n" + AR_STEP, ".toml: unknown key 'batch-sise'; did you mean batch-size"),
    "key": (AR_STEP + "batch-sise = 4\n", "[pretrain.ar]: unknown key 'batch-sise'; did you mean batch-size"),
}


@pytest.mark.parametrize(("text", "message"), EXPERIMENT_VALUES.values(), ids=EXPERIMENT_VALUES)
def test_experiment_values_are_read_as_their_commands_read_them_before_any_step(cli, tmp_path, text, message):
    data_step = "[data]\nsource = 'builtin'\n"  # first to run: it must not
    name, text = ("x.yaml", text) if text.startswith("pretrain:") else ("x.toml", f"{text}{data_step}")
    path = tmp_path / name
    write(path, text.replace("THIS-FILE", str(path)))
    for dry_run in (["--dry-run"], []):
        assert_one_line_error(
            cli("pipeline", str(path), *dry_run), 2, str(path), message.replace("THIS-FILE", str(path))
        )
    assert not cli.home.exists()
