"""The evaluation rule and metrics, checked on cases small enough to compute by hand."""

from __future__ import annotations

import json

import pytest

from qa.errors import QAError
from qa.eval.evaluate import Question, QuestionResult, answers, compute_metrics, first_answer_rank, load_questions


def q(id, unanswerable=False, source=""):
    return Question(id=id, question="?", gold=() if unanswerable else ("x",), unanswerable=unanswerable, source=source)


def test_metrics_on_a_hand_computed_case():
    results = [
        QuestionResult(q("a"), 1, "found", 0.9, milliseconds=10),  # first place
        QuestionResult(q("b"), 3, "unsure", 0.5, milliseconds=20),  # third: R@5, 1/3 for MRR, shown as unsure
        QuestionResult(q("c"), 7, "not_found", 0.1, milliseconds=30),  # seventh: only MRR, and wrongly hidden
        QuestionResult(q("d"), None, "found", 0.9, milliseconds=40),  # not in the top 10
        QuestionResult(q("u1", True), None, "not_found", 0.1, milliseconds=50),  # correctly "not found"
        QuestionResult(q("u2", True), None, "found", 0.9, milliseconds=60),  # wrongly "found"
        QuestionResult(q("u3", True), None, "unsure", 0.5, milliseconds=70),  # flagged, passages shown
    ]
    metrics = compute_metrics(results, "hybrid")
    assert metrics.answerable == 4 and metrics.unanswerable == 3
    assert metrics.recall_at_1 == pytest.approx(1 / 4)
    assert metrics.recall_at_5 == pytest.approx(2 / 4)
    assert metrics.mrr_at_10 == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    assert metrics.unanswerable_flagged == pytest.approx(2 / 3)
    assert metrics.unanswerable_reported == pytest.approx(1 / 3)
    assert metrics.answerable_hidden == pytest.approx(1 / 4)
    assert metrics.answerable_unsure == pytest.approx(1 / 4)
    assert metrics.p50_ms == 40


def test_gold_matching_follows_the_eval_readme():
    # Traditional script, pinyin annotation, spaces and punctuation are all normalised away.
    passage = "知識城與新加坡的合作日益緊密，簽署了 81 份合作備忘錄。發(fā)展"
    assert answers(passage, ("签署了81份合作备忘录",))
    assert answers(passage, ("发展",))
    assert not answers(passage, ("82份",))
    # "." and "%" are kept, so 1.2万 does not match 12万.
    assert answers("共发放相关宣传资料1.2万份", ("1.2万份",))
    assert not answers("共发放相关宣传资料12万份", ("1.2万份",))
    question = Question("g", "?", ("同比增长37%",), False)
    assert first_answer_rank([("a", "无关"), ("a", "也无关"), ("a", "同比增长 37%。")], question) == 3
    assert first_answer_rank([("a", "无关")], question) is None


def test_a_benchmark_hit_counts_only_from_the_questions_own_article():
    # Gold strings are short spans that other articles contain too (shared/bench/README.md).
    question = Question("s", "?", ("1990年",), False, source="own.txt")
    passages = [("other.txt", "成立于1990年。"), ("own.txt", "无关"), ("own.txt", "始建于1990年。")]
    assert first_answer_rank(passages, question) == 3
    assert first_answer_rank(passages, Question("s", "?", ("1990年",), False)) == 1  # no source: any article


def test_eval_of_a_folder_that_is_not_a_benchmark_says_what_it_needs(tmp_path):
    from qa.eval.evaluate import benchmark_settings
    from qa.settings import Settings

    with pytest.raises(QAError, match="corpus/.*questions.jsonl"):
        benchmark_settings(tmp_path, Settings.load())


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


def test_a_damaged_benchmark_cache_is_rebuilt_not_blamed_on_the_user(tmp_path, fake_encoder):
    import shutil

    from conftest import REPO

    from qa.eval.evaluate import benchmark_settings, ensure_index
    from qa.index.read import load_index
    from qa.settings import Settings

    bench = tmp_path / "bench"
    shutil.copytree(REPO / "corpus", bench / "corpus")
    (bench / "questions.jsonl").write_text('{"id": "1", "q": "知识城？", "gold": ["知识城"]}\n', encoding="utf-8")
    settings, _ = benchmark_settings(bench, Settings.load(cache_dir=tmp_path / "cache", embed_model="fake"))
    ensure_index(settings, encoder=fake_encoder)
    (settings.index_dir / "chunks.jsonl").write_text("not json\n", encoding="utf-8")
    from qa.index import read as index_module

    index_module._CACHE.clear()
    ensure_index(settings, encoder=fake_encoder)
    assert len(load_index(settings).chunks) > 0
