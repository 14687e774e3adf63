"""What kind of answer a question expects, and whether a sentence holds one.

Classic question answering narrows candidates by expected answer type: "how many"
wants a number (of the unit asked for: 多少家 wants 50余家, not 15个), "which ones"
a list, "when" a date. Only these three coarse types are recognised, in Chinese and
English; any other question expects nothing in particular.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.text.normalize import match_form

QUANTITY = "quantity"
LIST = "list"
TIME = "time"

_NUMERAL = r"(?:\d[\d.,]*|[零一二两三四五六七八九十百千万亿]+)"
_CLASSIFIERS = "个家所项次份条处人名位种点倍元年天月届场批只台辆座"

_TIME_QUESTION = re.compile(r"哪一?年|哪个月|哪天|何时|什么时候|几月|几号|\bwhen\b|\bwhat year\b|\bwhich year\b")
_QUANTITY_QUESTION = re.compile(
    rf"(?:多少|几)(人次|[{_CLASSIFIERS}])?|多大|多长|多高|多远|百分之几"
    r"|\bhow (?:many|much|large|big|long|far|often)\b|\bwhat (?:percentage|share|number)\b"
)
_LIST_QUESTION = re.compile(r"哪些|哪几|哪两|有什么|\bwhat are\b|\bname the\b")
_PAIR = re.compile(r"哪两|两个|\btwo\b")

_DATE = re.compile(r"\d{4}\s*年|\d{1,2}\s*月\s*\d{1,2}\s*日|\d{4}-\d{2}")
_ANY_NUMBER = re.compile(rf"\d|{_NUMERAL}(?:余|多)?[{_CLASSIFIERS}]")


@dataclass(frozen=True)
class Expected:
    kind: str
    unit: str = ""  # for QUANTITY: the classifier asked for (家, 次, 人次), if any
    items: int = 3  # for LIST: how many items a list answer names at least


def expected_answer(question: str) -> Expected | None:
    """The kind of answer `question` asks for, or None."""
    form = match_form(question)
    if _TIME_QUESTION.search(form):
        return Expected(TIME)
    match = _QUANTITY_QUESTION.search(form)
    if match:
        return Expected(QUANTITY, unit=(match.group(1) or "") if match.lastindex else "")
    if _LIST_QUESTION.search(form):
        return Expected(LIST, items=2 if _PAIR.search(form) else 3)
    return None


def sentence_fits(expected: Expected, sentence: str) -> bool:
    """Whether `sentence` holds an answer of the expected kind."""
    if expected.kind == TIME:
        return bool(_DATE.search(sentence))
    if expected.kind == QUANTITY:
        if not expected.unit:
            return bool(_ANY_NUMBER.search(sentence))
        unit = re.escape(expected.unit)
        return bool(re.search(rf"{_NUMERAL}\s*(?:余|多)?\s*(?:万|亿|千|百)?\s*{unit}", sentence))
    if expected.kind == LIST:
        separators = expected.items - 1
        # Items of one enumeration: short runs joined by 、 (or ", " in Latin text).
        return bool(re.search(rf"[^、，,；;。]{{1,16}}(?:、[^、，,；;。]{{1,16}}){{{separators},}}", sentence))
    return False
