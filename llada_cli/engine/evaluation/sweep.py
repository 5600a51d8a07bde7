"""A sampler sweep: one model, a grid of diffusion sampler settings, each scored for accuracy,
speed and agreement with the exact sampler, plus a batch-invariance check (docs/algorithms.md 10).

The model is reached through `Answerer`, a function from (prompts, sampler options) to answers,
so this module needs no model code: the API passes its Model.generate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ..data.builtin import answer_matches, builtin_corpus
from ..data.lines import json_objects
from ..errors import UsageError


class Answer(Protocol):
    text: str
    token_ids: list[int]
    forward_passes: int
    seconds: float


Answerer = Callable[[list[str], dict[str, Any]], Sequence[Answer]]

# The default grid: the reference sampler, then what makes it faster. Every entry is a set of
# sampler options (field names); each is measured as given, on top of the run's own defaults.
DEFAULT_GRID: dict[str, dict[str, Any]] = {
    "exact": {"exact": True},
    "threshold 0.95": {"threshold": 0.95},
    "threshold 0.9": {"threshold": 0.9},
    "threshold 0.8": {"threshold": 0.8},
    "threshold 0.7": {"threshold": 0.7},
    "threshold 0.9, prefix cache": {"threshold": 0.9, "cache": "prefix"},
    "threshold 0.9, dual cache": {"threshold": 0.9, "cache": "dual"},
    "threshold 0.9, blocks of 8": {"threshold": 0.9, "block_length": 8},
    "threshold 0.9, semi_ar_origin": {"threshold": 0.9, "method": "semi_ar_origin"},
    "threshold 0.9, one block": {"threshold": 0.9, "method": "fixed_length"},
    "threshold 0.9, margin": {"threshold": 0.9, "remasking": "margin"},
    "threshold 0.9, entropy": {"threshold": 0.9, "remasking": "entropy"},
    "quality mode (editing)": {"mode": "quality"},
}


@dataclass(frozen=True)
class Question:
    prompt: str
    answer: str


@dataclass
class SweepPoint:
    """One sampler setting's figures over the question set."""

    label: str
    options: dict[str, Any]
    accuracy: float  # exact match of the answer's first sentence
    tokens_per_second: float  # new tokens over the wall time of all batches
    forwards_per_token: float
    agreement: float  # share of answers identical (token for token) to the exact sampler's
    pareto: bool = False  # no other setting is both at least as accurate and at least as fast

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def builtin_questions(limit: int | None = None) -> list[Question]:
    """The builtin benchmark's seen and forward questions (reverse ones test the model, not the sampler)."""
    questions = [Question(q.question, q.answer) for q in builtin_corpus().questions if q.split != "reverse"]
    return questions[:limit]


def questions_from_file(path: Path, limit: int | None = None) -> list[Question]:
    """A .jsonl of {"prompt": ..., "answer": ...} rows, read as every data file is (data/lines.py)."""
    questions = []
    for lineno, row in json_objects(path, what="prompts file"):
        prompt, answer = row.get("prompt"), row.get("answer")  # an answer may be a number
        if (
            not isinstance(prompt, str)
            or isinstance(answer, bool)
            or not isinstance(answer, (str, int, float))
        ):
            raise UsageError(f'{path} line {lineno}: expected {{"prompt": "...", "answer": "..."}}')
        questions.append(Question(prompt, str(answer)))
    if not questions:
        raise UsageError(f"{path} has no questions")
    return questions[:limit]


def run_sweep(
    questions: list[Question],
    answer: Answerer,
    grid: dict[str, dict[str, Any]],
    batch_size: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[SweepPoint]:
    """Every setting of `grid` over the questions, in batches; the first setting named "exact"
    (or the first of the grid) is the reference for agreement. `on_progress(done, total)` is told
    after each setting."""
    reference_label = "exact" if "exact" in grid else next(iter(grid))
    order = [reference_label, *(label for label in grid if label != reference_label)]
    reference: list[list[int]] = []
    points = {}
    for label in order:
        answers, seconds = answer_all(questions, answer, grid[label], batch_size)
        tokens = [a.token_ids for a in answers]
        reference = reference or tokens
        new_tokens = sum(len(t) for t in tokens)
        points[label] = SweepPoint(
            label=label,
            options=grid[label],
            accuracy=mean(answer_matches(a.text, q.answer) for a, q in zip(answers, questions, strict=True)),
            tokens_per_second=new_tokens / max(seconds, 1e-9),
            forwards_per_token=sum(a.forward_passes for a in answers) / max(new_tokens, 1),
            agreement=mean(t == r for t, r in zip(tokens, reference, strict=True)),
        )
        if on_progress is not None:
            on_progress(len(points), len(order))
    result = [points[label] for label in grid]
    mark_pareto_front(result)
    return result


def answer_all(
    questions: list[Question], answer: Answerer, options: dict[str, Any], batch_size: int
) -> tuple[list[Answer], float]:
    """Answers in batches of `batch_size`, and the wall time of all batches (a batch takes as long
    as its slowest row)."""
    answers: list[Answer] = []
    seconds = 0.0
    for start in range(0, len(questions), batch_size):
        batch = answer([q.prompt for q in questions[start : start + batch_size]], options)
        answers.extend(batch)
        seconds += max(a.seconds for a in batch)
    return answers, seconds


def mark_pareto_front(points: list[SweepPoint]) -> None:
    """A point is on the front when no other is at least as accurate and as fast, and better in one."""
    for point in points:
        point.pareto = not any(
            other.accuracy >= point.accuracy
            and other.tokens_per_second >= point.tokens_per_second
            and (other.accuracy > point.accuracy or other.tokens_per_second > point.tokens_per_second)
            for other in points
        )


def batch_differences(
    questions: list[Question], answer: Answerer, options: dict[str, Any], batch_size: int
) -> list[int]:
    """Indices of the questions whose answer alone differs from their answer in batches of
    `batch_size` (at temperature 0 they should all agree: padding and batching must not matter)."""
    alone = [answer([q.prompt], options)[0].token_ids for q in questions]
    batched = [a.token_ids for a in answer_all(questions, answer, options, batch_size)[0]]
    return [i for i, (a, b) in enumerate(zip(alone, batched, strict=True)) if a != b]


def mean(values) -> float:
    values = list(values)
    return sum(values) / max(len(values), 1)
