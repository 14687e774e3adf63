"""Clean raw article text into what a reader should see: PDF line breaks, stray spaces,
converter pinyin and site boilerplate removed; the original script is kept.

Leaves out: splitting a page that holds several articles (done by hand in corpus/,
see docs/corpus.md, "The bundled corpus") and any simplified/traditional conversion (matching does that on
a normalised copy, see normalize.py).
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from qa.text.normalize import strip_pinyin
from qa.text.script import to_simplified
from qa.text.sentences import SENTENCE_END

# A printed line ending in one of `SENTENCE_END` may end a paragraph.
# Closing marks that may follow the sentence end (”。 or 。”).
CLOSERS = "”’」』）)】》\"'"
# Marks that open a byline or photo credit on a newspaper page.
BYLINE_MARKS = ("▶", "►", "■", "●")

# A site's disclaimer ("新浪聲明:", "免责声明：") or comment prompt ("發表評論") is not
# part of the article. Matched on the simplified form of a whole paragraph.
_BOILERPLATE = [
    re.compile(r"^\S{0,10}?(免责)?声明\s*[:：]"),
    re.compile(r"^(发表|我要|查看|网友)评论\S{0,6}$"),
    re.compile(r"^(责任编辑|编辑|来源|分享到|扫一扫|点击进入)\s*[:：]?\S{0,20}$"),
    re.compile(r"^(本文|此文)?(版权|未经授权).{0,60}(转载|所有)"),
]


@dataclass(frozen=True)
class CleanText:
    """Clean text plus what was removed, so a caller can report it."""

    text: str
    removed_boilerplate: tuple[str, ...] = ()
    publication_hint: str = ""  # e.g. "新浪" from "新浪聲明：..."


def is_full_width(char: str) -> bool:
    """True for CJK ideographs and CJK/fullwidth punctuation (they take a full column)."""
    code = ord(char)
    return (
        0x3000 <= code <= 0x303F  # CJK punctuation
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # fullwidth forms: ，：（）
        or 0x20000 <= code <= 0x2FA1F
        or code in (0x201C, 0x201D, 0x2018, 0x2019, 0x2014, 0x2026, 0x00B7)
    )


def visual_width(line: str) -> float:
    """Printed width in columns: a CJK character is one, Latin letters, digits and spaces half."""
    return sum(1.0 if is_full_width(char) else 0.5 for char in line)


def clean_text(raw: str) -> CleanText:
    """Turn raw article text into clean paragraphs separated by single newlines.

    Args:
        raw: text as found (PDF extraction or web page), any newline style.

    Returns:
        CleanText with the reader's text and the boilerplate that was dropped.
    """
    text = raw.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    text = _drop_control_chars(text)
    text = strip_pinyin(text)
    paragraphs = _join_printed_lines(text.split("\n"))
    paragraphs = [_remove_cjk_spaces(p) for p in paragraphs]
    kept: list[str] = []
    removed: list[str] = []
    for paragraph in paragraphs:
        if not paragraph:
            continue
        (removed if _is_boilerplate(paragraph) else kept).append(paragraph)
    hint = ""
    for line in removed:
        match = re.match(r"^(\S{1,8}?)(免责)?(声明|聲明)", line)
        if match:
            hint = match.group(1)
    return CleanText("\n".join(kept), tuple(removed), hint)


def _drop_control_chars(text: str) -> str:
    out = []
    for char in text:
        if char in "\n\t":
            out.append(" " if char == "\t" else char)
        elif char in "\u00a0\u3000\u200b\u200c\u200d\ufeff":
            # NBSP, ideographic space and zero-width marks act as (or hide) spaces in extractions.
            out.append(" ")
        elif unicodedata.category(char) == "Cc":
            continue
        else:
            out.append(char)
    return "".join(out)


def _is_boilerplate(paragraph: str) -> bool:
    simplified = to_simplified(paragraph.strip())
    return any(pattern.search(simplified) for pattern in _BOILERPLATE)


def _ends_sentence(line: str) -> bool:
    stripped = line.rstrip().rstrip(CLOSERS)
    return bool(stripped) and stripped[-1] in SENTENCE_END


def _join_printed_lines(lines: list[str]) -> list[str]:
    """Undo the hard break a PDF extraction puts after every printed line.

    A printed column has a fixed width, so a line that fills it was broken by the
    layout, not by the author: it continues on the next line. A paragraph's last
    line ends a sentence and stops short of the column; a heading is clearly short
    and ends no sentence. Text whose lines are much longer than a column (a web
    page: one paragraph a line) is left as it is.
    """
    lines = [line.strip() for line in lines if line.strip()]
    # Blank lines separate printed lines in some extractions and paragraphs in
    # others, so they carry no meaning here: the widths decide.
    if not lines:
        return []
    widths = [visual_width(line) for line in lines]
    if not _is_hard_wrapped(widths):
        return lines

    return join_lines(lines, widths, lambda index: _local_column(widths, index))


def join_lines(lines: list[str], widths: list[float], column_at: Callable[[int], float]) -> list[str]:
    """Join printed lines into paragraphs, `column_at(i)` being the column width at
    line i (how to measure it depends on the source: see `_local_column`, and
    `join_printed_lines`, for text whose every line break is the layout's)."""
    paragraphs: list[str] = []
    current = ""
    for index, line in enumerate(lines):
        column = column_at(index)
        # Body lines fill the column except for a two-character indent on a
        # paragraph's first line; a line shorter than that which ends no sentence
        # is a heading. Bylines and captions ("▶ 本报记者 ...") stand alone too.
        heading = line.startswith(BYLINE_MARKS) or (
            widths[index] < column - 3.5
            and not _ends_sentence(line)
            and not any(mark in line for mark in "，,、；;：:")  # headings have no clauses
        )
        if current and heading and (_ends_sentence(current) or line.startswith(BYLINE_MARKS)):
            paragraphs.append(current)
            current = ""
        current = _glue(current, line) if current else line
        if heading or (_ends_sentence(line) and widths[index] < column - 0.75):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return paragraphs


def join_printed_lines(lines: list[str]) -> list[str]:
    """Join the printed lines of a PDF text layer into paragraphs.

    The rules are this module's: a line that fills its column runs on into the next; a
    paragraph ends on a sentence that stops short of the column; a short line with
    no clause and no sentence end is a heading and stands alone, as does a byline.
    clean_text applies them only when the widths alone show hard-wrapped text (a
    column of 40 characters at most), since a text file's author may have chosen
    its line length. Every line break in a PDF is the layout's, so here they apply
    at any width (a full A4 line is 45 characters).
    """
    widths = [visual_width(line) for line in lines]

    def column_at(index: int) -> float:
        # Measured on the neighbouring lines, as a page can mix widths: the median of
        # those that come near the widest, since headings, menus and the short last
        # lines of paragraphs can be half the lines at a page's top.
        nearby = widths[max(0, index - 4) : index + 5]
        return statistics.median([width for width in nearby if width >= 0.6 * max(nearby)])

    return join_lines(lines, widths, column_at)


def _is_hard_wrapped(widths: list[float]) -> bool:
    """True when most lines are about one narrow printed column wide."""
    if len(widths) < 8:
        return False
    return statistics.quantiles(widths, n=4)[2] <= 40


def _local_column(widths: list[float], index: int, reach: int = 5) -> float:
    # A newspaper page mixes columns of different widths (a summary box is twice as
    # wide), so the column is measured on the neighbouring lines; most of them
    # fill it, so their median is the column width.
    return statistics.median(widths[max(0, index - reach) : index + reach + 1])


def _glue(left: str, right: str) -> str:
    # English words broken across lines need their space back; CJK never had one.
    if left[-1].isascii() and left[-1].isalnum() and right[0].isascii() and right[0].isalnum():
        if not (left[-1].isdigit() and right[0].isdigit()):
            return left + " " + right
    return left + right


_SPACE_RUN = re.compile(r"[ \t]+")


def _remove_cjk_spaces(paragraph: str) -> str:
    """Drop spaces the extraction put between CJK characters (`如 何 抢 抓`, `8 月 24 日`).

    Spaces between Latin words stay; a space between a CJK character and a digit
    goes too, since print layout, not the author, put it there.
    """
    paragraph = _SPACE_RUN.sub(" ", paragraph).strip()
    if " " not in paragraph:
        return paragraph
    out = []
    for index, char in enumerate(paragraph):
        if char == " ":
            left = paragraph[index - 1] if index > 0 else ""
            right = paragraph[index + 1] if index + 1 < len(paragraph) else ""
            if left and right and _joins_without_space(left, right):
                continue
        out.append(char)
    return "".join(out)


def _joins_without_space(left: str, right: str) -> bool:
    if is_full_width(left) and (is_full_width(right) or right.isdigit()):
        return True
    if left.isdigit() and is_full_width(right):
        return True
    # "1.2 万" / "37 %": a number and its unit.
    if left.isdigit() and right in "%％":
        return True
    return False
