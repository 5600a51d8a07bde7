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
from dataclasses import dataclass, field
from typing import Literal

Lang = Literal["en", "zh"]
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
class Name:
    en: str
    zh: str

    def text(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True)
class Relation:
    """Templates with {s} (subject) and {o} (object); `reverse` is empty when objects repeat."""

    statements: dict[str, tuple[str, ...]]
    questions: dict[str, tuple[str, ...]]
    reverse: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Fact:
    relation: str
    subject: Name
    obj: Name


# ------------------------------------------------------------------------------------ vocabulary
# fmt: off
# Each syllable has one Chinese character used nowhere else in the corpus, so a name is never a
# substring of an ordinary word (a test checks the templates and filler for these characters).
SYLLABLES = list(zip(
    ("ka", "lo", "mi", "ve", "ta", "su", "ni", "di", "ba", "fe", "go", "ri", "la", "mo", "ze", "pa",
     "ti", "no", "sa", "ko", "lu", "be", "da", "so", "ma", "na", "vo", "ru", "zu", "po", "ge", "re"),
    "卡洛米维塔苏妮迪巴菲戈瑞拉莫泽帕蒂诺萨柯卢贝黛索玛娜沃鲁祖珀葛蕾",
    strict=True,
))
Affixes = tuple[tuple[str, str], ...]  # (English, Chinese) pairs
ENDINGS: Affixes = (("", ""), ("n", "恩"), ("r", "尔"))
NO_SUFFIX: Affixes = (("", ""),)
COUNTRY_SUFFIXES: Affixes = (("ria", "利亚"), ("nia", "尼亚"))
INVENTIONS: Affixes = ((" lamp", "灯"), (" wheel", "轮"), (" lens", "镜"), (" engine", "机"))
CREATURE_SUFFIX: Affixes = (("", "兽"),)

PROFESSIONS = [Name(en, zh) for en, zh in (
    ("a baker", "面包师"), ("a sailor", "水手"), ("a doctor", "医生"), ("a painter", "画家"),
    ("a teacher", "教师"), ("a farmer", "农民"), ("a potter", "陶工"), ("an astronomer", "天文学家"),
    ("a musician", "音乐家"), ("a carpenter", "木匠"),
)]
COLOURS = [Name(en, zh) for en, zh in (
    ("blue", "蓝色"), ("red", "红色"), ("green", "绿色"), ("yellow", "黄色"), ("purple", "紫色"),
    ("white", "白色"), ("black", "黑色"), ("orange", "橙色"),
)]
FOODS = [Name(en, zh) for en, zh in (
    ("berries", "浆果"), ("fish", "鱼"), ("seeds", "种子"), ("mushrooms", "蘑菇"), ("honey", "蜂蜜"),
    ("leaves", "树叶"), ("insects", "昆虫"), ("roots", "树根"),
)]

