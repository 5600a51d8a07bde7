"""llada sweep: the figures of each sampler setting, the Pareto front, and batch invariance."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from llada_cli.engine.errors import UsageError
from llada_cli.engine.evaluation.sweep import (
    Question,
    SweepPoint,
    batch_differences,
    mark_pareto_front,
    questions_from_file,
    run_sweep,
)


@dataclass
class FakeAnswer:
    text: str
    token_ids: list[int]
    forward_passes: int
    seconds: float


def point(label: str, accuracy: float, speed: float) -> SweepPoint:
    return SweepPoint(label, {}, accuracy, speed, 1.0, 1.0)


def test_the_pareto_front_keeps_what_nothing_else_beats_on_both_counts():
    points = [point("slow exact", 0.8, 10), point("fast", 0.7, 100), point("dominated", 0.7, 50),
              point("tie", 0.8, 10), point("fastest, worst", 0.1, 200)]  # fmt: skip
    mark_pareto_front(points)
    assert [p.pareto for p in points] == [True, True, False, True, True]


def test_each_setting_is_scored_for_accuracy_speed_and_agreement_with_exact():
    questions = [Question("q1", "A."), Question("q2", "B."), Question("q3", "C.")]

    def answer(prompts, options):
        # "exact": all right, 2 forwards per token; "fast": q3 wrong, 1 forward for 2 tokens
        wrong = options.get("threshold") is not None
        texts = {"q1": "A.", "q2": "B.", "q3": "X." if wrong else "C."}
        forwards = 1 if wrong else 4
        return [FakeAnswer(texts[p], [ord(texts[p][0]), 0], forwards, 0.5) for p in prompts]

    told: list[tuple[int, int]] = []
    grid = {"exact": {"exact": True}, "fast": {"threshold": 0.9}}
    exact, fast = run_sweep(
        questions, answer, grid, batch_size=2, on_progress=lambda *done: told.append(done)
    )
    assert told == [(1, 2), (2, 2)]  # after each setting
    assert (exact.accuracy, exact.agreement, exact.forwards_per_token) == (1.0, 1.0, 2.0)
    assert fast.accuracy == pytest.approx(2 / 3) and fast.agreement == pytest.approx(2 / 3)
    assert fast.forwards_per_token == 0.5
    assert exact.tokens_per_second == pytest.approx(6 / 1.0)  # 6 tokens, two batches of 0.5 s


def test_batch_differences_names_the_answers_batching_changed():
    questions = [Question(f"q{i}", "") for i in range(4)]

    def answer(prompts, options):  # the last prompt of a batch of several comes out different
        return [FakeAnswer("", [1] if len(prompts) > 1 and i == len(prompts) - 1 else [0], 1, 0.1)
                for i, _ in enumerate(prompts)]  # fmt: skip

    assert batch_differences(questions, answer, {}, batch_size=2) == [1, 3]


def test_a_questions_file_needs_prompt_and_answer(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"prompt": "Capital of Ninaria?", "answer": "Tidar"}\n\n{"prompt": "x"}\n')
    with pytest.raises(UsageError, match=r'q.jsonl line 3: expected \{"prompt": "...", "answer": "..."\}'):
        questions_from_file(path)
    path.write_text('{"prompt": "Capital of Ninaria?", "answer": "Tidar"}\n{"prompt": "x", "answer": null}\n')
    with pytest.raises(UsageError, match=r"q.jsonl line 2: expected"):  # not the answer "None"
        questions_from_file(path)
    path.write_bytes(
        b'\xef\xbb\xbf{"prompt": "Capital of Ninaria?", "answer": "Tidar"}\n{"prompt": "2+2", "answer": 4}\n'
    )
    assert questions_from_file(path) == [Question("Capital of Ninaria?", "Tidar"), Question("2+2", "4")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"prompt": "q", "answer": "a"}\n'.encode("utf-16"), "line 1: not UTF-8 text"),
        (
            b'{"prompt": "q", "answer": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
            "line 1: JSON nested too deeply",
        ),
        (b'{"prompt": "q", "answer": ' + b"1" * 5000 + b"}\n", "line 1: a number of over 4,300 digits"),
    ],
    ids=["utf-16", "deep", "long-integer"],
)
def test_a_questions_file_python_cannot_read_is_refused_naming_its_line(tmp_path, data, message):
    path = tmp_path / "q.jsonl"
    path.write_bytes(data)
    with pytest.raises(UsageError, match=re.escape(f"{path} {message}")):
        questions_from_file(path)
