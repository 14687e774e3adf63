"""Measure retrieval on a question file: Recall@1, Recall@5, MRR@10 and the no-answer rates.

The question format and the gold-matching rule are those of shared/eval/README.md:
a passage answers when a normalised gold string is a substring of it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from qa.errors import QAError
from qa.normalize import eval_form

DEPTH = 10  # MRR@10 looks at the first ten passages


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    gold: tuple[str, ...]
    unanswerable: bool
    lang: str = ""


@dataclass(frozen=True)
class QuestionResult:
    """Where the first answering passage came (1-based, None if not in the top 10), and the verdict."""

    question: Question
    first_answer_rank: int | None
    found: bool


@dataclass(frozen=True)
class Metrics:
    mode: str
    answerable: int
    unanswerable: int
    recall_at_1: float
    recall_at_5: float
    mrr_at_10: float
    unanswerable_reported: float  # share of unanswerable questions reported as not found
    answerable_missed: float  # share of answerable questions wrongly reported as not found

    def line(self) -> str:
        return (
            f"{self.mode:8s} R@1 {self.recall_at_1:.3f}  R@5 {self.recall_at_5:.3f}  "
            f"MRR@10 {self.mrr_at_10:.3f}  no-answer: unanswerable reported "
            f"{self.unanswerable_reported:.2f}, answerable missed {self.answerable_missed:.2f}"
        )

    def to_dict(self) -> dict:
        return asdict(self)


def load_questions(path: Path) -> list[Question]:
    """Read a JSON-lines question file.

    Raises:
        QAError: the file is missing or a line is not a valid question.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise QAError(f"cannot read question file {path}: {error.strerror or error}") from error
    questions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            questions.append(
                Question(
                    id=str(record.get("id", number)),
                    question=record["q"],
                    gold=tuple(record.get("gold") or ()),
                    unanswerable=bool(record.get("unanswerable", False)),
                    lang=record.get("lang", ""),
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise QAError(f"{path} line {number} is not a question record ({error}); see shared/eval/README.md") from error
    if not questions:
        raise QAError(f"{path} holds no questions")
    return questions


def answers(passage: str, gold: tuple[str, ...]) -> bool:
    """The eval README's rule: a normalised gold string occurs in the normalised passage."""
    form = eval_form(passage)
    return any(eval_form(g) and eval_form(g) in form for g in gold)


def first_answer_rank(passages: list[str], gold: tuple[str, ...]) -> int | None:
    for rank, passage in enumerate(passages[:DEPTH], 1):
        if answers(passage, gold):
            return rank
    return None


def compute_metrics(results: list[QuestionResult], mode: str) -> Metrics:
    answerable = [r for r in results if not r.question.unanswerable]
    unanswerable = [r for r in results if r.question.unanswerable]

    def share(items, predicate) -> float:
        return sum(1 for item in items if predicate(item)) / len(items) if items else 0.0

    return Metrics(
        mode=mode,
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        recall_at_1=share(answerable, lambda r: r.first_answer_rank == 1),
        recall_at_5=share(answerable, lambda r: r.first_answer_rank is not None and r.first_answer_rank <= 5),
        mrr_at_10=(sum(1.0 / r.first_answer_rank for r in answerable if r.first_answer_rank) / len(answerable))
        if answerable
        else 0.0,
        unanswerable_reported=share(unanswerable, lambda r: not r.found),
        answerable_missed=share(answerable, lambda r: not r.found),
    )


def evaluate(questions: list[Question], retriever, mode: str = "hybrid") -> tuple[Metrics, list[QuestionResult]]:
    """Run every question through `retriever` in `mode` and score the rankings."""
    from qa.answer import judge

    results = []
    for question in questions:
        # One ranking serves both the metrics and the found/not-found verdict.
        ranked = retriever.rank(question.question, DEPTH, mode)
        passages = [retriever.index.chunks[r.row].text for r in ranked]
        found = judge(question.question, ranked, retriever)
        results.append(QuestionResult(question, first_answer_rank(passages, question.gold), found))
    return compute_metrics(results, mode), results
