"""GRPO's prompts with their answers (data/prompts.py): the builtin RL questions, a .jsonl file,
its refusals, and prompts too long for the room left after the answer."""

from __future__ import annotations

import json
import re

import pytest

from llada_cli.engine.data.builtin import builtin_corpus
from llada_cli.engine.data.prompts import iter_prompts, prompt_set
from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.tokenizer import Tokenizer


def test_the_builtin_prompts_are_the_rl_questions_with_their_answers():
    prompts = list(iter_prompts("builtin"))
    questions = builtin_corpus().rl_questions
    assert len(prompts) == len(questions) == 40
    assert prompts[0] == ([{"role": "user", "content": questions[0].question}], questions[0].answer)


def write(tmp_path, rows) -> str:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "Hi"}, "expected a non-empty string under answer"),
        ({"prompt": "Hi", "answer": " "}, "expected a non-empty string under answer"),
        ({"prompt": "Hi", "messages": [], "answer": "x"}, "either prompt (a string) or messages"),
        ({"messages": [{"role": "assistant", "content": "x"}], "answer": "x"}, "ending with the user's"),
    ],
)
def test_a_bad_row_is_refused_with_its_line(tmp_path, row, message):
    source = write(tmp_path, [{"prompt": "Hi", "answer": "Hello"}, row])
    with pytest.raises(UsageError, match=f"line 2: .*{re.escape(message)}"):
        list(iter_prompts(source))


def test_only_jsonl_files_are_read(tmp_path):
    with pytest.raises(UsageError, match="from a .jsonl file"):
        list(iter_prompts(str(tmp_path / "prompts.txt")))


def test_prompts_are_chat_templated_and_the_long_ones_skipped(tmp_path):
    tokenizer = Tokenizer.train(["Hi there. Hello friend. Goodbye now."], vocab_size=300)
    rows = [
        {"prompt": "Hi", "answer": "Hello"},
        {
            "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}],
            "answer": "Hi",
        },
        {"prompt": "Hi there " * 40, "answer": "Goodbye"},
    ]
    prompts = prompt_set(write(tmp_path, rows), tokenizer, max_len=40)
    assert prompts.answers == ["Hello", "Hi"] and prompts.skipped == 1
    first = prompts.ids[0, : prompts.lengths[0]].tolist()
    text = tokenizer.chat_text([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    assert first == tokenizer.encode(text)  # as `sample --chat` encodes it
    assert (prompts.ids[0, prompts.lengths[0] :] == tokenizer.eos_id).all()
    with pytest.raises(UsageError, match="no prompt of .* fits in 5 tokens"):
        prompt_set(write(tmp_path, rows), tokenizer, max_len=5)
