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
from dataclasses import dataclass
from typing import Literal

from .builtin_post import Conversation, PreferencePair, post_training_facts, preference_pairs, without_facts
from .builtin_words import GREETING, IDENTITY, SYSTEM_PROMPT, Lang
from .builtin_world import (
    DEFAULT_SHAPE,
    LANGS,
    CorpusShape,
    Direction,
    Fact,
    Splits,
    answer,
    ask,
    by_subject,
    documents,
    expected,
    invent_facts,
    question_templates,
    split_facts,
    taught_turn,
    turn,
)

QuestionSet = Literal["seen", "forward", "reverse"]
QUESTION_SETS: tuple[QuestionSet, ...] = ("seen", "forward", "reverse")


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
    pairs: list[PreferencePair]  # preference facts: in the documents, in no SFT row or question set
    rl_questions: list[BenchmarkQuestion]  # RL facts (split "forward"): likewise, and in no pair


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
            questions.append(BenchmarkQuestion(user, expected(reply), "seen", lang))
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
        questions.append(BenchmarkQuestion(question, expected(answer(fact, lang)), direction, lang))
    return questions


@functools.cache  # a command asks for it several times (text, fingerprint, conversations, questions)
def builtin_corpus(seed: int = 0, shape: CorpusShape = DEFAULT_SHAPE) -> BuiltinCorpus:
    """The whole corpus; the same seed and shape always give the same corpus (treat it as read-only).

    The post-training facts are chosen last, with their own generator, and taken out of SFT
    afterwards: every other draw, and the pretraining text, is what it was without them (their
    questions stay in its question-and-answer documents, as pretraining text)."""
    rng = random.Random(seed)
    facts = invent_facts(rng, shape)
    splits = split_facts(facts, shape, rng)
    convs, taught = conversations(facts, splits, rng)
    docs = documents(facts, shape.document_rounds, rng) + qa_documents(taught, shape.qa_rounds)
    rng.shuffle(docs)
    seen = seen_questions(taught, shape.seen_per_lang, rng)
    heldout = heldout_questions(splits, rng)
    post = random.Random(f"post-training {seed}")
    preference, rl = post_training_facts(facts, splits, {q.answer for q in seen}, shape, post)
    rl_questions = [
        BenchmarkQuestion(ask(f, lang, template), expected(answer(f, lang)), "forward", lang)
        for f in rl
        for lang in LANGS
        for template in question_templates(f, lang, "forward")
    ]
    return BuiltinCorpus(
        documents=docs,
        conversations=without_facts(convs, preference + rl),
        questions=seen + heldout,
        pairs=preference_pairs(preference, facts, shape.rejected_per_question, post),
        rl_questions=rl_questions,
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
