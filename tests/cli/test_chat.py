"""`llada chat`: multi-turn ChatML history, slash commands, and piped stdin for scripts."""

from __future__ import annotations

from dataclasses import replace

from llada_cli import api

QUESTION = "Which city is the capital of Ninaria?"


def test_piped_chat_answers_each_line_like_sample(pipeline):
    for run in ("ar-chat", "dlm-chat"):
        single = pipeline.ok("sample", run, "--chat", "--prompt", QUESTION, "--seed", "0")
        chatted = pipeline.ok("chat", run, "--seed", "0", input=f"{QUESTION}\n")
        assert chatted.stdout == single.stdout, run


def test_history_slash_commands_and_errors(pipeline, monkeypatch):
    prompts: list[str] = []
    original = api.Model.generate

    def spy(self, text, **kwargs):
        # a short fixed answer: what the micro model says could crowd its 64-token context
        prompts.append(text)
        return [replace(result, text="Tidar.") for result in original(self, text, **kwargs)]

    monkeypatch.setattr(api.Model, "generate", spy)
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
    result = pipeline.ok("chat", "ar-chat", "--max-new-tokens", "4", input=script + "\n")
    assert len(prompts) == 4
    assert result.stdout.splitlines()[0] == "Tidar."
    assert prompts[1].startswith(
        "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\nTidar.<|im_end|>\n"
    )
    assert prompts[1].endswith("<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n")
    assert prompts[2] == "<|im_start|>user\nFresh start<|im_end|>\n<|im_start|>assistant\n"
    assert prompts[3].startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nAgain")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "temperature" in errors[0] and "lots" in errors[0]
    assert "gen_temperature" in errors[1] or "--gen-temperature" in errors[1]


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
