"""Analyse a question once: language, forms, terms, translations, content words, answer type.

Every later stage (candidates, fusion, the answering sentence, the judge) reads the
one `Query` record made here; nothing downstream normalises or segments the text again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from qa.errors import QuestionError
from qa.search.answer_type import Expected, expected_answer
from qa.text.script import has_han, script_of
from qa.text.tokens import content_words, names, query_terms
from qa.text.translate import Translation, english_question_terms


class Vocabulary(Protocol):
    """What question analysis asks of the articles' words (`qa.stores.bm25.LexicalIndex`
    offers it): the analysis needs to know which words occur, not how BM25 scores them."""

    def known_share(self, terms: Sequence[str]) -> float:
        """Share of `terms` (weighted by length) that occur anywhere in the articles."""

    def contains(self, word: str) -> bool:
        """Whether `word` occurs in the articles (as a token or a run of bigrams)."""


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
    names: tuple[str, ...] = ()  # places, people, organisations it names (Chinese; matching form)
    # An English question's content words with their Chinese candidates, its names
    # marked (qa/text/translate.py); () for a Chinese question.
    translations: tuple[Translation, ...] = ()

    @property
    def is_english(self) -> bool:
        return self.language == "en"


def question_language(question: str) -> str:
    """ "zh-Hans", "zh-Hant" or "en", from the characters of the question."""
    return script_of(question)


def analyse(question: str, vocabulary: Vocabulary) -> Query:
    """The `Query` for a validated question against one index's vocabulary.

    Raises:
        QuestionError: the question holds no word to search for (only question words).

    An English question is matched against the Chinese text through its words'
    dictionary translations (see qa/text/translate.py); its unknown-word share counts an
    English word as known when one of its translations occurs in the articles.
    """
    english = not has_han(question)
    # Translated or segmented once: every later use reads these.
    translations = tuple(english_question_terms(question)) if english else ()
    terms = () if english else tuple(query_terms(question))
    if not (translations if english else terms):
        # 是什么？, 那呢？, "What is it?": only question and function words. Any passage
        # matches them a little, so they were answered with passages; the user must say more.
        raise QuestionError("the question names nothing to look for, only question words; say what it is about")
    lexical_query = cross_language_query(question, vocabulary, translations) if english else question
    if english:
        terms = tuple(query_terms(lexical_query))
    unknown = unknown_share(question, vocabulary, translations)
    # An English question's BM25 terms are only the translations the articles use, so
    # their known share is always 1; what says how much of it the articles cover is the
    # share of its words with such a translation.
    known = 1.0 - unknown if english else vocabulary.known_share(terms)
    return Query(
        text=question,
        language="en" if english else question_language(question),
        lexical_query=lexical_query,
        terms=terms,
        known_share=known,
        unknown_share=unknown,
        expected=expected_answer(question),
        names=() if english else tuple(names(question)),
        translations=translations,
    )


def unknown_share(question: str, vocabulary: Vocabulary, translations: Sequence[Translation] | None = None) -> float:
    """Share of the question's content words that occur nowhere in the texts.

    A question whose topic words (预算, 天气, GDP; router, weather) the articles
    never use cannot be answered from them, however close its embedding comes to
    some passage. Chinese words count by length; an English word counts as known
    when one of its dictionary translations occurs (words the dictionary does
    not know, such as romanised names, count neither way). `translations`: the
    English question's, where already made (`english_question_terms`).
    """
    if not has_han(question):
        return unknown_share_english(question, vocabulary, translations)
    return unknown_share_of(content_words(question), vocabulary)


def unknown_share_english(
    question: str, vocabulary: Vocabulary, translations: Sequence[Translation] | None = None
) -> float:
    """`unknown_share` of an English question, through its dictionary translations."""
    translations = english_question_terms(question) if translations is None else translations
    verdicts = [any(_contains_translation(c, vocabulary) for c in t.chinese) for t in translations if t.chinese]
    # No word the dictionary knows (names, a typo): nothing in it is known to the
    # articles either, which is what the judge must see.
    return verdicts.count(False) / len(verdicts) if verdicts else 1.0


def unknown_share_of(words: Sequence[str], vocabulary: Vocabulary) -> float:
    """Share (by length) of Chinese content `words` that occur nowhere in the texts."""
    total = sum(len(word) for word in words)
    if not total:
        return 0.0
    return sum(len(word) for word in words if not vocabulary.contains(word)) / total


def _contains_translation(candidate: str, vocabulary: Vocabulary) -> bool:
    # Single characters are too ambiguous to count (城 "city", 市 "market").
    # Counting a compound by its parts (广告宣传 by 宣传) was tried and dropped:
    # 澳大利亚 "Australia" then matched 粤港澳大湾区.
    return (candidate.isdigit() or len(candidate) >= 2) and vocabulary.contains(candidate)


def cross_language_query(
    question: str, vocabulary: Vocabulary, translations: Sequence[Translation] | None = None
) -> str:
    """For an English question, the Chinese translations of its words that occur in
    the texts, as a query BM25 can score; "" when none do. `translations`: the
    question's, where already made (`english_question_terms`)."""
    terms = []
    for translation in english_question_terms(question) if translations is None else translations:
        terms += [c for c in translation.chinese if (len(c) >= 2 or c.isdigit()) and vocabulary.contains(c)]
    return " ".join(dict.fromkeys(terms))
