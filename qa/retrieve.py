"""Find the passages that answer a question: dense and BM25 rankings, fused, de-duplicated,
each with its citation and answering sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from qa.answer_type import expected_answer, sentence_fits
from qa.errors import QuestionError, SettingsError
from qa.highlight import term_coverage
from qa.index import SearchIndex, load_index
from qa.lexical import has_han, query_terms
from qa.normalize import match_form
from qa.schema import Chunk, Hit
from qa.settings import Settings

Mode = Literal["dense", "lexical", "hybrid"]
MODES = ("dense", "lexical", "hybrid")
MAX_K = 50
# Reciprocal rank fusion constant: 60 is the value from Cormack et al. (2009); it
# keeps one ranking's first place from drowning the other's second and third.
RRF_K = 60
# Candidates considered for fusion, the answer-type check and de-duplication.
POOL = 30
# A passage whose best sentence has the kind of answer the question asks for (a
# number for "how many", a list for "which ones") moves up about two places.
ANSWER_TYPE_BONUS = 0.03
# Two passages say the same thing (an article's summary box repeats its body word
# for word) when one's character bigrams lie almost all inside the other's, or the
# two share most of them; only the better-ranked one is shown. A summary that
# condenses a paragraph (about 0.5 Jaccard, 0.8 containment) is not a duplicate:
# the paragraph holds details the summary dropped.
DUPLICATE_CONTAINMENT = 0.9
DUPLICATE_JACCARD = 0.6
ENGLISH_LEXICAL_WEIGHT = 0.5
# Weight of the best sentence's similarity against the term coverage when choosing
# the answering sentence. E5 cosines sit in a narrow band, so they are centred first.
SENTENCE_SIMILARITY_WEIGHT = 4.0


@dataclass(frozen=True)
class Ranked:
    """A candidate passage with the evidence `answer` uses to judge relevance."""

    row: int
    score: float
    dense: float  # mean of the passage's and its best sentence's cosine
    lexical: float  # BM25 (0 when the question shares no term with the passage)
    sentence: int | None  # row in the sentence table of the answering sentence


def validate_question(question: str, settings: Settings) -> str:
    """The question stripped, or QuestionError when it is not text, empty or too long."""
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
    """Return `k` if it is a number of passages a user may ask for, else raise SettingsError."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise SettingsError(f"k must be between 1 and {MAX_K}, got {k!r}")
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
        self._sentence_text = [
            index.chunks[row].text[start - index.chunks[row].start : end - index.chunks[row].start]
            for row, start, end in zip(index.sentences.chunk, index.sentences.start, index.sentences.end)
        ]
        # Matching forms once per index, not once per question (an OpenCC pass each).
        self._sentence_form = [match_form(text) for text in self._sentence_text]
        self._sentences_of = [[] for _ in index.chunks]
        for sentence, row in enumerate(index.sentences.chunk):
            self._sentences_of[row].append(sentence)

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
            raise SettingsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        n = len(self.index.chunks)
        if n == 0:
            return []
        # An English question is matched against the Chinese text through its words'
        # dictionary translations (see qa/translate.py).
        lexical_query = question if has_han(question) else self.index.lexical.cross_language_query(question)
        terms = query_terms(lexical_query)
        # The dense side always runs: it picks the answering sentence and `answer`
        # judges relevance on it, whichever ranking orders the passages.
        passage_sim, sentence_sim = self._dense_similarities(question)
        best_sentence_sim = np.full(n, -1.0, dtype=np.float32)
        np.maximum.at(best_sentence_sim, self.index.sentences.chunk, sentence_sim)
        dense = (passage_sim + np.maximum(best_sentence_sim, passage_sim)) / 2
        lexical = self.index.lexical.scores(lexical_query)

        if mode == "dense":
            fused = dense.astype(np.float64)
        elif mode == "lexical":
            fused = lexical.astype(np.float64)
        else:
            fused = rrf([dense, lexical], [1.0, self._lexical_weight(question, terms)])
        # Room for k passages after duplicates are dropped.
        candidates = [int(row) for row in np.argsort(-fused, kind="stable")[: max(POOL, 2 * k)]]
        if mode == "lexical":
            candidates = [row for row in candidates if lexical[row] > 0]

        wanted = expected_answer(question)
        scored = []
        for row in candidates:
            sentence = self._answering_sentence(row, sentence_sim, terms)
            score = float(fused[row])  # a plain float: numpy scalars leak into JSON and Hit
            if mode == "hybrid" and wanted and sentence is not None and sentence_fits(wanted, self._sentence_text[sentence]):
                score += ANSWER_TYPE_BONUS * float(fused[candidates[0]] or 1.0)
            scored.append((score, row, sentence))
        scored.sort(key=lambda item: -item[0])

        picked: list[Ranked] = []
        for score, row, sentence in scored:
            if any(self._duplicates(row, other.row) for other in picked):
                continue
            picked.append(Ranked(row, score, float(dense[row]), float(lexical[row]), sentence))
            if len(picked) == k:
                break
        return picked

    def _dense_similarities(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        """Cosine of the question with every passage and every sentence.

        Embedded as typed: embedding both sides in simplified script, or the question
        in both scripts, was measured and lost (see README, "What the embedding sees").
        """
        query = self.encoder.encode_queries([question])[0]
        return self.index.vectors.all_scores(query), self.index.sentence_vectors.all_scores(query)

    def _lexical_weight(self, question: str, terms: list[str]) -> float:
        # BM25 counts only as much as the question's terms occur in the articles at
        # all; translated English terms are ambiguous (city -> 城市, 市, 城池), so they
        # count for half.
        if has_han(question):
            return self.index.lexical.known_share(terms)
        return ENGLISH_LEXICAL_WEIGHT * (1.0 - self.index.lexical.unknown_share(question))

    def _answering_sentence(self, row: int, sentence_sim: np.ndarray, terms: list[str]) -> int | None:
        """The sentence of passage `row` that best answers: similar to the question and
        holding its terms (they pin down names and numbers; the similarity carries
        English questions, whose terms never occur in Chinese text). Preferring
        sentences of the expected answer type here was measured: no better
        highlights, worse ranking."""
        sentences = self._sentences_of[row]
        if not sentences:
            return None
        sims = sentence_sim[sentences]
        coverage = np.array([term_coverage(terms, self._sentence_text[s], self._sentence_form[s]) for s in sentences])
        combined = coverage + SENTENCE_SIMILARITY_WEIGHT * (sims - sims.mean())
        return sentences[int(np.argmax(combined))]

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
        return self.to_hits(self.rank(question, k, mode), mode)

    def to_hits(self, ranked: list[Ranked], mode: Mode = "hybrid") -> list[Hit]:
        top = ranked[0].score if ranked else 1.0
        hits = []
        for r in ranked:
            chunk = self.index.chunks[r.row]
            highlight = None
            if r.sentence is not None:
                highlight = (int(self.index.sentences.start[r.sentence]), int(self.index.sentences.end[r.sentence]))
            hits.append(
                Hit(
                    text=chunk.text,
                    score=round(_display_score(r, mode, top), 4),
                    title=chunk.title,
                    source=chunk.source,
                    start=chunk.start,
                    end=chunk.end,
                    citation=citation(chunk),
                    date=chunk.date,
                    paragraph=chunk.paragraph,
                    highlight=highlight,
                    dense_score=r.dense,
                    lexical_score=r.lexical,
                )
            )
        return hits


def _display_score(r: Ranked, mode: Mode, top: float) -> float:
    # Fused scores are only meaningful relative to each other; shown relative to the
    # best passage (1.0), they read as "how close to the best match".
    if mode == "hybrid":
        return r.score / top if top > 0 else 0.0
    return r.score


def citation(chunk: Chunk) -> str:
    """One readable line: 《title》 (publication, source, date) ¶paragraph, or ¶first-last
    when the passage runs over several paragraphs."""
    details = ", ".join(part for part in (chunk.publication, chunk.source, chunk.date) if part)
    last = chunk.paragraph + chunk.text.count("\n")
    where = f"¶{chunk.paragraph}" if last == chunk.paragraph else f"¶{chunk.paragraph}-{last}"
    return f"《{chunk.title}》 ({details}) {where}"


def rrf(rankings: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Weighted reciprocal rank fusion; a passage a ranking scores 0 or less gets nothing from it."""
    n = len(rankings[0])
    fused = np.zeros(n, dtype=np.float64)
    for scores, weight in zip(rankings, weights):
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty(n, dtype=np.int64)
        ranks[order] = np.arange(1, n + 1)
        contribution = weight / (RRF_K + ranks)
        contribution[scores <= 0] = 0.0
        fused += contribution
    return fused


def _bigrams(text: str) -> set[str]:
    form = "".join(ch for ch in match_form(text) if ch.isalnum())
    return {form[i : i + 2] for i in range(len(form) - 1)}


_RETRIEVERS: dict[tuple, Retriever] = {}


def get_retriever(settings: Settings | None = None) -> Retriever:
    """A cached retriever for these settings, rebuilt when the index on disk changes."""
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
