"""Prompts with their answers for GRPO: the builtin corpus's RL questions, or a .jsonl of rows
{"prompt": "..." | "messages": [...], "answer": "..."}.

A prompt is the chat template's text up to the assistant's turn, as `sample --chat` encodes it, so
the answers sampled in training are those a user would get; the reward compares an answer's first
sentence with `answer` (data/builtin.py answer_matches).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..model.tokenizer import Tokenizer
from .builtin import builtin_corpus
from .lines import json_objects
from .tokens import stream_dtype

Messages = list[dict[str, str]]
PROMPT_FORMAT = '{"prompt" or "messages", "answer"}'
ROLES = ("system", "user", "assistant")


def prompt_messages(row: dict, where: str, row_format: str) -> Messages:
    """A row's prompt as chat messages ending on a user turn: its "prompt" string or its "messages"."""
    if isinstance(row.get("prompt"), str) == ("messages" in row):
        raise UsageError(f"{where}: give the prompt as either prompt (a string) or messages (a list)")
    if "prompt" in row:
        return [{"role": "user", "content": row["prompt"]}]
    messages = row["messages"]
    well_formed = isinstance(messages, list) and all(
        isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in messages
    )
    if not well_formed or not messages or messages[-1]["role"] != "user":
        raise UsageError(
            f"{where}: messages must be a list of {{role, content}} turns (system, user, assistant) "
            f"ending with the user's ({row_format})"
        )
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def iter_prompts(source: str) -> Iterator[tuple[Messages, str]]:
    """(prompt messages, expected answer) of "builtin" (its RL questions) or a .jsonl file."""
    if source == "builtin":
        for question in builtin_corpus().rl_questions:
            yield [{"role": "user", "content": question.question}], question.answer
        return
    path = Path(source).expanduser()
    if path.suffix != ".jsonl":
        raise UsageError(f"GRPO prompts are read from a .jsonl file of {PROMPT_FORMAT} rows, not {path}")
    for lineno, row in json_objects(path, what="GRPO prompts"):
        where = f"{path} line {lineno}"
        answer = row.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise UsageError(f"{where}: expected a non-empty string under answer ({PROMPT_FORMAT})")
        yield prompt_messages(row, where, PROMPT_FORMAT), answer


@dataclass(frozen=True)
class PromptSet:
    ids: np.ndarray  # (N, P) prompt tokens, EOS after each prompt's end
    lengths: np.ndarray  # (N,)
    answers: list[str]  # what each prompt's answer must match
    skipped: int  # prompts longer than the room left for them


def prompt_set(source: str, tokenizer: Tokenizer, max_len: int) -> PromptSet:
    """Every prompt of `source` of at most `max_len` tokens (the rest are skipped and counted)."""
    rows, answers, skipped = [], [], 0
    for messages, answer in iter_prompts(source):
        ids = tokenizer.encode(tokenizer.chat_text(messages, add_generation_prompt=True))
        if len(ids) > max_len:
            skipped += 1
            continue
        rows.append(ids)
        answers.append(answer)
    if not rows:
        raise UsageError(
            f"no prompt of {source} fits in {max_len} tokens (the context less the answer's length)"
        )
    lengths = np.array([len(ids) for ids in rows])
    table = np.full(
        (len(rows), int(lengths.max())), tokenizer.eos_id, dtype=stream_dtype(tokenizer.vocab_size)
    )
    for row, ids in enumerate(rows):
        table[row, : len(ids)] = ids
    return PromptSet(table, lengths, answers, skipped)
