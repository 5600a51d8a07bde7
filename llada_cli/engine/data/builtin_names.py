"""Invented names for the builtin world (data/builtin.py): words from syllables with a fixed
transliteration, never overlapping each other or an ordinary word of the corpus in either script."""

import random
import re
from collections.abc import Callable

from .builtin_words import ENDINGS, FILLER, IDENTITY, RELATIONS, SYLLABLES, Affixes, Name


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
