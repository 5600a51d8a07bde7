"""The builtin world (data/builtin.py): invented facts, how documents and answers state them, and
which facts SFT teaches and which the benchmark holds out."""

import random
from dataclasses import dataclass
from typing import Literal

from .builtin_names import NameMaker
from .builtin_words import (
    COLOURS,
    COUNTRY_SUFFIXES,
    CREATURE_SUFFIX,
    FILLER,
    FOODS,
    INVENTIONS,
    NO_SUFFIX,
    PROFESSIONS,
    RELATIONS,
    Lang,
    Name,
)

Direction = Literal["forward", "reverse"]
LANGS: tuple[Lang, ...] = ("en", "zh")


@dataclass(frozen=True)
class CorpusShape:
    """How big the invented world is and how often its facts are stated."""

    countries: int = 18
    people: int = 20
    creatures: int = 10
    # Every fact is stated this many times per language, in fresh phrasings and orders: so many that
    # a training run sees each packed row only a few times and must learn facts, not rows.
    document_rounds: int = 128
    # Facts of each relation held out of SFT: asked forward / asked in reverse by the benchmark.
    heldout_forward: tuple[tuple[str, int], ...] = (
        ("capital", 4), ("flag", 2), ("invention", 2), ("profession", 2), ("home", 2), ("colour", 2),
        ("food", 2),
    )  # fmt: skip
    heldout_reverse: tuple[tuple[str, int], ...] = (("capital", 8), ("invention", 8))
    seen_per_lang: int = 16  # SFT questions the benchmark asks again
    # Times the taught questions and answers also appear as plain pretraining text ("mixed
    # training": facts are stored where questions can reach them).
    qa_rounds: int = 8
    # Taught facts per relation moved out of SFT for post-training: preference pairs (DPO), then RL
    # prompts (GRPO). Never a fact the benchmark asks, nor a subject's last taught fact.
    preference_per_relation: int = 2
    rl_per_relation: int = 2
    rejected_per_question: int = 2  # wrong objects paired with each preference question


DEFAULT_SHAPE = CorpusShape()


@dataclass(frozen=True)
class Fact:
    relation: str
    subject: Name
    obj: Name


# ------------------------------------------------------------------------------------ the world


def invent_facts(rng: random.Random, shape: CorpusShape) -> list[Fact]:
    names = NameMaker(rng)
    facts = []
    for _ in range(shape.countries):
        country = names.unique(lambda: names.compound(COUNTRY_SUFFIXES, ending=False))
        facts.append(Fact("capital", country, names.unique(lambda: names.compound(NO_SUFFIX))))
        facts.append(Fact("flag", country, rng.choice(COLOURS)))
    capitals = [f.obj for f in facts if f.relation == "capital"]
    for _ in range(shape.people):
        who = names.unique(names.person)
        facts.append(Fact("invention", who, names.unique(lambda: names.compound(INVENTIONS, article=True))))
        facts.append(Fact("profession", who, rng.choice(PROFESSIONS)))
        facts.append(Fact("home", who, rng.choice(capitals)))
    for _ in range(shape.creatures):
        beast = names.unique(lambda: names.compound(CREATURE_SUFFIX, article=True))
        facts.append(Fact("colour", beast, rng.choice(COLOURS)))
        facts.append(Fact("food", beast, rng.choice(FOODS)))
    return facts


# ------------------------------------------------------------------------------------ rendering


def sentence(lang: Lang, text: str) -> str:
    """Capitalise English sentences that start with a lower-case name ("the dorka ...")."""
    return text[0].upper() + text[1:] if lang == "en" else text


def fill(template: str, fact: Fact, lang: Lang) -> str:
    obj = fact.obj.text(lang)
    return template.format(s=fact.subject.text(lang), o=obj, o_bare=obj.removeprefix("the "))


