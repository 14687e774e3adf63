"""Follow-up questions: a short question that leans on the one before it (那洛阳呢？,
"And Kunshan?", 它的规划期是哪几年？) rewritten as a question that stands alone.

Rules, no model: a follow-up names a new topic, which replaces the topic of the
previous question; a pronoun at its start is replaced by that topic. The previous
question's topic is what comes before its first predicate word (知识城 in
知识城与新加坡签署了…), or in English the capitalised name after its auxiliary verb
("does Luoyang plan"). A question that does not look like a follow-up is left as it
is, so a new question is never bent towards the old one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qa.text.script import has_han, to_simplified_chars

__all__ = ["resolve_followup", "resolve_history", "rewrite_followup"]

# The longest new topic a follow-up names ("那昆山高新区呢" is 5); longer text is a question.
MAX_TOPIC_CHARS = 12

_END_PUNCTUATION = "？?。！!…. "
_ZH_TAILS = ("呢", "怎么样", "怎麼樣", "又如何", "如何", "又怎样", "又怎樣")
_ZH_FOLLOWUP = re.compile(
    rf"^(?P<lead>那么|那末|那麼|那|还有|還有|而|至于|至於)?(?P<topic>.{{1,{MAX_TOPIC_CHARS}}}?)(?P<tail>{'|'.join(_ZH_TAILS)})?$"
)
# Longest alternative first: "and" would otherwise take "And what about X?" and leave
# "what about X" as the topic.
_EN_FOLLOWUP = re.compile(r"^(?:and what about|what about|how about|and)\s+(?P<topic>.{1,60}?)$", re.IGNORECASE)
# A pronoun standing for the previous topic at the start of a Chinese question.
_ZH_PRONOUN = re.compile(r"^(它们|它們|他们|他們|它|其|该地|該地|该区|該區|这里|這裡|那里|那裡)")
_EN_PRONOUN = re.compile(r"\b(it|its|they|their|there)\b", re.IGNORECASE)

# Where the topic of a Chinese question ends: the first predicate, preposition or
# adverb after it (simplified; traditional questions are matched in simplified form).
_ZH_TOPIC_END = re.compile(
    "与|和|跟|在|的|将|如何|怎么|怎样|为什么|为何|有|是|对|把|被|从|通过|今年|去年|目前|已经|"
    "大约|一共|总共|主要|采取|开展|实施|签署|计划|推动|引进|提出|举办|召开|参加|发布|建设|打造|获得|"
    "多少|哪|什么|几"
)
# A topic holding one of these is a question of its own (simplified forms).
_ZH_QUESTION_WORD = re.compile("多少|什么|哪|几|如何|怎么|怎样|吗|为什么|为何|是否|有没有|谁")
_EN_AUXILIARY = re.compile(
    r"\b(?:does|did|do|is|are|was|were|has|have|had|will|would|can|could|should)\s+", re.IGNORECASE
)
_EN_NAME = re.compile(r"(?:the\s+)?(?:[A-Z][\w'-]*)(?:\s+(?:[A-Z][\w'-]*|of|and))*(?<!\sof)(?<!\sand)")
_EN_QUESTION_WORDS = {
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "is",
    "are",
    "does",
    "do",
    "did",
}


def resolve_followup(question: str, previous: str) -> str:
    """`question` as a stand-alone question, given the (stand-alone) question before it.

    Returns `question` unchanged when it does not read as a follow-up, or when there
    is no previous question.

    Example:
        >>> resolve_followup("那洛阳呢？", "知识城与新加坡签署了多少份合作备忘录？")
        '洛阳与新加坡签署了多少份合作备忘录？'
    """
    return rewrite_followup(question, previous)[0]


def rewrite_followup(question: str, previous: str) -> tuple[str, str]:
    """`resolve_followup`, and the new topic the rewrite swapped in ("" when it swapped
    none in): the verdict asks that the answer come from an article naming it.

    Example:
        >>> rewrite_followup("那杭州呢？", "知识城与新加坡签署了多少份合作备忘录？")
        ('杭州与新加坡签署了多少份合作备忘录？', '杭州')
    """
    question, previous = question.strip(), (previous or "").strip()
    if not question or not previous or question == previous:
        return question, ""
    if has_han(question):
        return _resolve_chinese(question, previous)
    return _resolve_english(question, previous)


def resolve_history(questions: Iterable[str]) -> list[str]:
    """Each question of a conversation resolved against the resolved one before it
    (a chain 知识城… → 那洛阳呢？ → 那昆山呢？ keeps the predicate of the first)."""
    resolved: list[str] = []
    for question in questions:
        resolved.append(resolve_followup(question, resolved[-1] if resolved else ""))
    return resolved


# -- Chinese ---------------------------------------------------------------------------


def _resolve_chinese(question: str, previous: str) -> tuple[str, str]:
    topic_span = _chinese_topic(previous)
    if topic_span is None or not has_han(previous):
        return question, ""
    start, end = topic_span
    bare = question.rstrip(_END_PUNCTUATION)
    pronoun = _ZH_PRONOUN.match(bare)
    if pronoun and len(bare) > len(pronoun.group(0)):
        # 它的规划期是哪几年？ → 知识城的规划期是哪几年？
        return previous[start:end] + question[pronoun.end() :], ""
    match = _ZH_FOLLOWUP.match(bare)
    if not match or not (match.group("lead") or match.group("tail")):
        return question, ""
    topic = match.group("topic").strip(" ，,")
    if topic in _ZH_TAILS:
        return question, ""  # 还有呢？ names no new topic: the lazy topic took the tail
    if topic and _ZH_QUESTION_WORD.search(to_simplified_chars(topic)):
        if match.group("lead") and _ZH_TOPIC_END.match(to_simplified_chars(topic)):
            # 那有多少人参加？ keeps the topic and asks something new about it.
            return previous[start:end] + question[match.start("topic") :], ""
        return question, ""  # 知识城有多少企业呢？ asks a question of its own
    if not topic:
        return question, ""
    return previous[:start] + topic + previous[end:], topic


def _chinese_topic(question: str) -> tuple[int, int] | None:
    """Offsets of the topic at the start of a Chinese question, or None."""
    simplified = to_simplified_chars(question)
    if simplified.startswith("《"):
        close = simplified.find("》")
        return (0, close + 1) if close > 0 else None
    end = _ZH_TOPIC_END.search(simplified, 1)
    if end is None or end.start() < 2:
        return None
    return 0, end.start()


# -- English ---------------------------------------------------------------------------


def _resolve_english(question: str, previous: str) -> tuple[str, str]:
    topic_span = _english_topic(previous)
    if topic_span is None:
        return question, ""
    start, end = topic_span
    topic = previous[start:end]
    bare = question.rstrip(_END_PUNCTUATION)
    match = _EN_FOLLOWUP.match(bare)
    if match:
        new_topic = match.group("topic").strip()
        return previous[:start] + new_topic + previous[end:], new_topic
    words = bare.split()
    if len(words) <= 8 and _EN_PRONOUN.search(bare):
        # "When was it founded?" → "When was Knowledge City founded?"
        return _EN_PRONOUN.sub(
            lambda m: topic + "'s" if m.group(1).lower() in ("its", "their") else topic, question, count=1
        ), ""
    return question, ""


def _english_topic(question: str) -> tuple[int, int] | None:
    """Offsets of the subject name of an English question, or None.

    The subject of an English question follows its auxiliary verb ("How many
    agreements did Knowledge City sign"); failing that, the first capitalised name
    that is not the question word.
    """
    auxiliary = _EN_AUXILIARY.search(question)
    if auxiliary:
        name = _EN_NAME.match(question, auxiliary.end())
        if name:
            return name.start(), name.end()
    for name in _EN_NAME.finditer(question):
        first = name.group(0).split()[0].lower()
        if name.start() == 0 and first in _EN_QUESTION_WORDS:
            continue
        return name.start(), name.end()
    return None
