"""The invented world's words: syllables with their Chinese characters, the relations between names
and their phrasings in both languages, filler sentences and the assistant's identity (data/builtin.py)."""

from dataclasses import dataclass, field
from typing import Literal

Lang = Literal["en", "zh"]


@dataclass(frozen=True, order=True)  # ordered by (en, zh): a set of names sorts the same every run
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
