"""`llada chat`: multi-turn ChatML history, slash commands, piped stdin for scripts, and Ctrl-C,
Ctrl-D and line editing on a terminal (a pseudo-terminal driving `python -m llada_cli chat`)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from llada_cli import api
from tests.conftest import ROOT

QUESTION = "Which city is the capital of Ninaria?"


def test_piped_chat_answers_each_line_like_sample(pipeline):
    for run in ("ar-chat", "dlm-chat"):
        single = pipeline.ok("sample", run, "--chat", "--prompt", QUESTION, "--seed", "0")
        chatted = pipeline.ok("chat", run, "--seed", "0", input=f"{QUESTION}\n")
        assert chatted.stdout == single.stdout, run


def _spied(monkeypatch) -> list[tuple[str, dict]]:
    """The prompts and sampler options each turn generates with; every answer is 'Tidar.' (what
    the micro model says could crowd its 64-token context)."""
    calls: list[tuple[str, dict]] = []
    original = api.Model.generate

    def spy(self, text, **kwargs):
        calls.append((text, {k: v for k, v in kwargs.items() if k not in ("seed", "on_step")}))
        return [replace(result, text="Tidar.") for result in original(self, text, **kwargs)]

    monkeypatch.setattr(api.Model, "generate", spy)
    return calls


def _errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_history_slash_commands_and_errors(pipeline, monkeypatch):
    calls = _spied(monkeypatch)
    script = "\n".join(
        [
            "Hello there",
            "And then?",
            "/set temperature lots",
            "/set gen-temperature 1",
            "/set temperature 0.5",
            "/reset",
            "Fresh start",
            "/system Be brief.",
            "Again",
            "/exit",
            "never asked",
        ]
    )
    result = pipeline("chat", "ar-chat", "--max-new-tokens", "4", input=script + "\n")
    assert result.exit_code == 1  # piped: a line failed, after the others were answered
    prompts = [text for text, _ in calls]
    assert len(prompts) == 4
    assert result.stdout.splitlines()[0] == "Tidar."
    assert prompts[1].startswith(
        "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\nTidar.<|im_end|>\n"
    )
    assert prompts[1].endswith("<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n")
    assert prompts[2] == "<|im_start|>user\nFresh start<|im_end|>\n<|im_start|>assistant\n"
    assert prompts[3].startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nAgain")
    errors = _errors(result)
    assert len(errors) == 2 and "temperature" in errors[0] and "lots" in errors[0]
    assert "'gen-temperature' is not a setting of ar sampling; did you mean temperature?" in errors[1]


def test_chat_refuses_a_bad_option_before_reading(pipeline):
    result = pipeline("chat", "ar-chat", "--steps", "4", input="hi\n")
    assert result.exit_code == 2 and "--steps" in result.stderr


def test_piped_stdin_is_read_as_utf8_text_a_byte_order_mark_skipped(pipeline):
    plain = pipeline.ok("chat", "ar-chat", "--seed", "0", input=f"{QUESTION}\n")
    with_bom = pipeline.ok("chat", "ar-chat", "--seed", "0", input=b"\xef\xbb\xbf" + f"{QUESTION}\n".encode())
    assert with_bom.stdout == plain.stdout
    refused = pipeline("chat", "ar-chat", input=f"{QUESTION}\n".encode("utf-16"))
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert refused.stderr.strip() == (
        "error: stdin line 1: not UTF-8 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"
    )
    answered_first = pipeline("chat", "ar-chat", "--seed", "0", input=f"{QUESTION}\n".encode() + b"\xff\n")
    assert answered_first.exit_code == 2 and answered_first.stdout == plain.stdout  # line by line
    assert answered_first.stderr.strip().startswith("error: stdin line 2: not UTF-8 text")


def test_an_answer_length_that_cannot_fit_is_refused_when_set_and_unset_restores_it(pipeline, monkeypatch):
    """The README's `/set gen-length 64` on the micro model (a 64-token context) is refused at once,
    and the turns after it are still answered."""
    single = pipeline.ok("sample", "dlm-chat", "--chat", "--prompt", "Hi", "--seed", "0")
    result = pipeline("chat", "dlm-chat", "--seed", "0", input="/set gen-length 64\nHi\n", columns=60)
    assert result.exit_code == 1 and result.stdout == single.stdout
    assert _errors(result) == [
        "error: gen-length 64 does not fit: the chat template leaves at most 50 of the model's 64 tokens "
        "for an answer; use at most 50, or leave gen-length out to fit each answer to its turn"
    ]
    calls = _spied(monkeypatch)
    script = [
        "/set max-new-tokens 5",
        "Hi",
        "/unset max-new-tokens",
        "Hi",
        "/set max-new-tokens 6",
        "/set max-new-tokens default",
        "Hi",
        "/set max-new-tokens 30",
        "/system " + "Be brief. " * 4,  # leaves no room for 30 tokens: refused, the old one stays
        "/unset max-new-tokens",
        "/system " + "Be brief. " * 4,
    ]
    result = pipeline("chat", "ar-chat", input="\n".join(script) + "\n")
    assert [options for _, options in calls] == [{"max_new_tokens": 5}, {}, {}]
    lines = [line for line in result.stderr.splitlines() if not line.startswith("(")]  # turns dropped
    assert lines[:5] == [
        "max-new-tokens = 5",
        "max-new-tokens = default",
        "max-new-tokens = 6",
        "max-new-tokens = default",
        "max-new-tokens = 30",
    ]
    assert lines[5].startswith(
        "error: max-new-tokens 30 does not fit: the chat template and the system message leave at most "
    )
    assert lines[6:] == ["max-new-tokens = default", "system message set; conversation cleared"]
    assert result.exit_code == 1


def test_a_flag_that_cannot_fit_a_turn_is_refused_before_reading(pipeline):
    result = pipeline("chat", "ar-chat", "--max-new-tokens", "64", input="hi\n")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --max-new-tokens 64 does not fit: the chat template leaves")


def test_set_alone_lists_the_settings_and_their_values(pipeline):
    for columns in (60, 80):
        result = pipeline.ok(
            "chat", "ar-chat", "--top-k", "3", input="/set temperature 0.7\n/set\n", columns=columns
        )
        lines = result.stderr.splitlines()
        assert lines[:2] == [
            "temperature = 0.7",
            "settings (/set NAME VALUE, /set SWITCH, /unset NAME for the default):",
        ]
        rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
        assert rows == {
            "temperature": ["0.7", "(set)"],
            "top-k": ["3", "(set)"],
            "compile": ["off"],
            "max-new-tokens": ["default"],
            "top-p": ["1.0"],
            "repetition-penalty": ["1.0"],
        }


def test_unknown_commands_and_settings_say_what_there_is(pipeline):
    result = pipeline("chat", "ar-chat", input="/foo\n/set temprature 1\n/set nothing-like-it 1\n/unset\n")
    assert result.exit_code == 1 and _errors(result) == [
        "error: unknown command /foo; the commands are /exit, /help, /reset, /set, /system, /unset "
        "(/help says more)",
        "error: 'temprature' is not a setting of ar sampling; did you mean temperature? (/set lists them)",
        "error: 'nothing-like-it' is not a setting of ar sampling (/set lists them)",
        "error: /unset needs the name of a setting; /set lists them",
    ]
    listed = pipeline.ok("chat", "ar-chat", input="/help\n").stderr
    assert "/unset NAME" in listed and "/set SWITCH" in listed


def test_switches_take_no_value(pipeline, monkeypatch):
    calls = _spied(monkeypatch)
    script = [
        "/set suppress-eos",
        "/set no-eos-confidence",
        "Hi",
        "/unset suppress-eos",
        "/set eos-confidence default",
        "Hi",
        "/set suppress-eos on",
        "/set no-exact",
        "/set gen-temp 0.5",  # a flag's alias
        "/set max-new-tokens 32",  # the other kind's answer length, as with the flags
    ]
    result = pipeline("chat", "dlm-chat", input="\n".join(script) + "\n")
    assert [options for _, options in calls] == [{"suppress_eos": True, "eos_confidence": False}, {}]
    assert result.exit_code == 1 and _errors(result) == [
        "error: suppress-eos is a switch and takes no value: /set suppress-eos turns it on, "
        "/unset suppress-eos gives its default",
        "error: exact has no 'no-' form: /unset exact turns it off",
    ]
    shown = [line for line in result.stderr.splitlines() if " = " in line]
    assert shown == [
        "suppress-eos = on",
        "eos-confidence = off",
        "suppress-eos = off (the default)",
        "eos-confidence = on (the default)",
        "temperature = 0.5",
        "gen-length = 32",
    ]


def test_old_turns_are_dropped_oldest_first_said_once(pipeline, monkeypatch):
    calls = _spied(monkeypatch)
    turns = ["first question", "second question", "third question", "fourth question"]
    result = pipeline.ok("chat", "ar-chat", "--max-new-tokens", "30", input="\n".join(turns) + "\n")
    prompts = [text for text, _ in calls]
    assert len(prompts) == 4 and result.stdout == "Tidar.\n" * 4
    assert "first question" not in prompts[2] and "second question" not in prompts[3]  # dropped twice
    assert all(
        prompt.endswith(f"user\n{turn}<|im_end|>\n<|im_start|>assistant\n")
        for prompt, turn in zip(prompts, turns, strict=True)
    )
    assert result.stderr.splitlines() == [
        "(the conversation has outgrown the model's context of 64 tokens: the oldest turns are dropped "
        "from now on)"
    ]


def test_a_base_run_is_said_once_not_to_be_a_chat_model(pipeline):
    base = pipeline.ok("chat", "ar-base", input="Hi\nHi again\n")
    assert [line for line in base.stderr.splitlines() if not line.startswith("(")] == [
        "note: ar-base@6 is a base run, not fine-tuned for chat: its answers need not follow the "
        "conversation (llada sft makes a chat run)"
    ]
    assert "note:" not in pipeline.ok("chat", "ar-chat", input="Hi\n").stderr


def test_piped_chat_answers_every_line_and_exits_1_when_one_failed(pipeline):
    single = pipeline.ok("sample", "ar-chat", "--chat", "--prompt", "Hi", "--seed", "0").stdout
    result = pipeline("chat", "ar-chat", "--seed", "0", input=f"{'x ' * 80}\n/reset\nHi\n")
    assert result.exit_code == 1 and result.stdout == single
    assert len(_errors(result)) == 1 and "more than the model's context" in _errors(result)[0]


# On a terminal: `python -m llada_cli chat` on a pseudo-terminal that the test types into.

# The prelude of the chat process: the pseudo-terminal becomes its controlling terminal, so that
# ^C typed there is SIGINT to it; with PAUSE, each answer waits at its first step for a signal:
# a generation long enough to be stopped, known to be under way by the line it prints.
PRELUDE = "import fcntl, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
PAUSE = """
import signal, sys
from llada_cli import api
generate = api.Model.generate
def paused(self, *args, on_step=None, **kwargs):
    def step(*values):
        print("<generating>", file=sys.stderr, flush=True)
        signal.pause()
    return generate(self, *args, on_step=step, **kwargs)
