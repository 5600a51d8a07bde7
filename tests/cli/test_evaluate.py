"""`llada eval`: likelihood and the three question sets in one report."""

from __future__ import annotations

import json


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
