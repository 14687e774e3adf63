"""Find the passages that answer a question: dense and BM25 candidates, fused,
de-duplicated, each returned as its answering sentence in context, with a citation.

Small units are ranked (200-character passages, and every sentence of them); what
a reader gets back is the context around the answering sentence, bounded by its
paragraph and `Tuning.context_chars`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

import numpy as np

from qa.errors import SettingsError
from qa.index.freshness import fresh_changes, stale_note
from qa.index.layout import SearchIndex
from qa.index.read import load_index
from qa.limits import Mode, validate_k, validate_mode, validate_question
from qa.schema import Article, Filter, Hit
from qa.search.answer_type import sentence_fits
from qa.search.passages import bigrams, citation, context_window, describe, rrf
from qa.search.query import Query, analyse
from qa.settings import Settings
from qa.stores.bm25 import top_n
from qa.text.sentences import term_coverage
from qa.tuning import DEFAULT_TUNING


@dataclass(frozen=True)
class Ranked:
    """A result before it becomes a Hit: where it is, and the evidence the judge reads."""

    row: int  # passage row in the index
    score: float  # fused score (the mode's own score for dense and lexical)
    dense: float  # (passage cosine + max(best sentence cosine, passage cosine)) / 2
    lexical: float  # BM25 (0 when the question shares no term with the passage)
    sentence: int | None  # row in the sentence table of the answering sentence
    sentence_cosine: float  # that sentence's cosine with the question
    source: str
    context: tuple[int, int]  # article offsets of the text returned to the reader
    # Near-copies of this text in other articles (the same report re-posted by another
    # outlet), as (source, context): shown as "also reported by", not as results of their own.
    also: tuple[tuple[str, tuple[int, int]], ...] = ()


class Retriever:
    """Retrieval over one loaded index with one encoder. Read-only once built, so one
    retriever can serve many threads.

    Example:
        >>> retriever = Retriever.from_settings()  # doctest: +SKIP
        >>> query = retriever.analyse("知识城与新加坡签署了多少份合作备忘录？")  # doctest: +SKIP
        >>> retriever.to_hits(retriever.rank(query, k=3))[0].citation  # doctest: +SKIP
    """

    def __init__(self, index: SearchIndex, encoder, settings: Settings):
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self.tuning = DEFAULT_TUNING

    @classmethod
    def from_settings(cls, settings: Settings | None = None, encoder=None) -> Retriever:
        settings = settings or Settings.load()
        model = None if encoder is not None else _ModelLoad(settings)
        index = load_index(settings)
        return cls(index, encoder if model is None else model.result(), settings)

    def analyse(self, question: str) -> Query:
        """The question analysed once against this index's vocabulary (see qa/search/query.py)."""
        return analyse(validate_question(question, self.settings.max_question_chars), self.index.lexical)

    # -- ranking -------------------------------------------------------------------

    def rank(self, query: Query, k: int, mode: Mode = "hybrid", where: Filter | None = None) -> list[Ranked]:
        """The best `k` distinct results for `query`, best first, from the articles
        `where` allows (all by default).

        Raises:
            SettingsError: no indexed article passes `where`.
        """
        validate_mode(mode)
        if not self.index.chunks:
            return []
        tuning = self.tuning
        allowed_passages = None
        if where:
            mask = self.index.passage_mask(where)
            if not mask.any():
                raise SettingsError(f"no indexed article matches the filter ({describe(where)}); widen it or clear it")
            allowed_passages = np.flatnonzero(mask)
        vector = np.asarray(self.encoder.encode_queries([query.text])[0], dtype=np.float32)

        # Candidates: the nearest passages' rows and BM25's best rows, each searched among
        # the allowed rows only. The sentences are not searched, only scored below for
        # these candidates: a search of the sentence store (2.7 vectors a passage) as a
        # third source of candidates changed no R@1 or R@5 on any set (dev, extra,
        # cmrc2018-trial, drcd-dev, ats-news-dev; docs/measurements.md) and was half of a
        # question's time at 10,000 articles.
        where = where or None  # an empty filter is none: the stores skip filtering
        passage_ids, _ = self.index.vectors.search(vector, tuning.dense_candidates, allowed_passages, where)
        lexical_all = self.index.lexical.term_scores(query.terms)
        if allowed_passages is not None:
            lexical_all = np.where(mask, lexical_all, 0.0)
        if self.index.lexical_search is not None:
            # The store ranks BM25 itself (Milvus); the scores below still come from bm25s.
            lexical_ids, _ = self.index.lexical_search.search(
                query.lexical_query, tuning.lexical_candidates, allowed_passages, where
            )
        else:
            lexical_ids, _ = top_n(lexical_all, tuning.lexical_candidates)
        if allowed_passages is not None:
            lexical_ids = lexical_ids[mask[lexical_ids]]
        # An approximate index pads with -1 when it finds fewer than asked for.
        passage_ids = passage_ids[0][passage_ids[0] >= 0]
        rows = np.unique(np.concatenate([passage_ids, lexical_ids]).astype(np.int64))
        if mode == "lexical":
            rows = rows[lexical_all[rows] > 0]
        if rows.size == 0:
            return []

        # Evidence over the union only: the question's cosine with each candidate passage
        # and with each of its sentences.
        passage_cos = self.index.vectors.scores(vector, rows)
        firsts, stops = self.index.sentences.spans(rows)
        counts = stops - firsts
        # Every candidate's sentence rows, passage after passage, without a Python loop.
        offsets = np.cumsum(counts) - counts
        all_sentences = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(firsts - offsets, counts)
        all_cos = np.asarray(self.index.sentence_vectors.scores(vector, all_sentences))
        best_sentence = np.full(len(rows), -1.0, dtype=np.float32)
        has = counts > 0
        if has.any():
            best_sentence[has] = np.maximum.reduceat(all_cos, offsets[has])
        sentence_cos = dict(zip(all_sentences.tolist(), all_cos.tolist()))
        sentence_rows = [range(a, b) for a, b in zip(firsts.tolist(), stops.tolist())]
        dense = (passage_cos + np.maximum(best_sentence, passage_cos)) / 2
        lexical = lexical_all[rows]

        if mode == "dense":
            fused = dense.astype(np.float64)
        elif mode == "lexical":
            fused = lexical.astype(np.float64)
        else:
            fused = rrf([dense, lexical], [1.0, self._lexical_weight(query)], tuning.rrf_k)
        order = np.argsort(-fused, kind="stable")[: max(tuning.pool, 2 * k)]
        best = float(fused[order[0]]) or 1.0

        scored = []
        for position in order:
            row = int(rows[position])
            sentence = self._answering_sentence(sentence_rows[position], sentence_cos, query)
            score = float(fused[position])  # a plain float: numpy scalars leak into JSON
            if (
                mode == "hybrid"
                and query.expected
                and sentence is not None
                and sentence_fits(query.expected, self.index.sentence_text(sentence))
            ):
                score += tuning.answer_type_bonus * best
            scored.append((score, position, row, sentence))
        scored.sort(key=lambda item: -item[0])

        picked: list[Ranked] = []
        picked_grams: list[set[str]] = []
        for score, position, row, sentence in scored:
            chunk = self.index.chunks[row]
            article = self.index.articles[chunk.source]
            shown = [p.context for p in picked if p.source == chunk.source]
            context = self.context(article, sentence, row, shown)
            if context is None:
                continue  # its answering sentence is already on screen in another result
            grams = bigrams(article.text[context[0] : context[1]])
            copy_of = next((i for i, other in enumerate(picked_grams) if self._duplicates(grams, other)), None)
            if copy_of is not None:
                first = picked[copy_of]
                # Another outlet's copy of a result already listed is named under it, so
                # five re-posts of one report take one place, not five; a copy within one
                # article (a summary box repeating its body) is simply left out.
                if chunk.source != first.source and all(chunk.source != s for s, _ in first.also):
                    picked[copy_of] = replace(first, also=(*first.also, (chunk.source, context)))
                continue
            picked.append(
                Ranked(
                    row=row,
                    score=score,
                    dense=float(dense[position]),
                    lexical=float(lexical[position]),
                    sentence=sentence,
                    sentence_cosine=sentence_cos[sentence] if sentence is not None else float(dense[position]),
                    source=chunk.source,
                    context=context,
                )
            )
            picked_grams.append(grams)
            if len(picked) == k:
                break
        return picked

    def _lexical_weight(self, query: Query) -> float:
        # BM25 counts only as much as the question's terms occur in the articles at
        # all; translated English terms are ambiguous, so they count for less.
        weight = self.tuning.english_lexical_weight if query.is_english else self.tuning.lexical_weight
        return weight * query.known_share

    def _answering_sentence(self, sentences: range, cosine: dict[int, float], query: Query) -> int | None:
        """The sentence of a passage that best answers: similar to the question and
        holding its terms (they pin down names and numbers; the similarity carries
        English questions, whose terms never occur in Chinese text)."""
        if not sentences:
            return None
        sims = np.array([cosine[s] for s in sentences])
        coverage = np.array([term_coverage(list(query.terms), "", self.index.sentences.form[s]) for s in sentences])
        combined = coverage + self.tuning.sentence_similarity_weight * (sims - sims.mean())
        return sentences[int(np.argmax(combined))]

    def context(
        self, article: Article, sentence: int | None, row: int, shown: list[tuple[int, int]] = ()
    ) -> tuple[int, int] | None:
        """Article offsets of what a reader gets: the answering sentence and its
        neighbours, inside its paragraph and outside the stretches `shown` already,
        up to `context_chars` characters; None when the sentence itself is shown."""
        if sentence is None:
            chunk = self.index.chunks[row]
            start, end = chunk.start, chunk.end
        else:
            start, end = int(self.index.sentences.start[sentence]), int(self.index.sentences.end[sentence])
        if any(a < end and start < b for a, b in shown):
            return None
        # Two results from one long paragraph show two windows side by side, never the
        # same text twice: a second answering sentence is often where the answer is.
        low = max((b for a, b in shown if b <= start), default=0)
        high = min((a for a, b in shown if a >= end), default=len(article.text))
        if sentence is None:
            return max(start, low), min(end, high)
        return context_window(article.text, start, end, self.tuning.context_chars, low, high)

    def _duplicates(self, a: set[str], b: set[str]) -> bool:
        if not a or not b:
            return False
        shared = len(a & b)
        return (
            shared / min(len(a), len(b)) >= self.tuning.duplicate_containment
            or shared / (len(a) + len(b) - shared) >= self.tuning.duplicate_jaccard
        )

    # -- hits ----------------------------------------------------------------------

    def changes(self) -> list[str]:
        """What changed in the corpus since this index was built (at most one look a second)."""
        return fresh_changes(self.index, self.settings)

    def stale_note(self) -> str:
        """ "" when the index matches the corpus, else one line naming what changed."""
        return stale_note(self.changes(), self.settings)

    def retrieve(
        self, question: str, k: int | None = None, mode: Mode = "hybrid", where: Filter | None = None
    ) -> list[Hit]:
        """The passages that best answer `question`, best first, with citations and highlights."""
        k = validate_k(k if k is not None else self.settings.top_k)
        return self.to_hits(self.rank(self.analyse(question), k, mode, where), mode)

    def to_hits(self, ranked: list[Ranked], mode: Mode = "hybrid") -> list[Hit]:
        top = ranked[0].score if ranked else 1.0
        hits = []
        for r in ranked:
            article = self.index.articles[r.source]
            start, end = r.context
            highlight = None
            if r.sentence is not None:
                highlight = (int(self.index.sentences.start[r.sentence]), int(self.index.sentences.end[r.sentence]))
            paragraph = article.paragraph_at(start)
            text = article.text[start:end]
            hits.append(
                Hit(
                    text=text,
                    score=round(_display_score(r, mode, top), 4),
                    title=article.title,
                    source=article.source,
                    start=start,
                    end=end,
                    citation=citation(article, paragraph, paragraph + text.count("\n")),
                    date=article.date,
                    paragraph=paragraph,
                    highlight=highlight,
                    dense_score=r.dense,
                    lexical_score=r.lexical,
                    also=tuple(self._citation_at(source, context) for source, context in r.also),
                )
            )
        return hits

    def _citation_at(self, source: str, context: tuple[int, int]) -> str:
        article = self.index.articles[source]
        first = article.paragraph_at(context[0])
        return citation(article, first, first + article.text[context[0] : context[1]].count("\n"))

    def passage_text(self, ranked: Ranked) -> str:
        """The text a reader gets for a result (what evaluation matches gold against)."""
        return self.text_at(ranked.source, ranked.context)

    def text_at(self, source: str, context: tuple[int, int]) -> str:
        """The text of article `source` between the offsets `context`."""
        return self.index.articles[source].text[context[0] : context[1]]


