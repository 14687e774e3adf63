"""The evidence a verdict reads for one result: its scores, and whether the question's
distinctive terms occur in the passage and in its article.

A news archive holds many reports of similar events; a question about an event the
archive lacks still meets passages that share its common words (袭击, 造成, 死亡). What
tells the two apart is the rare terms (names, places, numbers): weighted by how few
passages use them, they must occur in the answering passage or at least in its
article (its title included), not merely somewhere in the corpus.
"""

from __future__ import annotations

import math
from functools import lru_cache

from qa.search.query import Query
from qa.text.normalize import match_form
from qa.text.sentences import term_coverage

# The raw evidence of one result; qa/search/judge.py reads some of it relative to
# the corpus's own null distribution (qa/search/calibration.py).
RAW = (
    "dense",  # the result's dense score: mean of its passage cosine and max(passage, best sentence)
    "sentence_cosine",  # its answering sentence's cosine with the question
    "lexical",  # log(1 + BM25) of the result
    "coverage",  # share of the question's terms (by length) in the result's text
    "passage_rare",  # share of the question's terms, weighted by rarity (idf), in the result's text
    "article_rare",  # the same share in the result's whole article and its title
    "known_share",  # share of the question's terms that occur anywhere in the articles
    "unknown_share",  # share of its content words the articles never use
    "english",  # 1 for an English question (its terms are translations)
)


def term_rarity(index, terms: tuple[str, ...]) -> dict[str, float]:
    """Each term's BM25 idf over the index's passages; a term no passage uses gets the
    idf of a term used once (it is as distinctive as a term can be)."""
    lexical = index.lexical
    passages = max(1, len(lexical)) if lexical is not None else 1
    rarity = {}
    for term in terms:
        used_by = (lexical.document_frequency(term) if lexical is not None else 0) or 1
        rarity[term] = math.log(1.0 + (passages - used_by + 0.5) / (used_by + 0.5))
    return rarity


def rare_share(terms: tuple[str, ...], rarity: dict[str, float], form: str) -> float:
    """Share of `terms`, each weighted by its rarity times its length, found in `form`."""
    weights = {term: rarity.get(term, 0.0) * len(term) for term in terms}
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(weight for term, weight in weights.items() if term in form) / total


@lru_cache(maxsize=512)
def article_form(title: str, text: str) -> str:
    # One OpenCC pass per article, not per question: the same few articles answer most.
    return match_form(title + "\n" + text)


def ranking_evidence(index, query: Query, ranked, texts) -> list[dict[str, float]]:
    """The raw evidence of each ranked result (best first) whose shown text is the same
    place in `texts`; the terms' rarity is read once for all of them."""
    rarity = term_rarity(index, tuple(query.terms))
    return [evidence(index, query, result, text, rarity) for result, text in zip(ranked, texts)]


def evidence(index, query: Query, result, text: str, rarity: dict[str, float] | None = None) -> dict[str, float]:
    """The raw evidence (`RAW`) for `query` and one ranked result whose shown text is `text`."""
    terms = tuple(query.terms)
    rarity = term_rarity(index, terms) if rarity is None else rarity
    article = index.articles[result.source]
    form = match_form(text)
    return {
        "dense": float(result.dense),
        "sentence_cosine": float(result.sentence_cosine),
        "lexical": math.log1p(max(0.0, float(result.lexical))),
        "coverage": term_coverage(list(terms), text, form),
        "passage_rare": rare_share(terms, rarity, form),
        "article_rare": rare_share(terms, rarity, article_form(article.title, article.text)),
        "known_share": float(query.known_share),
        "unknown_share": float(query.unknown_share),
        "english": 1.0 if query.is_english else 0.0,
    }
