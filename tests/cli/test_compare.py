"""`llada compare`: both sides' answers and a summary, its own flags in its errors; Chinese answers
wrapped whole at 60 and 80 columns, an answer the length cut marked as cut."""

from __future__ import annotations

import json

import pytest
from rich.cells import cell_len


def test_compare_prints_both_answers_and_summary(pipeline):
    result = pipeline(
        "compare",
        "--ar",
        "ar-chat",
        "--diffusion",
        "dlm-chat",
        "-p",
        "Hi",
        "-p",
        "Who are you?",
        "--max-new-tokens",
        "8",
        columns=80,
    )
    output = result.stdout
    assert result.exit_code == 0 and max(len(line) for line in output.splitlines()) <= 80
    assert "ar: ar-chat@4" in output and "diffusion: dlm-chat@4" in output
    # every number has its own labelled column: a row per prompt and side, and each side's total
    header = next(line for line in output.splitlines() if "seconds" in line).split()
    assert header == ["side", "prompt", "new", "tokens", "seconds", "tokens/s", "forward", "passes"]
    rows = [line.split() for line in output.splitlines() if line.strip().startswith(("ar ", "diffusion "))]
    assert [row[:2] for row in rows] == [[s, p] for s in ("ar", "diffusion") for p in ("#1", "#2", "all")]
    for side in (rows[:3], rows[3:]):
        assert int(side[2][2]) == int(side[0][2]) + int(side[1][2])  # new tokens summed
        assert int(side[2][5]) == int(side[0][5]) + int(side[1][5])  # forward passes summed
    # each side says how it decoded: the same answer length, the diffusion default sampler
    assert "ar: 8 tokens, --temperature 0.0" in output
    assert (
        "diffusion: 8 tokens, --method semi_ar_padding --block-length 8 --cache none --threshold 0.9"
        in " ".join(output.split())
    )
    doc = json.loads(
        pipeline.ok(
            "compare",
            "--ar",
            "ar-chat",
            "--diffusion",
            "dlm-chat",
            "-p",
            "Hi",
            "--max-new-tokens",
            "8",
            "--json",
        ).stdout
    )
    assert doc["ar"]["summary"]["forward_passes"] >= 1 and doc["diffusion"]["settings"]["gen_length"] == 8
    fitted = json.loads(
        pipeline.ok("compare", "--ar", "ar-chat", "--diffusion", "dlm-chat", "-p", "Hi", "--json").stdout
    )  # no length given: one length for both sides, what the shorter context room allows
    lengths = fitted["ar"]["settings"]["max_new_tokens"], fitted["diffusion"]["settings"]["gen_length"]
    assert lengths[0] == lengths[1] and 0 < lengths[0] <= 64


def test_compare_errors_name_its_own_flags_and_the_summary_sums_forward_passes(pipeline):
    too_long = pipeline(
        "compare", "--ar", "ar-chat", "--diffusion", "dlm-chat", "-p", "Hi", "--max-new-tokens", "500"
    )
    assert too_long.exit_code == 2
    assert (
        too_long.stderr.startswith("error: --max-new-tokens 500 does not fit")
        and "--gen-length" not in too_long.stderr
    )
    clash = pipeline(
        "compare", "--diffusion", "dlm-chat", "-p", "Hi", "--diffusion-threshold", "0.5", "--diffusion-exact"
    )
    assert clash.exit_code == 2 and "--diffusion-exact decodes a fixed number" in clash.stderr
    assert "drop --diffusion-threshold" in clash.stderr
    doc = json.loads(
        pipeline.ok("compare", "--diffusion", "dlm-chat", "-p", "Hi", "-p", "Who?", "--json").stdout
    )
    side = doc["diffusion"]
    assert side["summary"]["forward_passes"] == sum(r["forward_passes"] for r in side["results"])


AR_ANSWER = "大型语言模型是一种基于深度学习的人工智能系统，它通过在海量文本上训练来理解和生成自然语言。"
DIFFUSION_ANSWER = "扩散语言模型从全部遮盖的序列出发，每一步同时揭示多个位置的词元，直到答案完整为止。"


@pytest.mark.parametrize("columns", [60, 80])
def test_compare_wraps_chinese_answers_whole_and_marks_those_the_length_cut(pipeline, monkeypatch, columns):
    from llada_cli import api

    def answers(model, prompts, **settings):  # the AR side ends with an end token, the diffusion side is cut
        text, finished = (AR_ANSWER, True) if model.kind == "ar" else (DIFFUSION_ANSWER, False)
        return [api.Result(p, text, [5] * 8, 3, 8, 8, 0.5, finished) for p in prompts]

    monkeypatch.setattr(api.Model, "generate", answers)
    result = pipeline.ok(
        "compare", "--ar", "ar-chat", "--diffusion", "dlm-chat", "-p", "什么是扩散语言模型", columns=columns
    )
    lines = result.stdout.splitlines()
    assert max(map(cell_len, lines)) <= columns and "\u2026" not in result.stdout
    rows = [line.split("│")[1:-1] for line in lines if line.startswith("│")]
    prompt, ar, diffusion = ("".join("".join(row[i].split()) for row in rows) for i in range(3))
    assert prompt == "什么是扩散语言模型" and ar == AR_ANSWER
    assert diffusion == DIFFUSION_ANSWER + "[cutat8tokens]"  # spaces dropped to join the wrapped lines
    assert "diffusion 1 8 0.50 16.0 8" in " ".join(result.stdout.split())  # no figure cut either


def test_compare_says_one_token_in_the_singular(pipeline):
    output = pipeline.ok(
        "compare", "--ar", "ar-chat", "--diffusion", "dlm-chat", "-p", "Hi", "--max-new-tokens", "1"
    ).stdout
    assert "ar: 1 token, --temperature" in output and "diffusion: 1 token, --method" in output