def _display_score(r: Ranked, mode: Mode, top: float) -> float:
    # Fused scores are only meaningful relative to each other; shown relative to the
    # best passage (1.0), they read as "how close to the best match".
    if mode == "hybrid":
        return r.score / top if top > 0 else 0.0
    return r.score


_RETRIEVERS: dict[tuple, Retriever] = {}


class _ModelLoad:
    """The model, loaded in a thread while the caller loads the index.

    A cold start then costs the longer of the two, not their sum: onnxruntime holds
    the GIL for most of its load (about 1.7 s), and checking the index's files (sha256
    over 1.3 GB at 10,000 articles, `qa.index.write.file_checksum`) holds none, so the
    two share the machine's cores. The index is loaded by the caller, so a missing
    or damaged one is said at once; the thread is a daemon, so such an error never
    waits for the model.
    """

    def __init__(self, settings: Settings):
        from qa.embed.factory import load_encoder

        self._encoder = self._error = None

        def load() -> None:
            try:
                self._encoder = load_encoder(settings)
            except BaseException as error:  # raised in the caller's thread by result()
                self._error = error

        self._thread = threading.Thread(target=load, name="qa-model-load", daemon=True)
        self._thread.start()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._encoder


def get_retriever(settings: Settings | None = None, encoder=None) -> Retriever:
    """A cached retriever for these settings, on the index as it is on disk now: after a
    rebuild swaps in, the next call returns one on the new index (no restart needed).
    A caller holding one keeps answering from its index, so a swap fails no question.

    `encoder` replaces the model of `settings` (the web chat passes its micro-batching
    wrapper of it)."""
    settings = settings or Settings.load()
    # A process's first question loads the model beside the index.
    model = _ModelLoad(settings) if encoder is None and not _RETRIEVERS else None
    index = load_index(settings)
    key = (settings, id(index), id(encoder))
    retriever = _RETRIEVERS.get(key)
    if retriever is None:
        if encoder is None:
            encoder = (model or _ModelLoad(settings)).result()
        retriever = Retriever(index, encoder, settings)
        _RETRIEVERS.clear()  # one index at a time is all a process serves
        _RETRIEVERS[key] = retriever
    return retriever


