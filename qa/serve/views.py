"""What the chat and the JSON API send back: a `Reply` and its JSON, a passage as data,
the article around a passage (`ArticleView`), and a filter from form or JSON values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.errors import SettingsError
from qa.schema import Answer, Filter, Hit


@dataclass(frozen=True)
class Reply:
    """One answered question as the chat and the JSON API return it.

    `question` is as typed; `resolved` the stand-alone question actually asked (equal
    to `question` unless it was a follow-up). `error` is a one-line message for the
    user instead of an answer (a mistake, the rate limit, an unexpected failure);
    `status` the HTTP status that goes with it.
    """

    question: str
    resolved: str = ""
    answer: Answer | None = None
    error: str = ""
    status: int = 200

    def to_dict(self) -> dict:
        """The JSON form (docs/usage.md, "JSON API"). A refused question comes back as its
        first ECHO_CHARS characters only: a 50 MB question was echoed whole, twice."""
        result = self.answer
        question = _echo(self.question) if self.error else self.question
        return {
            "question": question,
            "resolved_question": _echo(self.resolved) if self.error and self.resolved else self.resolved or question,
            "found": bool(result and result.found),
            "verdict": result.verdict if result else None,
            "message": result.message if result else "",
            "stale": result.stale if result else "",
            "error": self.error,
            "passages": [passage_dict(hit) for hit in (result.passages if result else [])],
        }


# How much of a refused question a reply repeats: enough to recognise it.
ECHO_CHARS = 100


def _echo(text: str) -> str:
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


def passage_dict(hit: Hit) -> dict:
    """A passage as data: the Hit's fields, plus the highlight inside `text` itself."""
    data = hit.to_dict()
    data["highlight_in_text"] = [hit.highlight[0] - hit.start, hit.highlight[1] - hit.start] if hit.highlight else None
    return data


# -- an article around a passage ------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    number: int  # 1-based, as in citations
    text: str
    in_passage: bool  # part of the passage the answer showed
    highlight: tuple[int, int] | None = None  # the answering sentence, offsets in `text`


@dataclass(frozen=True)
class ArticleView:
    """A passage's article: the passage's paragraphs and their neighbours."""

    title: str
    source: str
    date: str = ""
    publication: str = ""
    paragraphs: list[Paragraph] = field(default_factory=list)
    paragraph_count: int = 0
    note: str = ""  # why the passage cannot be shown, when it cannot


# Paragraphs shown before and after the passage's own.
NEIGHBOURS = 1


def article_view(articles: dict, passage: dict, neighbours: int = NEIGHBOURS) -> ArticleView:
    """The article holding `passage` (a `passage_dict`), from an index's articles.

    When the article changed or left the index since the answer, says so instead of
    showing the wrong text.
    """
    source = str(passage.get("source", ""))
    article = articles.get(source)
    title = str(passage.get("title", ""))
    if article is None:
        return ArticleView(
            title, source, note="这篇文章已不在索引中。 This article is no longer in the index; ask again."
        )
    start, end = int(passage["start"]), int(passage["end"])
    if article.text[start:end] != passage.get("text"):
        return ArticleView(
            article.title,
            source,
            article.date,
            article.publication,
            note="文章在回答后已更改，请重新提问。 The article changed since this answer; ask again.",
        )
    lines = article.text.split("\n")
    first, last = article.paragraph_at(start), article.paragraph_at(max(start, end - 1))
    highlight = passage.get("highlight")
    paragraphs = []
    offset = sum(len(line) + 1 for line in lines[: max(0, first - 1 - neighbours)])
    for number in range(max(1, first - neighbours), min(len(lines), last + neighbours) + 1):
        text = lines[number - 1]
        span = None
        if highlight:
            low, high = max(highlight[0], offset), min(highlight[1], offset + len(text))
            if low < high:
                span = (low - offset, high - offset)
        paragraphs.append(Paragraph(number, text, first <= number <= last, span))
        offset += len(text) + 1
    return ArticleView(article.title, source, article.date, article.publication, paragraphs, len(lines))


def parse_filter(sources=None, date_from: str = "", date_to: str = "") -> Filter | None:
    """A Filter from form or JSON values, or None when nothing is filtered.

    Raises:
        SettingsError: a date that is not YYYY[-MM[-DD]], or a range that ends before it starts
            (checked by `Filter` itself).
    """
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        if value is not None and not isinstance(value, str):
            raise SettingsError(f"{name} must be a date like 2021-03-01 (a string), got {type(value).__name__}")
    date_from, date_to = (date_from or "").strip(), (date_to or "").strip()
    if isinstance(sources, str):
        sources = [sources]
    if sources is not None and not (isinstance(sources, list) and all(isinstance(s, str) for s in sources)):
        raise SettingsError("sources must be a list of article file names (strings), as /api/status lists them")
    chosen = frozenset(sources) if sources else None
    if chosen is None and not date_from and not date_to:
        return None
    return Filter(sources=chosen, date_from=date_from, date_to=date_to)
