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
# Measure words and units a counted answer is given in (八十支队伍, 八百吨, 三公里):
# a numeral in Chinese characters counts as a number only before one of them. Not
# 起, 部 or 分, whose 一起 (together), 一部分 (a part) and 一分为二 are not counts.
# Longest first, so 多少平方米 asks for 平方米, not 米.
_UNITS = (
    "人次|平方公里|平方千米|平方米|立方米|公里|千米|公斤|千克|公顷|小时|分钟|美元|港元|欧元|英镑|日元"
    "|[个家所项次份条处人名位种点倍元年天月届场批只台辆座支吨米亩斤克架艘本张件栋户头匹篇首幅棵间层岁秒周枚颗块例宗轮期]"
)

_TIME_QUESTION = re.compile(r"哪一?年|哪个月|哪天|何时|什么时候|几月|几号|\bwhen\b|\bwhat year\b|\bwhich year\b")
_QUANTITY_QUESTION = re.compile(
    rf"(?:多少|几)({_UNITS})?|多大|多长|多高|多远|百分之几"
    r"|\bhow (?:many|much|large|big|long|far|often)\b|\bwhat (?:percentage|share|number)\b"
)
_LIST_QUESTION = re.compile(r"哪些|哪几|哪两|有什么|\bwhat are\b|\bname the\b")
_PAIR = re.compile(r"哪两|两个|\btwo\b")

_DATE = re.compile(r"\d{4}\s*年|\d{1,2}\s*月\s*\d{1,2}\s*日|\d{4}-\d{2}")
_ANY_NUMBER = re.compile(rf"\d|{_NUMERAL}(?:余|多)?(?:{_UNITS})|百分之")


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