def retrieve(
    question: str,
    k: int | None = None,
    *,
    mode: Mode = "hybrid",
    where: Filter | None = None,
    settings: Settings | None = None,
) -> list[Hit]:
    """The passages of the indexed articles that best answer `question`.

    While articles were added, changed or removed since the last build, the answer
    comes from the index as built, and a warning on the "qa" logger says what
    changed (`answer()` returns it as `Answer.stale`).

    Args:
        question: in simplified or traditional Chinese, or English.
        k: how many passages (1-50); defaults to the `top_k` setting (5).
        mode: "hybrid" (default), "dense" or "lexical".
        where: only these articles (`Filter(sources=..., date_from=..., date_to=...)`).
        settings: defaults to `Settings.load()` (environment `QA_*`).

    Returns:
        Hits, best first: each the answering sentence in its context, with a citation.

    Raises:
        QuestionError: empty or too long a question.
        IndexNotFoundError: no index yet (run `qa build`).
        StaleIndexError: the index was built with other settings (run `qa build`).

    Example:
        >>> hits = retrieve("知识城与新加坡签署了多少份合作备忘录？", k=3)  # doctest: +SKIP
        >>> hits[0].citation  # doctest: +SKIP
    """
    settings = settings or Settings.load()
    validate_question(question, settings.max_question_chars)
    retriever = get_retriever(settings)
    warn_if_stale(retriever.stale_note())
    return retriever.retrieve(question, k, mode, where)


_WARNED: set[str] = set()


def warn_if_stale(note: str) -> None:
    """Log a stale index once per distinct note, not once per question."""
    if note and note not in _WARNED:
        _WARNED.add(note)
        logging.getLogger("qa").warning(note)
