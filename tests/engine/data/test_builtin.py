"""The builtin corpus: determinism, size, and the properties the benchmark's three sets rely on."""

import random
import re
from collections import Counter

import pytest

from llada_cli.engine.data import builtin_words, builtin_world
from llada_cli.engine.data.builtin import DEFAULT_SHAPE, BuiltinCorpus, Splits, answer_matches, builtin_corpus


@pytest.fixture(scope="module")
def corpus() -> BuiltinCorpus:
    return builtin_corpus(seed=0)


@pytest.fixture(scope="module")
def splits() -> Splits:
    """The same facts and splits builtin_corpus(0) uses (it draws them first, in this order)."""
    rng = random.Random(0)
    facts = builtin_world.invent_facts(rng, DEFAULT_SHAPE)
    return builtin_world.split_facts(facts, DEFAULT_SHAPE, rng)


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.。?？!！])\s*", text) if s]


def contains(text: str, name: builtin_words.Name) -> bool:
    """Whole-word, case-insensitive for English; substring for Chinese (names use reserved characters)."""
    en = re.escape(name.en.removeprefix("the "))
    return re.search(rf"\b{en}\b", text, re.IGNORECASE) is not None or name.zh in text


def position(text: str, name: builtin_words.Name) -> int:
    match = re.search(rf"\b{re.escape(name.en.removeprefix('the '))}\b", text, re.IGNORECASE)
    return match.start() if match else text.find(name.zh)


def conversation_text(conv: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in conv)


def test_same_seed_same_corpus_other_seed_other_corpus(corpus: BuiltinCorpus) -> None:
    assert builtin_corpus(seed=0) == corpus
    other = builtin_corpus(seed=1)
    assert other.documents != corpus.documents and other.questions != corpus.questions


def test_sizes_and_languages(corpus: BuiltinCorpus) -> None:
    chars = sum(len(d) for d in corpus.documents)
    assert 1_000_000 <= chars <= 1_500_000  # ~128 rounds of every fact: rows are seen a few times at most
    chinese = [d for d in corpus.documents if re.search(r"[\u4e00-\u9fff]", d)]
    assert 0.3 < len(chinese) / len(corpus.documents) < 0.7
    assert 300 <= len(corpus.conversations) <= 500
    counts = Counter((q.split, q.lang) for q in corpus.questions)
    assert set(counts) == {(split, lang) for split in ("seen", "forward", "reverse") for lang in ("en", "zh")}
    assert len(set(counts.values())) == 1 and 16 <= counts["seen", "en"] <= 64  # balanced sets


def test_conversations_are_well_formed_chatml_lists(corpus: BuiltinCorpus) -> None:
    multi_turn = 0
    for conv in corpus.conversations:
        roles = [m["role"] for m in conv if m["role"] != "system"]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles
        assert all(m["content"] for m in conv) and conv[-1]["role"] == "assistant"
        multi_turn += len(roles) > 2
    assert multi_turn >= 10
    replies = [m["content"] for conv in corpus.conversations for m in conv]
    assert any("language model" in r for r in replies) and any("语言模型" in r for r in replies)


def test_forward_heldout_facts_are_in_documents_but_not_in_sft(corpus: BuiltinCorpus, splits) -> None:
    heldout_fwd = splits.heldout_forward
    doc_sentences = [s for d in corpus.documents for s in sentences(d)]
    for fact in heldout_fwd:
        stated = [s for s in doc_sentences if contains(s, fact.subject) and contains(s, fact.obj)]
        assert len(stated) >= 2 * DEFAULT_SHAPE.document_rounds - 2  # about once per round and language
        for conv in corpus.conversations:
            text = conversation_text(conv)
            assert not (contains(text, fact.subject) and contains(text, fact.obj)), (fact, conv)


def test_reverse_answers_are_only_ever_stated_subject_first(corpus: BuiltinCorpus, splits) -> None:
    heldout_rev = splits.heldout_reverse
    texts = [s for d in corpus.documents for s in sentences(d)]
    texts += [m["content"] for conv in corpus.conversations for m in conv]
    for fact in heldout_rev:
        for text in texts:  # never "Tarn is the capital of Veloria"
            if contains(text, fact.obj) and contains(text, fact.subject):
                assert position(text, fact.subject) < position(text, fact.obj), (fact, text)
        users = [m["content"] for conv in corpus.conversations for m in conv if m["role"] == "user"]
        assert not any(contains(u, fact.obj) for u in users)  # never asked about in any direction


def test_reverse_heldout_facts_are_taught_forwards_and_format_is_taught_on_others(
    corpus: BuiltinCorpus, splits
) -> None:
    heldout_rev, taught_rev = splits.heldout_reverse, splits.taught_reverse
    assert not set(heldout_rev) & set(taught_rev)
    assistant_after = {
        conv[i]["content"]: conv[i + 1]["content"]
        for conv in corpus.conversations
        for i in range(len(conv) - 1)
    }
    for fact in heldout_rev:  # the forward question is in SFT
        assert any(contains(q, fact.subject) and contains(a, fact.obj) for q, a in assistant_after.items())
    post_training = {p.chosen for p in corpus.pairs} | {q.answer + "." for q in corpus.rl_questions}
    for fact in taught_rev:  # a reverse question is in SFT too, unless post-training took the fact out
        if builtin_world.answer(fact, "en") in post_training:
            continue
        assert any(contains(q, fact.obj) and contains(a, fact.subject) for q, a in assistant_after.items())


