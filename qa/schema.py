"""Typed records that cross module boundaries: articles, chunks, hits and answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Article dates are as precise as the source: 2021, 2021-08 or 2021-08-24.
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


@dataclass(frozen=True)
class Article:
    """One cleaned article, ready to be chunked.

    `text` is the clean text users read (original script); every offset in the
    system (chunks, hits, highlights) points into it.
    """

    source: str  # path relative to the corpus folder, e.g. "knowledge_city_2021.md"
    title: str
    text: str
    date: str = ""
    publication: str = ""
    seed: str = ""  # the raw file it was cut from, when known
    content_hash: str = ""  # sha256 of the file bytes: tells a stale index
    ocr: bool = False  # its text was read off a scan by OCR, so a citation says so
    subtitle: str = ""  # also the last paragraph of `text` when the body does not hold it

    @property
    def headline(self) -> str:
        """The title, and the subtitle where there is one: the context of every passage."""
        return f"{self.title}\n{self.subtitle}" if self.subtitle else self.title

    def paragraph_at(self, offset: int) -> int:
        """1-based number of the paragraph holding character `offset`."""
        return self.text.count("\n", 0, max(0, offset)) + 1


@dataclass(frozen=True)
class Skipped:
    """A corpus file a build left out, and why (one line that names the file)."""

    source: str
    reason: str


@dataclass(frozen=True)
class Filter:
    """Which articles a question may be answered from: some source files, a date range
    (inclusive, "YYYY-MM-DD"; an article without a date is outside any range), or both.
    The default lets every article through. Dates compare as text, so a bound may be
    as precise as the articles' dates (2021, 2021-08, 2021-08-24)."""

    sources: frozenset[str] | None = None
    date_from: str = ""
    date_to: str = ""

    def __post_init__(self) -> None:
        # Checked here, so every caller (CLI, web, Python) gets the same message, and a
        # date such as "2021-3-1" never compares wrongly as text.
        from qa.errors import SettingsError

        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value and not is_date(value):
                raise SettingsError(f"{name} must be a date like 2021-03-01 (or 2021-03, or 2021), got {value!r}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise SettingsError(f"the date range ends ({self.date_to}) before it starts ({self.date_from})")

    def __bool__(self) -> bool:
        return self.sources is not None or bool(self.date_from or self.date_to)

    def allows(self, article: Article) -> bool:
        if self.sources is not None and article.source not in self.sources:
            return False
        if self.date_from or self.date_to:
            if not article.date:
                return False
            if self.date_from and article.date < self.date_from:
                return False
            if self.date_to and article.date > self.date_to:
                return False
        return True


@dataclass(frozen=True)
class Chunk:
    """A passage of an article; `article.text[start:end] == text` always holds."""

    source: str
    title: str
    date: str
    publication: str
    start: int
    end: int
    text: str
    paragraph: int


# How a citation names a passage's evidence (qa/search/judge.py decides which).
EVIDENCE_LABELS = {"answers": "answers the question", "related": "related"}


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with everything needed to cite and highlight it."""

    text: str
    score: float
    title: str
    source: str
    start: int
    end: int
    citation: str
    date: str = ""
    paragraph: int = 0
    highlight: tuple[int, int] | None = None  # answering sentence, article coordinates
    dense_score: float | None = None
    lexical_score: float | None = None
    # Citations of the same text in other articles (another outlet's copy of the report).
    also: tuple[str, ...] = ()
    # What the verdict read in this passage: "answers" (its own evidence reaches
    # "found"), "related" (shown, not judged to answer) or "" (not judged: retrieve()).
    evidence: str = ""

    @property
    def evidence_label(self) -> str:
        """The evidence in words a reader can act on, for a citation line."""
        return EVIDENCE_LABELS.get(self.evidence, "")

    @property
    def highlight_text(self) -> str:
        """The answering sentence, or "" when none was chosen."""
        if self.highlight is None:
            return ""
        return self.text[self.highlight[0] - self.start : self.highlight[1] - self.start]

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "score": self.score,
            "title": self.title,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "citation": self.citation,
            "date": self.date,
            "paragraph": self.paragraph,
            "highlight": list(self.highlight) if self.highlight else None,
            "highlight_text": self.highlight_text,
            "also_reported_by": list(self.also),
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Answer:
    """What `answer()` returns: the passages and whether they answer at all."""

    question: str
    found: bool  # the judge's verdict is "found"
    passages: list[Hit] = field(default_factory=list)
    message: str = ""  # "nothing found", or for "unsure" the "may not answer it" line
    markdown: str = ""
    verdict: str = "found"  # "found", "unsure" (passages shown with `message`) or "not_found"
    # "" when the index matches the corpus; else what changed since the build (the
    # passages then come from the last good index).
    stale: str = ""

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "found": self.found,
            "verdict": self.verdict,
            "message": self.message,
            "stale": self.stale,
            "passages": [hit.to_dict() for hit in self.passages],
        }


def is_date(value: str) -> bool:
    """Whether `value` is a stored date: "YYYY", "YYYY-MM" or "YYYY-MM-DD", naming a day,
    month or year that exists (2024-13 and 2024-02-30 have the form but no article can
    carry them). The date filters compare such strings as text."""
    if not _DATE.fullmatch(value):
        return False
    import datetime

    year, month, day = ([int(part) for part in value.split("-")] + [1, 1])[:3]
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True
