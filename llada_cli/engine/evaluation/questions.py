"""Benchmark files of your own (`llada eval RUN --questions FILE.jsonl`), scored like the builtin one.

One question a row: {"question": "...", "answer": "...", "split": "...", "lang": "...", "match":
"exact" | "contains" | "regex"}; split, lang and match are optional (split "questions", no
language, exact). exact: the reply's first sentence of its first line equals the answer, both
normalised (lower case, no punctuation, a leading English article dropped: the builtin
benchmark's rule); contains: the normalised answer occurs in the normalised reply; regex: the
answer is a Python regular expression found anywhere in the reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..data.builtin import answer_matches, normalise
from ..data.lines import json_objects
from ..errors import UsageError

MATCHES = ("exact", "contains", "regex")
QUESTION_FORMAT = '{"question", "answer", optional "split", "lang", "match": exact|contains|regex}'
DEFAULT_SPLIT = "questions"


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    split: str = DEFAULT_SPLIT
    lang: str | None = None
    match: str = "exact"


def read_questions(path: Path) -> list[Question]:
    """Every row of a questions file; a row in another shape is refused with its line."""
    if path.suffix != ".jsonl":
        raise UsageError(f"questions are read from a .jsonl file of {QUESTION_FORMAT} rows, not {path}")
    questions = []
    for lineno, row in json_objects(path, what="questions"):
        where = f"{path} line {lineno}"
        texts = {key: row.get(key) for key in ("question", "answer")}
        if not all(isinstance(text, str) and text.strip() for text in texts.values()):
            raise UsageError(
                f"{where}: expected non-empty strings under question and answer ({QUESTION_FORMAT})"
            )
        split, lang, match = row.get("split", DEFAULT_SPLIT), row.get("lang"), row.get("match", "exact")
        if not (isinstance(split, str) and split.strip() and "/" not in split and split != "all"):
            raise UsageError(f"{where}: split must be a name without '/' other than 'all'")
        if lang is not None and not (isinstance(lang, str) and lang.strip() and "/" not in lang):
            raise UsageError(f"{where}: lang must be a name without '/'")
        if match not in MATCHES:
            raise UsageError(f"{where}: match '{match}' is unknown: use one of {', '.join(MATCHES)}")
        if match == "regex":
            try:
                re.compile(row["answer"])
            except re.error as error:
                raise UsageError(f"{where}: the answer is not a regular expression: {error}") from None
        questions.append(Question(row["question"], row["answer"], split, lang, match))
    return questions


def reply_matches(reply: str, question: Question) -> bool:
    """Whether `reply` answers `question` under its match rule."""
    if question.match == "contains":
        expected = normalise(question.answer)
        return expected != "" and expected in normalise(reply)
    if question.match == "regex":
        return re.search(question.answer, reply) is not None
    return answer_matches(reply, question.answer)
