"""Find the passages that answer a question: dense and BM25 rankings, fused, de-duplicated,
each with its citation and answering sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from qa.errors import QuestionError
from qa.highlight import best_sentence, sentence_spans
from qa.index import SearchIndex, load_index
from qa.lexical import query_terms
from qa.normalize import match_form
from qa.schema import Chunk, Hit
from qa.settings import Settings

Mode = Literal["dense", "lexical", "hybrid"]
MODES = ("dense", "lexical", "hybrid")
MAX_K = 50
# Reciprocal rank fusion constant: 60 is the value from Cormack et al. (2009); it
# keeps one ranking's first place from drowning the other's second and third.
RRF_K = 60
# Two passages say the same thing (an article's summary box repeats its body word
# for word) when one's character bigrams lie almost all inside the other's, or the
# two share most of them; only the better-ranked one is shown. A summary that
# condenses a paragraph (about 0.5 Jaccard, 0.8 containment) is not a duplicate:
# the paragraph holds details the summary dropped.
DUPLICATE_CONTAINMENT = 0.9
DUPLICATE_JACCARD = 0.6


@dataclass(frozen=True)
class Ranked:
    """A candidate passage with the evidence `answer` uses to judge relevance."""

    row: int
    score: float
    dense: float | None
    lexical: float | None


def validate_question(question: str, settings: Settings) -> str:
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, got {type(question).__name__}")
    question = question.strip()
    if not question:
        raise QuestionError("the question is empty; type a question about the articles")
    if len(question) > settings.max_question_chars:
        raise QuestionError(
            f"the question is {len(question)} characters long; the limit is "
            f"{settings.max_question_chars}: ask about one thing at a time"
        )
    return question


def validate_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, got {k!r}")
    return k


class Retriever:
    """Retrieval over one loaded index with one encoder.

    Example:
        >>> retriever = Retriever.from_settings()  # doctest: +SKIP
        >>> retriever.retrieve("知识城与新加坡签署了多少份合作备忘录？", k=3)[0].citation  # doctest: +SKIP
    """

    def __init__(self, index: SearchIndex, encoder, settings: Settings):
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self._bigrams = [_bigrams(chunk.text) for chunk in index.chunks]

    @classmethod
    def from_settings(cls, settings: Settings | None = None, encoder=None) -> "Retriever":
        settings = settings or Settings.load()
        index = load_index(settings)
        if encoder is None:
            from qa.encoder import load_encoder

            encoder = load_encoder(settings)
        return cls(index, encoder, settings)

    # -- ranking -------------------------------------------------------------------

    def rank(self, question: str, k: int, mode: Mode = "hybrid") -> list[Ranked]:
        """The best `k` distinct passages for `question`, best first."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        n = len(self.index.chunks)
        dense = lexical = None
        if mode in ("dense", "hybrid"):
            query_vector = self.encoder.encode_queries([question])[0]
            dense = self.index.vectors.all_scores(query_vector)
        if mode in ("lexical", "hybrid"):
            lexical = self.index.lexical.scores(question)

        if mode == "dense":
            fused = dense
        elif mode == "lexical":
            fused = lexical
        else:
            fused = _rrf([dense, lexical], n)
        order = np.argsort(-fused, kind="stable")
        if mode == "lexical":
            order = [row for row in order if lexical[row] > 0]

        picked: list[Ranked] = []
        for row in order:
            row = int(row)
            if any(self._duplicates(row, other.row) for other in picked):
                continue
            picked.append(
                Ranked(
                    row=row,
                    score=float(fused[row]),
                    dense=None if dense is None else float(dense[row]),
                    lexical=None if lexical is None else float(lexical[row]),
                )
            )
            if len(picked) == k:
                break
        return picked

    def _duplicates(self, row: int, other: int) -> bool:
        a, b = self._bigrams[row], self._bigrams[other]
        if not a or not b:
            return False
        shared = len(a & b)
        return shared / min(len(a), len(b)) >= DUPLICATE_CONTAINMENT or shared / len(a | b) >= DUPLICATE_JACCARD

    # -- hits ----------------------------------------------------------------------

    def retrieve(self, question: str, k: int | None = None, mode: Mode = "hybrid") -> list[Hit]:
        """The passages that best answer `question`, best first, with citations and highlights."""
        question = validate_question(question, self.settings)
        k = validate_k(k if k is not None else self.settings.top_k)
        ranked = self.rank(question, k, mode)
        return self.to_hits(question, ranked)

    def to_hits(self, question: str, ranked: list[Ranked]) -> list[Hit]:
        chunks = [self.index.chunks[r.row] for r in ranked]
        spans_per_chunk = [sentence_spans(chunk.text, chunk.start) for chunk in chunks]
        sentences = [
            chunk.text[span.start - chunk.start : span.end - chunk.start]
            for chunk, spans in zip(chunks, spans_per_chunk)
            for span in spans
        ]
        similarities = self._sentence_similarities(question, sentences)
        terms = query_terms(question)
        hits = []
        cursor = 0
        for chunk, spans, r in zip(chunks, spans_per_chunk, ranked):
            texts = sentences[cursor : cursor + len(spans)]
            sims = None if similarities is None else similarities[cursor : cursor + len(spans)]
            cursor += len(spans)
            span = best_sentence(spans, texts, sims, terms)
            hits.append(
                Hit(
                    text=chunk.text,
                    score=round(r.score, 6),
                    title=chunk.title,
                    source=chunk.source,
                    start=chunk.start,
                    end=chunk.end,
                    citation=citation(chunk),
                    date=chunk.date,
                    paragraph=chunk.paragraph,
                    highlight=(span.start, span.end) if span else None,
                    dense_score=r.dense,
                    lexical_score=r.lexical,
                )
            )
        return hits

    def _sentence_similarities(self, question: str, sentences: list[str]) -> np.ndarray | None:
        if not sentences or self.encoder is None:
            return None
        query_vector = self.encoder.encode_queries([question])[0]
        vectors = self.encoder.encode_passages(sentences)
        return np.asarray(vectors, dtype=np.float32) @ np.asarray(query_vector, dtype=np.float32)