RELATIONS = {
    "capital": Relation(
        statements={
            "en": ("The capital of {s} is {o}.", "{s} has its capital at {o}.",
                   "{s} is governed from its capital, {o}.", "In {s}, the capital city is {o}."),
            "zh": ("{s}的首都是{o}。", "{s}的首都叫{o}。", "{s}把首都设在{o}。"),
        },
        questions={"en": ("What is the capital of {s}?", "Which city is the capital of {s}?"),
                   "zh": ("{s}的首都是哪座城市？", "{s}的首都叫什么？")},
        reverse={"en": ("{o} is the capital of which country?",),
                 "zh": ("{o}是哪个国家的首都？",)},
    ),
    "flag": Relation(
        statements={
            "en": ("The flag of {s} is {o}.", "{s} flies a {o} flag.", "The people of {s} raise a {o} flag."),
            "zh": ("{s}的国旗是{o}的。", "{s}挂着{o}的国旗。", "{s}人升起{o}的国旗。"),
        },
        questions={"en": ("What colour is the flag of {s}?", "Which colour is the flag of {s}?"),
                   "zh": ("{s}的国旗是什么颜色？", "{s}的国旗是哪种颜色？")},
    ),
    "invention": Relation(
        statements={
            "en": ("{s} invented {o}.", "{s} is the inventor of {o}.", "{s} built the first {o_bare}."),
            "zh": ("{s}发明了{o}。", "{s}是{o}的发明者。", "{s}造出了第一台{o}。"),
        },
        questions={"en": ("What did {s} invent?", "What is {s} known for inventing?"),
                   "zh": ("{s}发明了什么？", "{s}的发明是什么？")},
        reverse={"en": ("Who invented {o}?",), "zh": ("谁发明了{o}？",)},
    ),
    "profession": Relation(
        statements={
            "en": ("{s} works as {o}.", "{s} is {o} by trade.", "{s} earns a living as {o}."),
            "zh": ("{s}是一名{o}。", "{s}的职业是{o}。", "{s}以{o}为业。"),
        },
        questions={"en": ("What does {s} do for a living?", "What is the job of {s}?"),
                   "zh": ("{s}是做什么工作的？", "{s}的职业是什么？")},
    ),
    "home": Relation(
        statements={
            "en": ("{s} lives in {o}.", "{s} makes a home in {o}.", "{s} has a house in {o}."),
            "zh": ("{s}住在{o}。", "{s}的家在{o}。", "{s}在{o}安了家。"),
        },
        questions={"en": ("Where does {s} live?", "In which city does {s} live?"),
                   "zh": ("{s}住在哪座城市？", "{s}的家在哪座城市？")},
    ),
    "colour": Relation(
        statements={
            "en": ("{s} has {o} fur.", "{s} is {o} all over.", "The fur of {s} is {o}."),
            "zh": ("{s}的毛是{o}的。", "{s}全身都是{o}。", "{s}长着{o}的毛。"),
        },
        questions={"en": ("What colour is {s}?", "What colour is the fur of {s}?"),
                   "zh": ("{s}是什么颜色的？", "{s}的毛是什么颜色？")},
    ),
    "food": Relation(
        statements={
            "en": ("{s} eats {o}.", "{s} feeds mostly on {o}.", "The favourite food of {s} is {o}."),
            "zh": ("{s}吃{o}。", "{s}主要以{o}为食。", "{s}最爱吃的是{o}。"),
        },
        questions={"en": ("What does {s} eat?", "What is the favourite food of {s}?"),
                   "zh": ("{s}吃什么？", "{s}最爱吃什么？")},
    ),
}

FILLER = {
    "en": (
        "The morning was quiet and cool.", "A light rain fell over the hills.",
        "Travellers often stop to rest by the river.", "Most markets open early in the day.",
        "The road north is long and narrow.", "Many stories are told around the fire at night.",
        "Old maps show several forgotten paths.", "The wind grew stronger toward evening.",
        "Children like to count the stars.", "Winters there are short but cold.",
        "Some bridges are made of stone.", "The harbour is busy in the summer.",
        "People say the valley is peaceful.", "A small bell rings at noon.",
    ),
    "zh": (
        "早上很安静，也很凉快。", "小雨落在山坡上。", "旅人常在河边休息。", "集市一早就开门了。",
        "往北的路又长又窄。", "夜里大家围着火讲故事。", "旧地图上有几条被遗忘的小路。", "傍晚时风更大了。",
        "孩子们喜欢数星星。", "那里的冬天很短，但是很冷。", "有些桥是用石头建的。", "夏天的港口很热闹。",
    ),
}

IDENTITY = {
    "en": (("Who are you?", "What are you?", "Introduce yourself.", "Tell me about yourself."),
           "I am a small language model trained on an invented world of countries, people and creatures."),
    "zh": (("你是谁？", "请介绍你自己。", "你是什么？", "说说你自己。"),
           "我是一个小型语言模型，学习了一个虚构世界里的国家、人物和动物。"),
}
GREETING = {"en": ("Hello!", "Hello! Ask me about the invented world."),
            "zh": ("你好！", "你好！你可以问我关于这个虚构世界的问题。")}
SYSTEM_PROMPT = {"en": "You are a helpful assistant.", "zh": "你是一个乐于助人的助手。"}

# fmt: on


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
    heldout_fwd, heldout_rev, taught_rev = [], [], []
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
