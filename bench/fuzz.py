"""Fuzz: every option and argument of every command with the values users and scripts give by
mistake, and hostile input files; count tracebacks, silent accepts and hangs.

    python bench/fuzz.py [--commands sample,eval] [--timeout 60] [--json] [--show accepted]

A tiny pipeline (ar-base -> dlm-base, both SFT'd) is trained first in a temporary home. Each
probe then runs one command in-process (the installed CLI, as `llada` runs it) from a base
invocation that succeeds, with one option or argument replaced by a probe value:
- numbers: not a number, 1.5 for an integer, empty, NaN, infinities, 1e400, more than 64 bits, a
  Unicode digit; then -1, 0, 1e30 and 100,000, which are meaningful for some options;
- choices: a bogus word and the empty string; strings: empty, 100,000 characters, a newline;
- input files: missing, a folder, a named pipe, /dev/zero, binary bytes, UTF-16, Latin-1, an empty
  file, a JSON array line, JSON nested 100,000 deep; run names: empty, unknown, a path, a bad @step;
- flags: switched on.
A probe ends as refused (exit 1 or 2 with one `error:` line), accepted (exit 0), a traceback (an
exception other than a clean exit, or "Traceback" / "internal error" in the output), a messy
refusal (not one `error:` line) or a hang (no answer within --timeout seconds).
A silent accept is an accepted value that is invalid wherever it is given (the first group of each
kind above, a missing or unreadable input file, a bad run name); -1, 0, 1e30, empty strings and
flags are accepted where they mean something, and `--show accepted` lists those for review.
Not part of the test suite: about ten minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import typing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import typer
from typer.testing import CliRunner

from llada_cli.cli import app

BAD, EDGE = "bad", "edge"  # invalid wherever given / meaningful for some options
LARGE = "100000"  # in range, too much for most; where it is an amount of work it means do more:
WORK = {"--mc-num"}  # skipped there and in training commands (train longer)
NUMBERS = {
    int: [
        ("abc", BAD),
        ("1.5", BAD),
        ("", BAD),
        ("9" * 20, BAD),
        ("\u0663", BAD),
        ("-1", EDGE),
        ("0", EDGE),
        (LARGE, EDGE),
    ],
    float: [
        ("abc", BAD),
        ("", BAD),
        ("nan", BAD),
        ("inf", BAD),
        ("-inf", BAD),
        ("1e400", BAD),
        ("-1", EDGE),
        ("0", EDGE),
        ("1e30", EDGE),
    ],
}
STRINGS = [("", EDGE), ("x" * 100_000, EDGE), ("a\nb", EDGE)]
RUN_NAMES = [("", BAD), ("no-such-run", BAD), ("a/b", BAD), ("ar-base@abc", BAD), ("ar-base@-1", BAD)]
OUTPUTS = {"--out", "--trace", "folder", "--home"}  # paths llada writes: any place may be meant
SKIPPED = {"--help", "--version", "--install-completion", "--show-completion"}  # not llada's code
MICRO = ["--hidden-size", "64", "--num-hidden-layers", "2", "--num-attention-heads", "2", "--seq-len", "64"]
TRAIN = ["--batch-size", "2", "--max-steps", "1", "--run-name", "fz", "--overwrite", "--dtype", "fp32"]


@dataclass
class Base:
    """A command line that succeeds; probes replace one of its options or arguments."""

    words: list[str]
    positionals: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    stdin: str | None = None


def bases(tmp: Path) -> dict[str, list[Base]]:
    prompts = tmp / "prompts.txt"
    prompts.write_text("The capital of Ardania is\n", encoding="utf-8")
    experiment = tmp / "pipeline.toml"
    experiment.write_text('[pretrain.ar]\nrun-name = "px"\nmax-steps = 1\n', encoding="utf-8")
    data = tmp / "data.jsonl"
    data.write_text('{"text": "hello world"}\n' * 4, encoding="utf-8")
    weights = tmp / "weights.safetensors"
    ar, dlm = (
        ["--prompt", "hi", "--max-new-tokens", "4"],
        ["--prompt", "hi", "--gen-length", "8", "--steps", "4"],
    )
    return {
        "pretrain ar": [
            Base(["pretrain", "ar"], [], ["--preset", "tiny", *MICRO, "--vocab-size", "512", *TRAIN])
        ],
        "pretrain diffusion": [Base(["pretrain", "diffusion"], [], ["--init-from", "ar-base", *TRAIN])],
        "sft": [Base(["sft"], [], ["--base", b, *TRAIN]) for b in ("ar-base", "dlm-base")],
        "dpo": [
            Base(["dpo"], [], ["--base", "ar-chat", *TRAIN]),
            Base(["dpo"], [], ["--base", "dlm-chat", *TRAIN, "--mc-num", "2"]),
        ],
        "grpo": [
            Base(["grpo"], [], ["--base", b, *TRAIN, "--group-size", "2", "--gen-length", "8"])
            for b in ("ar-chat", "dlm-chat")
        ],
        "sample": [Base(["sample"], ["ar-chat"], ar), Base(["sample"], ["dlm-chat"], dlm)],
        "chat": [
            Base(["chat"], ["ar-chat"], ["--max-new-tokens", "4"], "hi\n"),
            Base(["chat"], ["dlm-chat"], ["--gen-length", "8", "--steps", "4"], "hi\n"),
        ],
        "compare": [
            Base(
                ["compare"],
                [],
                ["--ar", "ar-chat", "--diffusion", "dlm-chat", "--prompt", "hi", "--max-new-tokens", "4"],
            )
        ],
        "eval": [Base(["eval"], [r], ["--max-rows", "2", "--mc-num", "2"]) for r in ("ar-chat", "dlm-chat")],
        "sweep": [
            Base(["sweep"], ["dlm-chat"], ["--limit", "2", "--gen-length", "8", "--out", str(tmp / "s.png")])
        ],
        "plot": [Base(["plot"], ["ar-base"], ["--out", str(tmp / "p.png")])],
        "pipeline": [Base(["pipeline"], [str(experiment)], ["--dry-run"])],
        "export": [Base(["export"], ["ar-chat", "{new}"], [])],
        "data fetch": [Base(["data", "fetch"], [str(data)], ["--out", "{new}"])],
        "runs list": [Base(["runs", "list"])],
        "runs show": [Base(["runs", "show"], ["ar-base"])],
        "runs rm": [Base(["runs", "rm"], ["no-such-run"], [])],
        "runs import": [Base(["runs", "import"], [str(weights)], ["--name", "{new-name}", "--kind", "ar"])],
        "": [Base(["runs", "list"])],  # the global options
    }


def input_files(tmp: Path) -> list[tuple[str, str]]:
    folder = tmp / "files"
    folder.mkdir(exist_ok=True)
    made = {
        "binary": bytes(range(256)) * 64,
        "utf16.txt": "hello\n".encode("utf-16"),
        "latin1.txt": "caf\xe9\n".encode("latin-1"),
        "empty.txt": b"",
        "array.jsonl": b"[1, 2]\n",
        "deep.json": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    }
    for name, content in made.items():
        (folder / name).write_bytes(content)
    fifo = folder / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    files = [(str(folder / "missing.txt"), BAD), (str(folder), BAD), (str(fifo), BAD), ("/dev/zero", BAD)]
    return (
        files
        + [(str(folder / name), BAD) for name in made if name != "empty.txt"]
        + [(str(folder / "empty.txt"), EDGE)]
    )


def values_for(param: Any, files: list[tuple[str, str]]) -> list[tuple[str, str]]:
    annotation = param.type_descriptor.annotation
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    name = param.opts[0]
    if getattr(param, "is_flag", False):
        return [("", EDGE)]
    if annotation in NUMBERS:
        return NUMBERS[annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return [("bogus", BAD), ("", BAD)]
    if annotation is Path:  # an output at /dev/zero: a regression must not turn it into a file
        return [(path, EDGE) for path, _ in files if path != "/dev/zero"] if name in OUTPUTS else files
    if param.param_type_name == "argument" and name in ("run", "name", "names", "runs"):
        return RUN_NAMES + [(path, BAD) for path, _ in files[:3]]
    return STRINGS


class Hang(BaseException):  # not an Exception: llada's own error boundary must not catch it
    pass


@dataclass
class Probe:
    command: str
    option: str
    value: str
    kind: str
    outcome: str = ""
    message: str = ""


def run_probe(
    runner: CliRunner, home: Path, tmp: Path, base: Base, owner: Any, param: Any, value: str, timeout: int
) -> tuple[str, str]:
    """Run `base` with `param` of the command `owner` (the root group: a global option) set to `value`."""
    positionals = list(base.positionals)
    options = list(base.options)
    name = param.opts[0]
    global_words: list[str] = []
    if param.param_type_name == "argument":
        arguments = [p.name for p in owner.params if p.param_type_name == "argument"]
        positionals[arguments.index(param.name)] = value
    else:
        for opt in param.opts:  # an option given twice takes the last: drop the base's
            while opt in options:
                at = options.index(opt)
                del options[at : at + (1 if getattr(param, "is_flag", False) else 2)]
        added = [name] if getattr(param, "is_flag", False) else [name, value]
        if hasattr(owner, "commands"):  # the root group: its options go before the command
            global_words = added
        else:
            options += added
    words = [
        w.replace("{new}", str(tempfile.mkdtemp(dir=tmp)) + "/out").replace(
            "{new-name}", f"imp{time.monotonic_ns()}"
        )
        for w in [*base.words, *positionals, *options]
    ]
    args = ["--home", str(home), *global_words, *words] if name != "--home" else [*global_words, *words]

    def alarm(signum: int, frame: Any) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(timeout)
    threads = torch.get_num_threads()
    try:
        result = runner.invoke(app, args, input=base.stdin, env={"COLUMNS": "100"})
    except Hang:
        return "hang", ""
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        torch.set_num_threads(threads)  # --threads in-process would stay for every later probe
    return outcome(result)


def outcome(result: Any) -> tuple[str, str]:
    """How a CliRunner result ended, and its message: refused, accepted, traceback or messy."""
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback", f"{type(result.exception).__name__}: {result.exception}"
    if "Traceback" in output or "internal error" in output:
        return "traceback", output.strip().splitlines()[-1]
    if result.exit_code == 0:
        return "accepted", ""
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    if len(errors) != 1 or result.exit_code not in (1, 2):
        return "messy", output.strip()[-300:]
    return "refused", errors[0][:200]


def commands(group: Any, prefix: str = "") -> dict[str, Any]:
    found = {}
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        found.update(commands(command, path) if hasattr(command, "commands") else {path: command})
    return found


def build_pipeline(runner: CliRunner, home: Path) -> None:
    shape = " ".join(MICRO)
    lines = [
        f"pretrain ar --preset tiny {shape} --vocab-size 512 --batch-size 4 --max-steps 4 --run-name ar-base",
        "pretrain diffusion --init-from ar-base --batch-size 4 --max-steps 4 --run-name dlm-base",
        "sft --base ar-base --batch-size 4 --max-steps 2 --run-name ar-chat",
        "sft --base dlm-base --batch-size 4 --max-steps 2 --run-name dlm-chat",
    ]
    for line in lines:
        result = runner.invoke(app, ["--home", str(home), *line.split()])
        if result.exit_code != 0:
            sys.exit(f"cannot build the pipeline: llada {line}:\n{result.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", default="", help="comma-separated commands (default: all)")
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--show", choices=["accepted", "all"], help="list accepted edge values, or every probe"
    )
    args = parser.parse_args()
    started = time.monotonic()
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        home = tmp / "home"
        build_pipeline(runner, home)
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(2)}, str(tmp / "weights.safetensors"))
        root = typer.main.get_command(app)
        table = {**commands(root), "": root}
        files = input_files(tmp)
        wanted = set(args.commands.split(",")) if args.commands else set(table)
        probes: list[Probe] = []
        for command, base_list in bases(tmp).items():
            if command not in wanted:
                continue
            for param in table[command].params:
                if param.opts[0] in SKIPPED or param.param_type_name not in ("option", "argument"):
                    continue
                for base in base_list:
                    for value, kind in values_for(param, files):
                        if value == LARGE and (
                            command.startswith(("pretrain", "sft", "dpo", "grpo")) or param.opts[0] in WORK
                        ):
                            continue
                        probe = Probe(command or "llada", param.opts[0], value[:40], kind)
                        probe.outcome, probe.message = run_probe(
                            runner, home, tmp, base, table[command], param, value, args.timeout
                        )
                        probes.append(probe)
    counts = Counter(p.outcome for p in probes)
    silent = [p for p in probes if p.outcome == "accepted" and p.kind == BAD]
    figures = {
        "probes": len(probes),
        "refused": counts["refused"],
        "accepted": counts["accepted"],
        "tracebacks": counts["traceback"],
        "silent_accepts": len(silent),
        "messy_refusals": counts["messy"],
        "hangs": counts["hang"],
        "seconds": round(time.monotonic() - started, 1),
    }
    flagged = [p for p in probes if p.outcome in ("traceback", "messy", "hang") or p in silent]
    shown = (
        probes if args.show == "all" else [p for p in probes if p.outcome == "accepted"] if args.show else []
    )
    if args.json:
        print(json.dumps({**figures, "flagged": [p.__dict__ for p in flagged]}))
        return
    for p in [*flagged, *shown]:
        print(f"{p.outcome:9} {p.command} {p.option} {p.value!r} ({p.kind}) {p.message}")
    print(", ".join(f"{key.replace('_', ' ')} {value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