def answer(fact: Fact, lang: Lang) -> str:
    """The reply to any question about `fact`, forward or reverse: its first statement, subject first.

    Restating the fact makes the answer the same sentence pretraining taught, so answering is
    retrieval: forward, the subject is copied from the question and the object recalled after it;
    in reverse the subject must be recalled from the object, which an AR model never saw in that
    order (the reversal curse) and a masked diffusion model did, as a fill-in of the same sentence.
    """
    return sentence(lang, fill(RELATIONS[fact.relation].statements[lang][0], fact, lang))


def expected(reply: str) -> str:
    """What the benchmark matches a generated answer against: the reply without its full stop."""
    return reply.rstrip(".。")


def document(facts: list[Fact], lang: Lang, rng: random.Random) -> str:
    """One paragraph: the facts of one entity in random order and phrasing, plus some filler."""
    sentences = [
        sentence(lang, fill(rng.choice(RELATIONS[f.relation].statements[lang]), f, lang))
        for f in rng.sample(facts, len(facts))
    ]
    for filler in rng.sample(FILLER[lang], rng.randint(1, 2)):
        sentences.insert(rng.randint(0, len(sentences)), filler)
    return (" " if lang == "en" else "").join(sentences)


def by_subject(facts: list[Fact]) -> list[list[Fact]]:
    groups: dict[Name, list[Fact]] = {}
    for fact in facts:
        groups.setdefault(fact.subject, []).append(fact)
    return list(groups.values())


def documents(facts: list[Fact], rounds: int, rng: random.Random) -> list[str]:
    groups = by_subject(facts)
    return [document(group, lang, rng) for _ in range(rounds) for group in groups for lang in LANGS]


def question_templates(fact: Fact, lang: Lang, direction: Direction) -> tuple[str, ...]:
    relation = RELATIONS[fact.relation]
    return (relation.questions if direction == "forward" else relation.reverse)[lang]


def ask(fact: Fact, lang: Lang, template: str) -> str:
    return sentence(lang, fill(template, fact, lang))


def turn(question: str, reply: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]


def taught_turn(fact: Fact, lang: Lang, template: str) -> list[dict[str, str]]:
    return turn(ask(fact, lang, template), answer(fact, lang))


# ------------------------------------------------------------------------------------ the splits


@dataclass(frozen=True)
class Splits:
    heldout_forward: list[Fact]  # in the documents, never in SFT
    heldout_reverse: list[Fact]  # taught forwards in SFT, asked in reverse by the benchmark
    taught_reverse: list[Fact]  # asked both ways in SFT: teaches the reverse question format

    def taught(self, facts: list[Fact]) -> list[Fact]:
        return [f for f in facts if f not in self.heldout_forward]


def split_facts(facts: list[Fact], shape: CorpusShape, rng: random.Random) -> Splits:
    """Per relation: the first facts are held out forward, the next in reverse, the rest taught.

    Every taught fact of a reversible relation (capital, invention) is also asked in reverse in
    SFT, except the held-out reverse ones: their reverse question tests reversal alone, not
    missing knowledge or an unknown question format.
    """
    forward, reverse = dict(shape.heldout_forward), dict(shape.heldout_reverse)
    heldout_fwd: list[Fact] = []
    heldout_rev: list[Fact] = []
    taught_rev: list[Fact] = []
    for relation in RELATIONS:
        group = [f for f in facts if f.relation == relation]
        rng.shuffle(group)
        # At most one held-out forward fact per subject, so every subject is still met in SFT: a
        # held-out question then tests recall of the fact, not copying a name SFT never showed.
        taken = {f.subject for f in heldout_fwd}
        fresh = [f for f in group if f.subject not in taken][: forward.get(relation, 0)]
        rest = [f for f in group if f not in fresh]
        n_rev = reverse.get(relation, 0)
        heldout_fwd += fresh
        heldout_rev += rest[:n_rev]
        if RELATIONS[relation].reverse:
            taught_rev += rest[n_rev:]
    return Splits(heldout_fwd, heldout_rev, taught_rev)
