"""Sentences of a passage, as article offsets, and how much of a question they contain.

The index embeds every sentence; retrieval picks the answering sentence among a
passage's sentences by its similarity to the question plus `term_coverage`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.text.normalize import match_form

# The marks that end a sentence, in one place for every stage. Full stops end one for
# everybody; a semicolon ends one for highlighting, while the chunker cuts there only
# when a full stop is too far (one separator level down); an ellipsis only says that a
# printed line may end a paragraph (`qa.ingest.clean`): inside a line it often trails
# a list rather than ending a sentence.
CJK_FULL_STOPS = "。！？"
FULL_STOPS = CJK_FULL_STOPS + "!?"
SEMICOLONS = "；;"
ELLIPSIS = "…"
SENTENCE_END = FULL_STOPS + SEMICOLONS + ELLIPSIS
# Closing quotes and brackets that stay with the sentence they follow (`。”`).
CLOSING_QUOTES = "”’」』》）)"

# A sentence ends at a full stop or semicolon (with any closing quote) or at a newline.
_SENTENCE = re.compile(f"[^{FULL_STOPS}{SEMICOLONS}\\n]*(?:[{FULL_STOPS}{SEMICOLONS}][{CLOSING_QUOTES}]*|\\n|$)")
# Sentences longer than this are cut at clause marks, so the highlight stays readable.
MAX_SENTENCE_CHARS = 90
_CLAUSE = re.compile(r"[^，,：:]*(?:[，,：:]|$)")
# A clause longer than this is cut into pieces of MAX_SENTENCE_CHARS, as a passage is
# shown in at most 500 characters (qa.search.passages).
MAX_RUN_CHARS = 500


@dataclass(frozen=True)
class Span:
    start: int  # offsets in the text given to `sentence_spans`, shifted by `offset`
    end: int


def sentence_spans(text: str, offset: int = 0) -> list[Span]:
    """Split `text` into sentences (long ones into clauses); offsets shifted by `offset`."""
    spans: list[Span] = []
    for match in _SENTENCE.finditer(text):
        start, end = match.span()
        sentence = text[start:end]
        stripped_end = start + len(sentence.rstrip())
        stripped_start = start + (len(sentence) - len(sentence.lstrip()))
        if stripped_end <= stripped_start:
            continue
        if stripped_end - stripped_start > MAX_SENTENCE_CHARS:
            spans.extend(_clauses(text, stripped_start, stripped_end, offset))
        else:
            spans.append(Span(offset + stripped_start, offset + stripped_end))
    return spans


def _clauses(text: str, start: int, end: int, offset: int) -> list[Span]:
    # Group clauses into pieces of about half the limit, so a highlight is a phrase
    # with context rather than a single comma-separated fragment.
    pieces: list[Span] = []
    piece_start = start
    for match in _CLAUSE.finditer(text, start, end):
        if match.end() == match.start():
            continue
        if match.end() - piece_start >= MAX_SENTENCE_CHARS // 2 or match.end() >= end:
            pieces.append(Span(offset + piece_start, offset + match.end()))
            piece_start = match.end()
    if piece_start < end:
        pieces.append(Span(offset + piece_start, offset + end))
    # A run with no stop or comma at all (a table flattened to text, a scan read without
    # punctuation) is cut by length past MAX_RUN_CHARS: one 10,000-character "sentence"
    # was shown whole as the passage. No sentence of the benchmark articles is that long
    # (369 characters at most), so their indexes are unchanged.
    cut: list[Span] = []
    for piece in pieces:
        if piece.end - piece.start <= MAX_RUN_CHARS:
            cut.append(piece)
            continue
        for begin in range(piece.start, piece.end, MAX_SENTENCE_CHARS):
            cut.append(Span(begin, min(begin + MAX_SENTENCE_CHARS, piece.end)))
    return cut


def term_coverage(terms: list[str], text: str, form: str | None = None) -> float:
    """Share of the question's terms (weighted by length) found in `text`'s matching form.

    `form` is `match_form(text)` when the caller has it already (it costs an OpenCC pass).
    """
    if not terms:
        return 0.0
    form = match_form(text) if form is None else form
    total = sum(len(term) for term in terms)
    found = sum(len(term) for term in terms if term in form)
    return found / total
