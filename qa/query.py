"""Analyse a question once: language, forms, terms, translations, content words, answer type.

Every later stage (candidates, fusion, the answering sentence, the judge) reads the
one `Query` record made here; nothing downstream normalises or segments the text again.
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.answer_type import Expected, expected_answer
from qa.lexical import LexicalIndex, has_han, query_terms
from qa.normalize import to_simplified_chars


@dataclass(frozen=True)
class Query:
    """A question as every stage of retrieval sees it."""

    text: str  # as typed (stripped); this is what the encoder embeds
    language: str  # "zh-Hans", "zh-Hant" or "en"
    lexical_query: str  # what BM25 scores: the text, or for English its Chinese translations
    terms: tuple[str, ...]  # distinct BM25 terms of `lexical_query`, matching form
    known_share: float  # share of the question's terms (by length) the articles use at all
    unknown_share: float  # share of the content words the articles never use
    expected: Expected | None  # the kind of answer asked for (number, list, date)

    @property
    def is_english(self) -> bool:
        return self.language == "en"


def question_language(question: str) -> str:
    """"zh-Hans", "zh-Hant" or "en", from the characters of the question."""
    han = [ch for ch in question if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"]
    if not han:
        return "en"
    simplified = to_simplified_chars("".join(han))
    changed = sum(1 for a, b in zip(han, simplified) if a != b)
    return "zh-Hant" if changed >= 1 and changed / len(han) >= 0.1 else "zh-Hans"


def analyse(question: str, lexical: LexicalIndex) -> Query:
    """The `Query` for a validated question against one index's vocabulary.

    An English question is matched against the Chinese text through its words'
    dictionary translations (see qa/translate.py); its unknown-word share counts an
    English word as known when one of its translations occurs in the articles.
    """
    english = not has_han(question)
    lexical_query = lexical.cross_language_query(question) if english else question
    terms = tuple(query_terms(lexical_query))
    unknown = lexical.unknown_share(question)
    # An English question's BM25 terms are only the translations the articles use, so
    # their known share is always 1; what says how much of it the articles cover is the
    # share of its words with such a translation.
    known = 1.0 - unknown if english else lexical.known_share(terms)
    return Query(
        text=question,
        language="en" if english else question_language(question),
        lexical_query=lexical_query,
        terms=terms,
        known_share=known,
        unknown_share=unknown,
        expected=expected_answer(question),
    )
