"""What a reader gets back around a ranked unit, and how rankings are fused: the context
window around the answering sentence, its citation, weighted reciprocal rank fusion,
near-duplicate detection, and a filter in words.
"""

from __future__ import annotations

import re

import numpy as np

from qa.schema import Article, Filter
from qa.text.sentences import sentence_spans


def rrf(rankings: list[np.ndarray], weights: list[float], k: int = 60) -> np.ndarray:
    """Weighted reciprocal rank fusion; a candidate a ranking scores 0 or less gets nothing from it."""
    n = len(rankings[0])
    fused = np.zeros(n, dtype=np.float64)
    for scores, weight in zip(rankings, weights):
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty(n, dtype=np.int64)
        ranks[order] = np.arange(1, n + 1)
        contribution = weight / (k + ranks)
        contribution[scores <= 0] = 0.0
        fused += contribution
    return fused


def context_window(
    text: str, start: int, end: int, limit: int, low: int = 0, high: int | None = None
) -> tuple[int, int]:
    """The paragraph of `text` holding `start:end` if it fits in `limit` characters,
    else the sentences around it, growing right then left, that fit (never less than
    the sentence itself); never outside `low:high`."""
    high = len(text) if high is None else high
    paragraph_start = max(low, text.rfind("\n", 0, start) + 1)
    paragraph_end = text.find("\n", end)
    paragraph_end = min(high, len(text) if paragraph_end < 0 else paragraph_end)
    if paragraph_end - paragraph_start <= limit:
        return paragraph_start, paragraph_end
    spans = sentence_spans(text[paragraph_start:paragraph_end], paragraph_start)
    first = last = next((i for i, s in enumerate(spans) if s.start <= start < s.end), None)
    if first is None:
        return start, end
    grown = True
    while grown:
        grown = False
        # Right first: a sentence after the answer usually completes it; one before
        # usually sets it up.
        if last + 1 < len(spans) and spans[last + 1].end - spans[first].start <= limit:
            last += 1
            grown = True
        if first > 0 and spans[last].end - spans[first - 1].start <= limit:
            first -= 1
            grown = True
    # Sentences were cut per passage at build time and here per paragraph: where the two
    # disagree (overlapping passages), the window still holds the whole highlight.
    return min(spans[first].start, start), max(spans[last].end, end)


def citation(article: Article, first: int, last: int) -> str:
    """One readable line: 《title》 (publication, source, date) ¶paragraph, or ¶first-last."""
    # OCR misreads characters: a reader checking a quote should know to look at the scan.
    ocr = "OCR" if article.ocr else ""
    details = ", ".join(part for part in (article.publication, article.source, article.date, ocr) if part)
    where = f"¶{first}" if last == first else f"¶{first}-{last}"
    return f"《{article.title}》 ({details}) {where}"


_NOT_WORD = re.compile(r"\W+")


def bigrams(text: str) -> set[str]:
    # Near-duplicates within one corpus share a script, so the raw text's letters and
    # digits do; no OpenCC pass is needed here.
    form = _NOT_WORD.sub("", text.lower())
    return {form[i : i + 2] for i in range(len(form) - 1)}


def describe(where: Filter) -> str:
    """A filter in a few words, for messages."""
    parts = []
    if where.sources is not None:
        names = sorted(where.sources)
        parts.append("articles " + ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else ""))
    if where.date_from or where.date_to:
        parts.append(f"dates {where.date_from or '…'} to {where.date_to or '…'}")
    return "; ".join(parts)
