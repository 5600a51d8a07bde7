"""`llada eval`: likelihood and the three question sets in one report."""

from __future__ import annotations

import json
import math


def test_eval_reports_likelihood_and_the_three_question_sets(pipeline):
    doc = json.loads(
        pipeline.ok(
            "eval", "dlm-chat", "--max-rows", "2", "--mc-num", "2", "--answer-length", "8", "--json"
        ).stdout
    )
    assert doc["likelihood"]["exact"] is False and doc["likelihood"]["bits_per_token"] > 0
    accuracy = doc["accuracy"]
    assert {"all", "seen", "forward", "reverse", "seen/en", "reverse/zh"} <= set(accuracy)
    assert accuracy["all"]["total"] == sum(accuracy[s]["total"] for s in ("seen", "forward", "reverse"))
    assert all(0 <= row["accuracy"] <= 1 for row in accuracy.values())
    ar = json.loads(pipeline.ok("eval", "ar-base", "--max-rows", "2", "--no-questions", "--json").stdout)
    assert ar["likelihood"]["exact"] is True and "accuracy" not in ar


def test_eval_scores_a_questions_file_per_split_and_language_with_each_rows_rule(pipeline, tmp_path):
    rows = [
        {"question": "Hi", "answer": "^", "match": "regex", "split": "any", "lang": "en"},  # any reply
        {"question": "Hello", "answer": "^", "match": "regex", "split": "any", "lang": "zh"},
        {"question": "Who are you?", "answer": "qqqq zzzz"},  # exact: no reply is this
        {"question": "Why?", "answer": "qqqq", "match": "contains", "split": "any", "lang": "en"},
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = ["eval", "ar-chat", "--questions", str(path), "--no-likelihood", "--answer-length", "4"]
    doc = json.loads(pipeline.ok(*args, "--json").stdout)
    accuracy = {group: (row["correct"], row["total"]) for group, row in doc["accuracy"].items()}
    assert accuracy == {
        "all": (2, 4),
        "any": (2, 3),
        "any/en": (1, 2),
        "any/zh": (1, 1),
        "questions": (0, 1),
    }
    assert doc["questions"] == str(path)
    text = pipeline.ok(*args).stdout
    assert "any 67% (en 50%, zh 100%)" in text and "questions 0%" in text


def test_a_bad_questions_file_or_option_pair_is_refused_in_one_line(pipeline, tmp_path):
    bad = tmp_path / "bad.jsonl"
    for row, message in (
        ({"question": "Hi"}, "expected non-empty strings under question and answer"),
        ({"question": "Hi", "answer": "x", "match": "fuzzy"}, "match 'fuzzy' is unknown"),
        ({"question": "Hi", "answer": "(", "match": "regex"}, "not a regular expression"),
        ({"question": "Hi", "answer": "x", "split": "a/b"}, "split must be a name"),
    ):
        bad.write_text(json.dumps(row) + "\n", encoding="utf-8")
        result = pipeline("eval", "ar-chat", "--questions", str(bad), "--no-likelihood")
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    result = pipeline("eval", "ar-chat", "--questions", str(bad), "--no-questions")
    assert result.exit_code == 2 and "--no-questions leaves out" in result.output
    result = pipeline("eval", "ar-chat", "--questions", str(tmp_path / "q.txt"), "--no-likelihood")
    assert result.exit_code == 2 and "from a .jsonl file" in result.output


def test_eval_scores_samples_under_a_reference_ar_run(pipeline):
    args = ["eval", "dlm-chat", "--no-likelihood", "--no-questions", "--gen-ppl", "ar-base"]
    doc = json.loads(pipeline.ok(*args, "--gen-samples", "2", "--gen-tokens", "8", "--json").stdout)
    generative = doc["generative"]
    assert generative["reference"].startswith("ar-base") and generative["samples"] == 2
    assert generative["perplexity"] > 1 and 0 <= generative["unigram_entropy"] <= math.log(8)
    assert generative["tokens"] > 0
    refused = pipeline("eval", "dlm-chat", "--no-likelihood", "--gen-ppl", "dlm-base")
    assert refused.exit_code == 2 and "the reference must be an AR run" in refused.output
    refused = pipeline("eval", "dlm-chat", "--gen-samples", "4")
    assert refused.exit_code == 2 and "apply only with --gen-ppl" in refused.output