api.Model.generate = paused
"""
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


class Terminal:
    """A chat on a pseudo-terminal: what is typed, and what the screen shows, read until the text
    expected appears (or fails after a timeout, showing what did)."""

    def __init__(self, home, *args: str, pause: bool = False) -> None:
        pty = pytest.importorskip("pty")
        main, child = pty.openpty()
        code = (
            PRELUDE
            + (PAUSE if pause else "")
            + "import runpy; runpy.run_module('llada_cli', run_name='__main__')"
        )
        env = {**os.environ, "NO_COLOR": "1", "TERM": "xterm", "COLUMNS": "80"}
        env.pop("LLADA_HOME", None)
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, "--home", str(home), "chat", *args],
            stdin=child,
            stdout=child,
            stderr=child,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        os.close(child)
        self.fd, self.screen, self.read = main, "", 0

    def expect(self, text: str, timeout: float = 120) -> None:
        """Read until `text` shows after what was expected before."""
        while text not in self.screen[self.read :]:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            chunk = os.read(self.fd, 4096).decode(errors="replace") if ready else ""
            assert chunk, f"{text!r} never showed; the screen:\n{self.screen}"
            self.screen += ESCAPES.sub("", chunk)
        self.read = self.screen.index(text, self.read) + len(text)

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def interrupt(self, timeout: float = 60) -> None:
        """^C, once the chat is asleep (reading the terminal, or paused in an answer): one typed as
        the prompt is drawn, before the read starts, would wait in Python's readline for a key."""
        stat = Path(f"/proc/{self.process.pid}/stat")
        if not stat.exists():
            pytest.skip("needs /proc to know when the chat waits")
        deadline = time.monotonic() + timeout
        while stat.read_text().rpartition(")")[2].split()[0] != "S":
            assert time.monotonic() < deadline, f"the chat never waited; the screen:\n{self.screen}"
        self.type("\x03")

    def exit_code(self) -> int:
        """Read to the end (the terminal says EIO once the process has closed it) and wait."""
        try:
            while chunk := os.read(self.fd, 4096):
                self.screen += ESCAPES.sub("", chunk.decode(errors="replace"))
        except OSError:
            pass
        os.close(self.fd)
        return self.process.wait(timeout=60)


