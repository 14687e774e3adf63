"""The limits a caller meets at every face (Python, CLI, HTTP, web): how many passages,
which ranking modes, what counts as a question. Defined once, checked at the edge.
"""

from __future__ import annotations

from typing import Literal

from qa.errors import QuestionError, SettingsError

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")
# More than a page of passages is never read; the cap also bounds a question's work.
MAX_K = 50


def validate_question(question: str, max_chars: int) -> str:
    """The question stripped, or QuestionError when it is not text, empty, without a
    letter, digit or ideograph, or too long."""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, got {type(question).__name__}")
    question = question.strip()
    if not question:
        raise QuestionError("the question is empty; type a question about the articles")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8, or JSON's "\ud800"
        raise QuestionError("the question holds characters that are not valid text; type it again") from None
    # Letters, digits and ideographs are what a search can match; punctuation alone
    # (？？！!...) matched everything a little and was answered "found" with five passages.
    if not any(character.isalnum() for character in question):
        raise QuestionError(
            "the question has no words, only punctuation or symbols; type a question about the articles"
        )
    if len(question) > max_chars:
        raise QuestionError(
            f"the question is {len(question)} characters long; the limit is {max_chars}: ask about one thing at a time"
        )
    return question


def validate_k(k: int) -> int:
    """Return `k` if it is a number of passages a user may ask for, else raise SettingsError."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise SettingsError(f"k must be between 1 and {MAX_K}, got {k!r}")
    return k


def validate_mode(mode: str) -> str:
    """Return `mode` if it is one of MODES, else raise SettingsError."""
    if mode not in MODES:
        raise SettingsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode
