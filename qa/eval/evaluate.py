"""Measure retrieval on a question file or a benchmark folder: Recall@1, Recall@5,
MRR@10, the no-answer rates and latency.

The question format and the gold-matching rule are those of shared/eval/README.md:
a returned passage answers when a normalised gold string is a substring of it, and,
for questions with a `source` (shared/bench), when it comes from that article.
A benchmark folder holds `corpus/` and `questions.jsonl`; its index is built once in
its own cache folder and rebuilt when that corpus or the settings change.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from qa.errors import IndexCorruptError, IndexNotFoundError, QAError, StaleIndexError
from qa.search.calibration import calibration_for
from qa.search.judge import JudgeParams, judge, load_params
from qa.settings import Settings
from qa.text.normalize import eval_form

DEPTH = 10  # MRR@10 looks at the first ten passages
QUESTIONS_FILE = "questions.jsonl"
CORPUS_FOLDER = "corpus"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    gold: tuple[str, ...]
    unanswerable: bool
    lang: str = ""
    source: str = ""  # the article the question was written from (benchmarks)


@dataclass(frozen=True)
class QuestionResult:
    """Where the first answering passage came (1-based, None if not in the top 10), the
    verdict, the judge's features and probability, and the time to rank."""

    question: Question
    first_answer_rank: int | None
    verdict: str
    probability: float
    features: dict = field(default_factory=dict)
    milliseconds: float = 0.0

    @property
    def found(self) -> bool:
        return self.verdict == "found"