def test_ctrl_c_stops_the_answer_and_at_the_prompt_twice_leaves(pipeline):
    chat = Terminal(pipeline.home, "ar-chat", pause=True)
    chat.expect("you> ")
    chat.type("Hi\n")
    chat.expect("<generating>")
    chat.interrupt()
    chat.expect("(stopped)")
    chat.expect("you> ")
    chat.interrupt()
    chat.expect("(Ctrl-C again, Ctrl-D or /exit leaves)")
    chat.expect("you> ")
    chat.interrupt()
    assert chat.exit_code() == 0
    assert "interrupted" not in chat.screen and "Traceback" not in chat.screen


def test_line_editing_history_and_ctrl_d_on_a_terminal(pipeline):
    pytest.importorskip("readline")
    chat = Terminal(pipeline.home, "ar-chat")
    chat.expect("you> ")
    chat.type("/set temperature 0.5\n")
    chat.expect("temperature = 0.5")
    chat.expect("you> ")
    chat.type("\x1b[A\x7f7\n")  # up: the line before; backspace; 7
    chat.expect("temperature = 0.7")
    chat.expect("you> ")
    chat.type("\x04")
    assert chat.exit_code() == 0
    assert chat.screen.endswith("you> \n")  # the shell's prompt starts on a line of its own
