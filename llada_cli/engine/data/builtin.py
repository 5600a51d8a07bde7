"""The offline demo corpus and benchmark: an invented bilingual world small enough for a laptop CPU.

A seeded generator invents countries, people and creatures whose names exist in English and
in Chinese (built from syllables with a fixed transliteration). Every fact is one
(subject, relation, object) triple. Pretraining documents state each fact many times, always
subject first ("The capital of Veloria is Tarn."), in varied phrasings and orders. SFT
conversations teach the question format on the taught facts. Three question sets measure:
- seen: facts asked in SFT, with SFT's own wording (memorisation);
- forward: facts that are in the documents but never asked about in SFT (retrieval);
- reverse: "Tarn is the capital of which country?" for facts only ever stated subject first
  (the reversal curse). SFT asks the *other* facts of these relations in reverse too, so the
  question format is known; the held-out ones are taught forwards only.
"""

import functools
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .builtin_words import (
    COLOURS,
    COUNTRY_SUFFIXES,
    CREATURE_SUFFIX,
    ENDINGS,
    FILLER,
    FOODS,
    GREETING,
    IDENTITY,
    INVENTIONS,
    NO_SUFFIX,
    PROFESSIONS,
    RELATIONS,
    SYLLABLES,
    SYSTEM_PROMPT,
    Affixes,
    Lang,
    Name,
)

Direction = Literal["forward", "reverse"]
QuestionSet = Literal["seen", "forward", "reverse"]
QUESTION_SETS: tuple[QuestionSet, ...] = ("seen", "forward", "reverse")
LANGS: tuple[Lang, ...] = ("en", "zh")


@dataclass(frozen=True)
class BenchmarkQuestion:
    question: str
    answer: str
    split: QuestionSet
    lang: Lang


@dataclass(frozen=True)
class BuiltinCorpus:
    documents: list[str]
    conversations: list[list[dict[str, str]]]
    questions: list[BenchmarkQuestion]


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


DEFAULT_SHAPE = CorpusShape()


@dataclass(frozen=True)
class Fact:
    relation: str
    subject: Name
    obj: Name


# ------------------------------------------------------------------------------------ the world


def english_words(*texts: str) -> set[str]:
    """Lower-case words of `texts`, template placeholders ({s}, {o}) left out."""
    return set(re.findall(r"[a-z]+", re.sub(r"{\w+}", "", " ".join(texts)).lower()))


def english_templates() -> list[str]:
    tables = [table for r in RELATIONS.values() for table in (r.statements, r.questions, r.reverse)]
    return [template for table in tables for template in table.get("en", ())]


# An invented name must not be an ordinary word of the corpus ("River" would be a bad capital).
RESERVED_WORDS = english_words(*FILLER["en"], *english_templates(), *IDENTITY["en"][0], IDENTITY["en"][1])


def name_key(name: Name) -> tuple[str, str]:
    return name.en.lower().removeprefix("the "), name.zh


def overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return any(x in y or y in x for x, y in zip(a, b, strict=True))


