"""The builtin corpus's post-training facts (data/builtin.py): taught facts moved out of SFT that
the benchmark never asks, for preference pairs (DPO) and for RL questions (GRPO)."""

import random
from dataclasses import dataclass

from .builtin_words import RELATIONS, Lang
from .builtin_world import (
    LANGS,
    CorpusShape,
    Fact,
    Splits,
    answer,
    ask,
    by_subject,
    expected,
    question_templates,
)

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str  # the fact as pretraining states it
    rejected: str  # the same sentence with another object of the relation
    lang: Lang


def post_training_facts(
    facts: list[Fact], splits: Splits, asked: set[str], shape: CorpusShape, rng: random.Random
) -> tuple[list[Fact], list[Fact]]:
    """(preference, RL) facts per relation, from the taught facts whose answer (`asked`, without its
    full stop) the benchmark never expects."""
    taught = splits.taught(facts)
    free = [
        f
        for f in taught
        if f not in splits.heldout_reverse and not {expected(answer(f, lang)) for lang in LANGS} & asked
    ]
    left = {group[0].subject: len(group) for group in by_subject(taught)}  # taught facts per subject
    chosen: tuple[list[Fact], list[Fact]] = ([], [])
    for relation in RELATIONS:
        group = [f for f in free if f.relation == relation]
        rng.shuffle(group)
        for taken, count in zip(chosen, (shape.preference_per_relation, shape.rl_per_relation), strict=True):
            for fact in [f for f in group if left[f.subject] > 1][:count]:
                taken.append(fact)
                group.remove(fact)
                left[fact.subject] -= 1
    return chosen


def preference_pairs(
    preference: list[Fact], facts: list[Fact], per_question: int, rng: random.Random
) -> list[PreferencePair]:
    """Every preference fact asked with each forward template in both languages; the chosen answer
    states it, each rejected one states another object of the same relation."""
    pairs = []
    for fact, lang in ((f, lang) for f in preference for lang in LANGS):
        others = sorted({f.obj for f in facts if f.relation == fact.relation} - {fact.obj})
        for template in question_templates(fact, lang, "forward"):
            for wrong in rng.sample(others, min(per_question, len(others))):
                rejected = answer(Fact(fact.relation, fact.subject, wrong), lang)
                pairs.append(PreferencePair(ask(fact, lang, template), answer(fact, lang), rejected, lang))
    return pairs


def without_facts(convs: list[Conversation], facts: list[Fact]) -> list[Conversation]:
    """The conversations with every question about `facts` (and its answer) taken out; a
    conversation left without an answer is dropped."""
    answers = {answer(f, lang) for f in facts for lang in LANGS}
    kept = []
    for conv in convs:
        about = {i for i, m in enumerate(conv) if m["role"] == "assistant" and m["content"] in answers}
        rest = [m for i, m in enumerate(conv) if i not in about and i + 1 not in about]
        if any(m["role"] == "assistant" for m in rest):
            kept.append(rest)
    return kept