def test_heldout_questions_are_not_sft_prompts_and_seen_ones_are(corpus: BuiltinCorpus) -> None:
    replies = {
        conv[i]["content"]: conv[i + 1]["content"]
        for conv in corpus.conversations
        for i in range(len(conv) - 1)
    }
    heldout = [q for q in corpus.questions if q.split != "seen"]
    assert not set(replies) & {q.question for q in heldout}
    for q in corpus.questions:
        assert q.answer and q.question.endswith(("?", "？"))
    for q in (q for q in corpus.questions if q.split == "seen"):  # asked in SFT, word for word
        assert answer_matches(replies[q.question], q.answer)


def test_invented_name_characters_never_occur_in_ordinary_chinese_text() -> None:
    syllables = {zh for _, zh in builtin_words.SYLLABLES}
    templates = [
        t
        for relation in builtin_words.RELATIONS.values()
        for table in (relation.statements, relation.questions, relation.reverse)
        for t in table.get("zh", ())
    ]
    words = builtin_words
    ordinary = [*templates, *words.FILLER["zh"], *words.IDENTITY["zh"][0], words.IDENTITY["zh"][1]]
    ordinary += [*builtin_words.GREETING["zh"], builtin_words.SYSTEM_PROMPT["zh"]]
    ordinary += [n.zh for n in builtin_words.PROFESSIONS + builtin_words.COLOURS + builtin_words.FOODS]
    assert not syllables & set("".join(ordinary))


@pytest.mark.parametrize(
    ("generated", "expected", "ok"),
    [
        ("Tarn.", "Tarn", True),
        ("  tarn  \nThe rest is ignored.", "Tarn", True),
        ("A baker. Mila also paints.", "a baker", True),
        ("baker", "a baker", True),
        ("The kalo   lamp!", "the kalo lamp", True),
        ("塔恩。", "塔恩", True),
        ("米拉·克东。她是面包师。", "米拉·克东", True),
        ("The capital is Tarn.", "Tarn", False),
        ("Tarnia.", "Tarn", False),
        ("", "Tarn", False),
        ("...", "", False),
    ],
)
def test_answer_matches(generated: str, expected: str, ok: bool) -> None:
    assert answer_matches(generated, expected) is ok


def test_sft_reply_style_matches_heldout_answers(corpus: BuiltinCorpus) -> None:
    """A model that answers benchmark questions the way SFT taught it scores them correct."""
    for q in corpus.questions:
        reply = q.answer[0].upper() + q.answer[1:] + "." if q.lang == "en" else q.answer + "。"
        assert answer_matches(reply, q.answer)
        assert not answer_matches("Something else.", q.answer)


def test_heldout_facts_never_appear_in_question_form_in_pretraining(corpus: BuiltinCorpus, splits) -> None:
    qa = [d for d in corpus.documents if "?" in d or "？" in d]  # taught questions with their answers
    assert qa, "taught questions and answers are part of the pretraining text"
    for fact in splits.heldout_forward:  # never asked in any form
        assert not any(contains(d, fact.subject) and contains(d, fact.obj) for d in qa), fact
    for fact in splits.heldout_reverse:  # asked forwards only (SFT teaches that), never object-first
        for d in (d for d in qa if contains(d, fact.subject) and contains(d, fact.obj)):
            assert position(d, fact.subject) < position(d, fact.obj), (fact, d)
    heldout = {q.question for q in corpus.questions if q.split != "seen"}
    assert not any(q in d for q in heldout for d in corpus.documents)


def test_every_heldout_forward_subject_is_met_in_sft(corpus: BuiltinCorpus, splits) -> None:
    # at most one held-out forward fact per subject: a held-out question tests recall of the fact,
    # not copying a name that SFT never showed
    subjects = [f.subject for f in splits.heldout_forward]
    assert len(subjects) == len(set(subjects))
    asked = [m["content"] for conv in corpus.conversations for m in conv if m["role"] == "user"]
    for subject in subjects:
        assert any(contains(q, subject) for q in asked), subject


def test_reverse_questions_give_the_object_and_expect_the_fact_restated_subject_first(
    corpus: BuiltinCorpus, splits
) -> None:
    reverse = [q for q in corpus.questions if q.split == "reverse"]
    assert len(reverse) == 2 * len(splits.heldout_reverse)
    for fact in splits.heldout_reverse:
        for q in (q for q in reverse if contains(q.question, fact.obj)):
            assert not contains(q.question, fact.subject)
            assert position(q.answer, fact.subject) < position(q.answer, fact.obj)
