"""Follow-up questions resolved against the previous one, and left alone when they stand alone."""

from __future__ import annotations

import pytest

from qa.search.followup import resolve_followup, resolve_history


@pytest.mark.parametrize(
    "question, previous, expected",
    [
        ("那洛阳呢？", "知识城与新加坡签署了多少份合作备忘录？", "洛阳与新加坡签署了多少份合作备忘录？"),
        ("那洛阳呢？", "昆山高新区如何开展安全生产工作？", "洛阳如何开展安全生产工作？"),
        ("昆山呢?", "洛阳将实施什么人才计划？", "昆山将实施什么人才计划？"),
        ("那洛陽呢？", "知識城在人形機器人領域有布局嗎？", "洛陽在人形機器人領域有布局嗎？"),
        ("那有多少人参加？", "研讨会在哪里举办？", "研讨会有多少人参加？"),
        (
            "它的规划期是哪几年？",
            "中新广州知识城总体发展规划的目标是什么？",
            "中新广州知识城总体发展规划的规划期是哪几年？",
        ),
        (
            "And Kunshan?",
            "What talent programme does Luoyang plan to implement?",
            "What talent programme does Kunshan plan to implement?",
        ),
        (
            "What about Luoyang?",
            "How many memoranda did Knowledge City sign with Singapore?",
            "How many memoranda did Luoyang sign with Singapore?",
        ),
        ("When was it founded?", "What does Knowledge City focus on?", "When was Knowledge City founded?"),
        (
            "And what about Kunshan?",
            "What talent programme does Luoyang plan to implement?",
            "What talent programme does Kunshan plan to implement?",
        ),
    ],
)
def test_follow_up_becomes_a_standalone_question(question, previous, expected):
    assert resolve_followup(question, previous) == expected


@pytest.mark.parametrize(
    "question, previous",
    [
        ("昆山高新区如何开展安全生产工作？", "洛阳将实施什么人才计划？"),  # a new question of its own
        ("知识城有多少企业呢？", "洛阳将实施什么人才计划？"),  # ends in 呢 but asks its own thing
        ("What talent programme does Luoyang plan to implement?", "How many memoranda did Knowledge City sign?"),
        ("那洛阳呢？", ""),  # nothing to lean on
        ("还有呢？", "知识城与新加坡签署了多少份合作备忘录？"),  # names no new topic
        ("那呢？", "知识城与新加坡签署了多少份合作备忘录？"),
    ],
)
def test_standalone_question_is_left_alone(question, previous):
    assert resolve_followup(question, previous) == question.strip()


def test_a_chain_of_follow_ups_keeps_the_first_predicate():
    assert resolve_history(["知识城与新加坡签署了多少份合作备忘录？", "那洛阳呢？", "那昆山呢？"]) == [
        "知识城与新加坡签署了多少份合作备忘录？",
        "洛阳与新加坡签署了多少份合作备忘录？",
        "昆山与新加坡签署了多少份合作备忘录？",
    ]