def citation(chunk: Chunk) -> str:
    """One readable line: 《title》 (source, date) ¶paragraph."""
    details = ", ".join(part for part in (chunk.publication, chunk.source, chunk.date) if part)
    return f"《{chunk.title}》 ({details}) ¶{chunk.paragraph}"


def _rrf(rankings: list[np.ndarray], n: int) -> np.ndarray:
    fused = np.zeros(n, dtype=np.float64)
    for scores in rankings:
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty(n, dtype=np.int64)
        ranks[order] = np.arange(1, n + 1)
        contribution = 1.0 / (RRF_K + ranks)
        # A passage the ranking found nothing in (BM25 score 0) earns no credit from it.
        contribution[scores <= 0] = 0.0
        fused += contribution
    return fused


def _bigrams(text: str) -> set[str]:
    form = "".join(ch for ch in match_form(text) if ch.isalnum())
    return {form[i : i + 2] for i in range(len(form) - 1)}


_RETRIEVERS: dict[tuple, Retriever] = {}


def get_retriever(settings: Settings | None = None) -> Retriever:
    """A cached retriever for these settings, reloaded when the index is rebuilt."""
    settings = settings or Settings.load()
    index = load_index(settings)
    key = (settings, id(index))
    retriever = _RETRIEVERS.get(key)
    if retriever is None:
        from qa.encoder import load_encoder

        retriever = Retriever(index, load_encoder(settings), settings)
        _RETRIEVERS.clear()  # one index at a time is all a process serves
        _RETRIEVERS[key] = retriever
    return retriever


def retrieve(question: str, k: int | None = None, *, mode: Mode = "hybrid", settings: Settings | None = None) -> list[Hit]:
    """The passages of the indexed articles that best answer `question`.

    Args:
        question: in simplified or traditional Chinese, or English.
        k: how many passages (1-50); defaults to the `top_k` setting (5).
        mode: "hybrid" (default), "dense" or "lexical".
        settings: defaults to `Settings.load()` (environment `QA_*`).

    Returns:
        Hits, best first.

    Raises:
        QuestionError: empty or too long a question.
        IndexNotFoundError: no index yet (run `qa build`).
        StaleIndexError: the corpus changed since the build (run `qa build`).

    Example:
        >>> hits = retrieve("知识城与新加坡签署了多少份合作备忘录？", k=3)  # doctest: +SKIP
        >>> hits[0].citation  # doctest: +SKIP
    """
    settings = settings or Settings.load()
    question = validate_question(question, settings)
    return get_retriever(settings).retrieve(question, k, mode)
