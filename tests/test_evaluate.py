"""The evaluation rule and metrics, checked on cases small enough to compute by hand."""

from __future__ import annotations

import json

import pytest

from qa.errors import QAError
from qa.evaluate import Question, QuestionResult, answers, compute_metrics, first_answer_rank, load_questions


def q(id, unanswerable=False):
    return Question(id=id, question="?", gold=() if unanswerable else ("x",), unanswerable=unanswerable)


def test_metrics_on_a_hand_computed_case():
    results = [
        QuestionResult(q("a"), 1, True),  # first place
        QuestionResult(q("b"), 3, True),  # third place: counts for R@5, 1/3 for MRR
        QuestionResult(q("c"), 7, False),  # seventh: only MRR, and wrongly "not found"
        QuestionResult(q("d"), None, True),  # not in the top 10
        QuestionResult(q("u1", True), None, False),  # correctly "not found"
        QuestionResult(q("u2", True), None, True),  # wrongly "found"
    ]
    metrics = compute_metrics(results, "hybrid")
    assert metrics.answerable == 4 and metrics.unanswerable == 2
    assert metrics.recall_at_1 == pytest.approx(1 / 4)
    assert metrics.recall_at_5 == pytest.approx(2 / 4)
    assert metrics.mrr_at_10 == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    assert metrics.unanswerable_reported == pytest.approx(1 / 2)
    assert metrics.answerable_missed == pytest.approx(1 / 4)


def test_gold_matching_follows_the_eval_readme():
    # Traditional script, pinyin annotation, spaces and punctuation are all normalised away.
    passage = "知識城與新加坡的合作日益緊密，簽署了 81 份合作備忘錄。發(fā)展"
    assert answers(passage, ("签署了81份合作备忘录",))
    assert answers(passage, ("发展",))
    assert not answers(passage, ("82份",))
    # "." and "%" are kept, so 1.2万 does not match 12万.
    assert answers("共发放相关宣传资料1.2万份", ("1.2万份",))
    assert not answers("共发放相关宣传资料12万份", ("1.2万份",))
    assert first_answer_rank(["无关", "也无关", "同比增长 37%。"], ("同比增长37%",)) == 3
    assert first_answer_rank(["无关"], ("同比增长37%",)) is None


def test_question_file_errors_name_the_line(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text('{"id": "1", "q": "问题？", "gold": ["答"]}\n{"id": "2"}\n', encoding="utf-8")
    with pytest.raises(QAError, match="line 2"):
        load_questions(path)
    with pytest.raises(QAError, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl")


def test_question_file_is_read(tmp_path):
    path = tmp_path / "questions.jsonl"
    lines = [
        {"id": "a", "lang": "en", "q": "Who?", "gold": ["某人"]},
        {"id": "b", "lang": "zh-Hans", "q": "天气？", "gold": [], "unanswerable": True},
    ]
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8")
    first, second = load_questions(path)
    assert first.gold == ("某人",) and not first.unanswerable and first.lang == "en"
    assert second.unanswerable and second.gold == ()