class NameMaker:
    """Invents names that never overlap each other in either script, so every check is exact."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.taken: list[tuple[str, str]] = []

    def word(self, ending: bool = True) -> Name:
        (en1, zh1), (en2, zh2) = self.rng.sample(SYLLABLES, 2)
        en_end, zh_end = self.rng.choice(ENDINGS) if ending else ("", "")
        return Name((en1 + en2 + en_end).capitalize(), zh1 + zh2 + zh_end)

    def unique(self, draw: Callable[[], tuple[Name, ...]]) -> Name:
        """Draw (full name, *parts) until none overlaps a taken name or each other; keep them all."""
        while True:
            names = draw()
            keys = [name_key(n) for n in names]
            parts = keys[1:]
            if (
                all(not overlap(k, t) for k in keys for t in self.taken)
                and all(not overlap(a, b) for i, a in enumerate(parts) for b in parts[i + 1 :])
                and not english_words(keys[0][0]) & RESERVED_WORDS
            ):
                self.taken += keys
                return names[0]

    def compound(self, suffixes: Affixes, ending: bool = True, article: bool = False) -> tuple[Name]:
        """A word plus a suffix from `suffixes` ("Kalo" + "ria"); `article` makes it "the kalo lamp"."""
        stem, (en, zh) = self.word(ending), self.rng.choice(suffixes)
        name = f"the {stem.en.lower()}{en}" if article else stem.en + en
        return (Name(name, stem.zh + zh),)

    def person(self) -> tuple[Name, Name, Name]:
        """The full name and its two parts, which must not overlap other names either."""
        first, last = self.word(), self.word()
        return Name(f"{first.en} {last.en}", f"{first.zh}·{last.zh}"), first, last


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


Conversation = list[dict[str, str]]


def conversations(
    facts: list[Fact], splits: Splits, rng: random.Random
) -> tuple[list[Conversation], list[tuple[Lang, Conversation]]]:
    """All SFT conversations (shuffled) and the single-turn questions about taught facts (forward first)."""
    taught = splits.taught(facts)
    forward: list[tuple[Lang, Conversation]] = []
    for fact, lang in ((f, lang) for f in taught for lang in LANGS):
        templates = rng.sample(question_templates(fact, lang, "forward"), rng.randint(1, 2))
        forward += [(lang, taught_turn(fact, lang, t)) for t in templates]
    reverse = [
        (lang, taught_turn(fact, lang, t))
        for fact, lang in ((f, lang) for f in splits.taught_reverse for lang in LANGS)
        for t in question_templates(fact, lang, "reverse")
    ]
    convs = forward + reverse
    convs += multi_turn(taught, rng)
    for lang in LANGS:
        questions, reply = IDENTITY[lang]
        convs += [(lang, turn(q, reply)) for q in questions] + [(lang, turn(*GREETING[lang]))]
    for lang, conv in rng.sample(convs, len(convs) // 8):  # a few carry a system prompt, as in MiniMind
        conv.insert(0, {"role": "system", "content": SYSTEM_PROMPT[lang]})
    rng.shuffle(convs)
    return [conv for _, conv in convs], forward + reverse


def multi_turn(taught: list[Fact], rng: random.Random) -> list[tuple[Lang, Conversation]]:
    """Several questions about one subject in one conversation (every answer is a response)."""
    convs = []
    for group in (g for g in by_subject(taught) if len(g) >= 2):
        lang = rng.choice(LANGS)
        conv = []
        for fact in rng.sample(group, len(group)):
            conv += taught_turn(fact, lang, rng.choice(question_templates(fact, lang, "forward")))
        convs.append((lang, conv))
    return convs


def question_and_answer(conv: Conversation) -> tuple[str, str]:
    """The user question and assistant reply of a single-turn conversation (system prompt left out)."""
    user, reply = (m["content"] for m in conv if m["role"] != "system")
    return user, reply


def seen_questions(
    taught: list[tuple[Lang, Conversation]], per_lang: int, rng: random.Random
) -> list[BenchmarkQuestion]:
    """SFT's own single-turn questions, asked again word for word."""
    questions = []
    for lang in LANGS:
        pool = [conv for conv_lang, conv in taught if conv_lang == lang]
        for conv in rng.sample(pool, min(per_lang, len(pool))):
            user, reply = question_and_answer(conv)
            questions.append(BenchmarkQuestion(user, reply.rstrip(".。"), "seen", lang))
    return questions


def qa_documents(taught: list[tuple[Lang, Conversation]], rounds: int) -> list[str]:
    """Taught questions with their answers as plain text ("mixed training": the model meets the
    question format while it stores the facts). Held-out facts never appear in question form."""
    return [" ".join(question_and_answer(conv)) for _ in range(rounds) for _, conv in taught]


def heldout_questions(splits: Splits, rng: random.Random) -> list[BenchmarkQuestion]:
    """Every held-out fact asked in both languages, in its held-out direction."""
    asked: list[tuple[Fact, Direction]] = [(f, "forward") for f in splits.heldout_forward]
    asked += [(f, "reverse") for f in splits.heldout_reverse]
    questions = []
    for (fact, direction), lang in ((pair, lang) for pair in asked for lang in LANGS):
        question = ask(fact, lang, rng.choice(question_templates(fact, lang, direction)))
        questions.append(BenchmarkQuestion(question, answer(fact, lang).rstrip(".。"), direction, lang))
    return questions


@functools.cache  # a command asks for it several times (text, fingerprint, conversations, questions)
def builtin_corpus(seed: int = 0, shape: CorpusShape = DEFAULT_SHAPE) -> BuiltinCorpus:
    """The whole corpus; the same seed and shape always give the same corpus (treat it as read-only)."""
    rng = random.Random(seed)
    facts = invent_facts(rng, shape)
    splits = split_facts(facts, shape, rng)
    convs, taught = conversations(facts, splits, rng)
    docs = documents(facts, shape.document_rounds, rng) + qa_documents(taught, shape.qa_rounds)
    rng.shuffle(docs)
    return BuiltinCorpus(
        documents=docs,
        conversations=convs,
        questions=seen_questions(taught, shape.seen_per_lang, rng) + heldout_questions(splits, rng),
    )


# ------------------------------------------------------------------------------------ scoring

SENTENCE_END = re.compile(r"[.!?。！？]")
ARTICLE = re.compile(r"^(a|an|the) ")


def normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed, a leading English article dropped."""
    kept = "".join(c for c in text.lower() if not unicodedata.category(c).startswith("P"))
    return ARTICLE.sub("", " ".join(kept.split()))


def answer_matches(generated: str, expected: str) -> bool:
    """Exact match of the generated answer's first sentence of its first line, normalised."""
    lines = generated.strip().splitlines()
    first = SENTENCE_END.split(lines[0])[0] if lines else ""
    return normalise(expected) != "" and normalise(first) == normalise(expected)
