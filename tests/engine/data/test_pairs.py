"""Preference pairs and the builtin corpus's post-training facts (data/pairs.py, data/builtin_post.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from llada_cli.engine.data.builtin import builtin_corpus
from llada_cli.engine.data.pairs import iter_pairs, pair_tables
from llada_cli.engine.errors import UsageError
from llada_cli.engine.model.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def corpus():
    return builtin_corpus(seed=0)


def subject_and_object(sentence: str) -> str:
    return sentence.rstrip(".。")


def test_preference_and_rl_facts_are_in_pretraining_and_nowhere_else(corpus):
    chosen = {p.chosen for p in corpus.pairs}
    rl = {q.answer for q in corpus.rl_questions}
    # up to 2 facts a relation (a subject keeps a taught fact, the benchmark's are left alone)
    assert len(chosen) == 24 and len(rl) == 20  # facts x 2 languages
    assert len(corpus.pairs) == 96  # x 2 question templates x 2 wrong objects
    sft_answers = {m["content"] for conv in corpus.conversations for m in conv if m["role"] == "assistant"}
    benchmark = {q.answer for q in corpus.questions}
    text = "\n".join(corpus.documents)
    for answer in chosen | {a + ("." if a.isascii() else "。") for a in rl}:
        assert answer not in sft_answers
        assert subject_and_object(answer) not in benchmark
        assert subject_and_object(answer) in text  # pretraining states it
    assert not {subject_and_object(a) for a in chosen} & rl  # no RL fact has a pair


def test_the_benchmark_keeps_its_sixteen_questions_per_set_and_language(corpus):
    for split in ("seen", "forward", "reverse"):
        for lang in ("en", "zh"):
            assert sum(q.split == split and q.lang == lang for q in corpus.questions) == 16


def test_a_rejected_answer_is_the_same_sentence_with_another_object(corpus):
    for pair in corpus.pairs:
        assert pair.chosen != pair.rejected
        # the subject and template start both ("The capital of Kalonia is ..."), the objects differ
        assert len(os.path.commonprefix([pair.chosen, pair.rejected])) >= 4
        assert pair.chosen[-1] == pair.rejected[-1] and "?" not in pair.rejected
    per_prompt = {}
    for pair in corpus.pairs:
        per_prompt.setdefault(pair.prompt, set()).add(pair.rejected)
    assert all(len(rejected) == 2 for rejected in per_prompt.values())


def write_pairs(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "Hi", "chosen": "Hello", "rejected": ""}, "non-empty strings under chosen and rejected"),
        ({"chosen": "a", "rejected": "b"}, "either prompt (a string) or messages"),
        ({"prompt": "Hi", "messages": [], "chosen": "a", "rejected": "b"}, "either prompt"),
        (
            {"messages": [{"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"},
            "ending with",
        ),
        ({"messages": [{"role": "user"}], "chosen": "a", "rejected": "b"}, "messages must be a list"),
    ],
)
def test_a_bad_row_is_refused_with_its_line(tmp_path, row, message):
    source = write_pairs(tmp_path / "pairs.jsonl", [{"prompt": "Q", "chosen": "a", "rejected": "b"}, row])
    with pytest.raises(UsageError, match=f"line 2: .*{re.escape(message)}"):
        list(iter_pairs(source))


def test_pair_rows_share_the_prompt_and_differ_in_the_answer(tmp_path):
    tokenizer = Tokenizer.train(["Hi there. Hello friend. Goodbye now."], vocab_size=300)
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    source = write_pairs(
        tmp_path / "pairs.jsonl",
        [
            {"messages": messages, "chosen": "Hello friend", "rejected": "Goodbye"},
            {"prompt": "Hi " * 200, "chosen": "Hello", "rejected": "Goodbye"},  # too long: skipped
        ],
    )
    tables, skipped = pair_tables(source, tokenizer, max_len=48)
    c_ids, c_resp, c_pad, r_ids, r_resp, r_pad = tables
    assert skipped == 1 and len(c_ids) == len(r_ids) == 1
    start = int(c_resp[0].argmax())
    assert start == int(r_resp[0].argmax()) and (c_ids[0, :start] == r_ids[0, :start]).all()
    assert tokenizer.decode(c_ids[0, c_resp[0]].tolist()).startswith("Hello friend")
    assert tokenizer.decode(r_ids[0, r_resp[0]].tolist()).startswith("Goodbye")
    assert not (c_resp & c_pad).any() and c_pad[0, -1]