@dataclass(frozen=True)
class Metrics:
    mode: str
    answerable: int
    unanswerable: int
    recall_at_1: float
    recall_at_5: float
    mrr_at_10: float
    unanswerable_flagged: float  # share of unanswerable questions not shown as found
    unanswerable_reported: float  # share reported as "nothing found"
    answerable_hidden: float  # share of answerable questions reported as "nothing found"
    answerable_unsure: float  # share shown under "these may not answer it"
    p50_ms: float  # time to analyse, embed and rank one question
    p95_ms: float

    def line(self) -> str:
        return (
            f"{self.mode:8s} R@1 {self.recall_at_1:.3f}  R@5 {self.recall_at_5:.3f}  MRR@10 {self.mrr_at_10:.3f}  "
            f"unanswerable flagged {self.unanswerable_flagged:.2f} (nothing found {self.unanswerable_reported:.2f})  "
            f"answerable hidden {self.answerable_hidden:.3f}, unsure {self.answerable_unsure:.3f}  "
            f"p50 {self.p50_ms:.0f} ms"
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
    except UnicodeDecodeError as error:
        raise QAError(f"{path} is not UTF-8 text (byte {error.start}); a question file is JSON lines") from None
    questions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            questions.append(_question(json.loads(line), number))
        except (ValueError, KeyError, TypeError) as error:
            raise QAError(
                f"{path} line {number} is not a question record ({str(error)[:120]}); see eval/README.md"
            ) from error
    if not questions:
        raise QAError(f"{path} holds no questions")
    return questions


def _question(record: object, number: int) -> Question:
    """One line's record as a Question; TypeError or KeyError says what is wrong."""
    if not isinstance(record, dict):
        raise TypeError(f"a JSON object is needed, got {type(record).__name__}")
    question, gold = record["q"], record.get("gold") or []
    if not isinstance(question, str) or not question.strip():
        raise TypeError("q must be the question's text")
    if isinstance(gold, str) or not isinstance(gold, list) or not all(isinstance(item, str) for item in gold):
        # A string would be read character by character: every metric silently wrong.
        raise TypeError("gold must be a list of answer strings")
    return Question(
        id=str(record.get("id", number)),
        question=question,
        gold=tuple(gold),
        unanswerable=bool(record.get("unanswerable", False)),
        lang=str(record.get("lang", "")),
        source=str(record.get("source", "") or ""),
    )


def answers(passage: str, gold: tuple[str, ...]) -> bool:
    """The eval README's rule: a normalised gold string occurs in the normalised passage."""
    form = eval_form(passage)
    return any(eval_form(g) and eval_form(g) in form for g in gold)


def first_answer_rank(
    passages: list[tuple[str, str]], question: Question, also: list[list[tuple[str, str]]] | None = None
) -> int | None:
    """1-based rank of the first (source, text) passage that answers `question`.

    `also[i]`: the (source, text) copies in other articles that result i names as "also
    reported by"; a copy counts at that rank under the same rule, its own text and file.
    """
    for rank, (source, text) in enumerate(passages[:DEPTH], 1):
        members = [(source, text), *(also[rank - 1] if also else ())]
        for member_source, member_text in members:
            if question.source and member_source != question.source:
                continue  # a benchmark hit counts only from the question's own article
            if answers(member_text, question.gold):
                return rank
    return None


def ranking_answer_rank(retriever, ranked: list, texts: list[str], question: Question) -> int | None:
    """`first_answer_rank` of a ranking (`qa.search.retriever.Ranked`, best first, with
    shown `texts`), its "also reported by" copies counted as a reader is shown them.

    The one reading of a ranking's rank: the metrics and the judge's fit (qa/eval/fit_judge.py).
    """
    passages = [(r.source, text) for r, text in zip(ranked, texts)]
    copies = [[(source, retriever.text_at(source, context)) for source, context in r.also] for r in ranked]
    return first_answer_rank(passages, question, copies)


def compute_metrics(results: list[QuestionResult], mode: str) -> Metrics:
    answerable = [r for r in results if not r.question.unanswerable]
    unanswerable = [r for r in results if r.question.unanswerable]

    def share(items, predicate) -> float:
        return sum(1 for item in items if predicate(item)) / len(items) if items else 0.0

    times = sorted(r.milliseconds for r in results) or [0.0]
    return Metrics(
        mode=mode,
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        recall_at_1=share(answerable, lambda r: r.first_answer_rank == 1),
        recall_at_5=share(answerable, lambda r: r.first_answer_rank is not None and r.first_answer_rank <= 5),
        mrr_at_10=(sum(1.0 / r.first_answer_rank for r in answerable if r.first_answer_rank) / len(answerable))
        if answerable
        else 0.0,
        unanswerable_flagged=share(unanswerable, lambda r: r.verdict != "found"),
        unanswerable_reported=share(unanswerable, lambda r: r.verdict == "not_found"),
        answerable_hidden=share(answerable, lambda r: r.verdict == "not_found"),
        answerable_unsure=share(answerable, lambda r: r.verdict == "unsure"),
        p50_ms=statistics.median(times),
        p95_ms=times[min(len(times) - 1, int(0.95 * len(times)))],
    )


def evaluate(
    questions: list[Question], retriever, mode: str = "hybrid", params: JudgeParams | None = None
) -> tuple[Metrics, list[QuestionResult]]:
    """Run every question through `retriever` in `mode` and score the rankings.

    One ranking serves the metrics, the judge's verdict and the timing.
    """
    params = params or load_params()
    # The corpus's null distribution, made now if its build did not (qa/search/calibration.py).
    calibration = calibration_for(retriever)
    # One question first, untimed: the first call pays for lazy loading (jieba's
    # dictionary, the model's first forward pass), which is start-up, not a question.
    retriever.rank(retriever.analyse(questions[0].question), DEPTH, mode)
    results = []
    for question in questions:
        started = time.perf_counter()
        query = retriever.analyse(question.question)
        ranked = retriever.rank(query, DEPTH, mode)
        milliseconds = 1000 * (time.perf_counter() - started)
        texts = [retriever.passage_text(r) for r in ranked]
        judgement = judge(query, ranked, retriever.index, texts, calibration, params)
        results.append(
            QuestionResult(
                question,
                ranking_answer_rank(retriever, ranked, texts, question),
                judgement.verdict,
                judgement.probability,
                judgement.features,
                milliseconds,
            )
        )
    return compute_metrics(results, mode), results


def benchmark_settings(folder: Path, settings: Settings) -> tuple[Settings, Path]:
    """Settings whose corpus is the benchmark's and whose index lives in the cache, and
    the benchmark's question file.

    Raises:
        QAError: the folder lacks `corpus/` or `questions.jsonl`.
    """
    folder = Path(folder)
    corpus, questions = folder / CORPUS_FOLDER, folder / QUESTIONS_FILE
    if not corpus.is_dir() or not questions.is_file():
        raise QAError(
            f"{folder} is not a benchmark folder: it needs {CORPUS_FOLDER}/ (the articles) and "
            f"{QUESTIONS_FILE} (see shared/bench/README.md)"
        )
    # One cache folder per benchmark path, so two benchmarks never share an index.
    tag = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:10]
    index_dir = Path(settings.cache_dir) / "bench" / f"{folder.resolve().name}-{tag}"
    # Nor a Milvus collection: a named one gets the benchmark's tag (unnamed ones are
    # derived from the index folder already).
    collection = f"{settings.milvus_collection}_{tag}" if settings.milvus_collection else ""
    return replace(settings, corpus_dir=corpus, index_dir=index_dir, milvus_collection=collection), questions


def ensure_index(settings: Settings, encoder=None, log=None) -> None:
    """Build the index named by `settings` unless it is there and up to date."""
    from qa.index.build import build_index
    from qa.index.freshness import corpus_changes
    from qa.index.read import load_index

    try:
        why = "corpus changed" if corpus_changes(load_index(settings).manifest, settings) else ""
    except (IndexNotFoundError, StaleIndexError, IndexCorruptError) as error:
        why = error.__class__.__name__.replace("Error", "").lower()
    if why:
        # The cache is ours to update: a user cannot fix it with `qa build`.
        if log:
            log(f"building the benchmark index ({why})")
        build_index(settings, encoder=encoder, progress=log is not None, log=log)
