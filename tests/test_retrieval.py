"""Retrieval as a user sees it, with the real bundled model and real FAISS over the bundled corpus.

Every test here shares one index built once per session (the `real_index` fixture
in conftest.py). Thresholds are the ones measured on that index, with margin;
what was measured is written next to each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EVAL_FILE, REPO

import qa
from qa.eval.evaluate import answers, evaluate, load_questions
from qa.index.embedding import context_prefix
from qa.ingest.corpus import load_article
from qa.search.answer import question_language
from qa.text.script import to_simplified_chars

pytestmark = pytest.mark.model

EXTRA_FILE = REPO / "eval" / "extra_questions.jsonl"

MEMORANDA = {
    "zh-Hans": "知识城与新加坡签署了多少份合作备忘录？",
    "zh-Hant": "知識城與新加坡簽署了多少份合作備忘錄？",
    "en": "How many memoranda of cooperation has the Knowledge City signed with Singapore?",
}
MEMORANDA_SOURCE = "knowledge-city-new-productive-forces-2024.txt"
KUNSHAN = {
    "zh-Hans": "昆山高新区发放了多少份安全宣传资料？",
    "zh-Hant": "崑山高新區發放了多少份安全宣傳資料？",
    "en": "How many safety publicity leaflets did the Kunshan high-tech zone hand out?",
}
KUNSHAN_SOURCE = "kunshan-high-tech-zone-safety.txt"


def _questions(path: Path):
    if not path.is_file():
        pytest.skip(f"question file {path} not found")
    return load_questions(path)


def _article(real_index, source: str):
    return load_article(Path(real_index.corpus_dir) / source, Path(real_index.corpus_dir))


def _has_han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


# ------------------------------------------------------------ the Python API end to end


def test_retrieve_finds_and_cites_the_memoranda_passage(real_index):
    hits = qa.retrieve(MEMORANDA["zh-Hans"], k=5, settings=real_index.settings)

    assert len(hits) == 5
    top = hits[0]
    # The article is in traditional script and passages are shown as written.
    assert "81份合作備忘錄" in top.text
    assert top.source == MEMORANDA_SOURCE
    assert top.citation.startswith("《") and "》" in top.citation
    assert top.source in top.citation and f"¶{top.paragraph}" in top.citation
    assert "81份合作備忘錄" in top.highlight_text

    scores = [hit.score for hit in hits]
    assert all(isinstance(score, float) for score in scores)
    assert scores == sorted(scores, reverse=True)
    for hit in hits:
        article = _article(real_index, hit.source)
        assert article.text[hit.start : hit.end] == hit.text
        assert hit.citation.startswith(f"《{article.title}》")
        assert article.paragraph_at(hit.start) == hit.paragraph


def test_answer_returns_the_same_passages_with_markdown(real_index):
    result = qa.answer(MEMORANDA["zh-Hans"], k=3, settings=real_index.settings)

    assert result.found is True and result.message == ""
    # The answer first: the one passage that answers, not two weaker ones after it.
    assert [hit.evidence for hit in result.passages] == ["answers"]
    assert "81份合作備忘錄" in result.passages[0].text
    assert "<mark>" in result.markdown and "81份合作備忘錄" in result.markdown
    assert "[1]" in result.markdown and "answers the question" in result.markdown and "score" not in result.markdown
    # The JSON form a client would get round-trips and carries the offsets.
    payload = json.loads(json.dumps(result.to_dict(), ensure_ascii=False))
    assert payload["passages"][0]["start"] == result.passages[0].start
    assert payload["passages"][0]["source"] == MEMORANDA_SOURCE


# ------------------------------------------------------------------ three languages


@pytest.mark.parametrize(
    "phrasings, source, needle",
    [(MEMORANDA, MEMORANDA_SOURCE, "81份合作備忘錄"), (KUNSHAN, KUNSHAN_SOURCE, "1.2万份")],
    ids=["memoranda", "kunshan"],
)
def test_the_same_passage_answers_in_every_script(real_index, phrasings, source, needle):
    tops = {}
    for lang, question in phrasings.items():
        hits = qa.retrieve(question, k=5, settings=real_index.settings)
        # Measured: top-1 in all three languages (English dense 0.787-0.81, next passage
        # 0.76-0.78). Chinese must be first; English is held to the top 3.
        depth = 1 if lang != "en" else 3
        assert any(needle in hit.text for hit in hits[:depth]), (lang, [h.citation for h in hits])
        tops[lang] = next(hit for hit in hits if needle in hit.text)
        assert tops[lang].source == source
        assert question_language(question) == lang
    assert len({(hit.source, hit.start, hit.end) for hit in tops.values()}) == 1


# ------------------------------------------------------------------------ highlights

# Answerable questions whose answering sentence holds the gold (measured), a spread of languages.
HIGHLIGHT_IDS = ["d02", "d08", "d11", "x07", "d16", "x12", "x15", "x17", "d20", "d22", "x21", "x23"]
# Measured: 45 of the 50 answerable dev+extra questions (0.90) have the gold in the
# highlight of the first answering passage; the misses are d10, d19, d25, x18, x22.
MIN_HIGHLIGHT_SHARE = 0.85


@pytest.fixture(scope="module")
def answerable(real_index):
    questions = _questions(EVAL_FILE) + _questions(EXTRA_FILE)
    return {q.id: q for q in questions if not q.unanswerable}


def _answering_hit(real_index, question):
    hits = qa.retrieve(question.question, k=5, settings=real_index.settings)
    for hit in hits:
        assert hit.highlight is not None
        assert hit.start <= hit.highlight[0] < hit.highlight[1] <= hit.end
        assert hit.highlight_text and hit.highlight_text in hit.text
    return next((hit for hit in hits if answers(hit.text, question.gold)), None)


def test_highlight_covers_the_answer(real_index, answerable):
    assert {"zh-Hans", "zh-Hant", "en"} <= {answerable[i].lang for i in HIGHLIGHT_IDS}
    for qid in HIGHLIGHT_IDS:
        question = answerable[qid]
        hit = _answering_hit(real_index, question)
        assert hit is not None, f"{qid}: no answering passage in the top 5"
        assert answers(hit.highlight_text, question.gold), (qid, hit.highlight_text, question.gold)


def test_highlight_covers_the_answer_for_most_eval_questions(real_index, answerable):
    covered, missed = 0, []
    for question in answerable.values():
        hit = _answering_hit(real_index, question)
        if hit is not None and answers(hit.highlight_text, question.gold):
            covered += 1
        else:
            missed.append(question.id)
    share = covered / len(answerable)
    assert share >= MIN_HIGHLIGHT_SHARE, f"{covered}/{len(answerable)} covered; missed {missed}"


# ------------------------------------------------------------- nothing relevant found

UNRELATED = [
    # From the eval files.
    "今天北京的天气怎么样？",
    "How do I reset my router password?",
    "火星上有水吗？",
    # New ones, in no eval file.
    "贵州茅台今天的股价是多少？",
    "红烧肉怎么做？",
    "明天上海会下雨吗？",
    "台積電今天的股價是多少？",
    "紅燒肉怎麼做？",
    "明天台北會下雨嗎？",
    "What is Tesla's share price?",
    "Who wrote Pride and Prejudice?",
    "What is the capital of Australia?",
]
# These once passed as relevant on their dense score alone (0.78-0.81, as high as
# answerable English questions); their topic words (fried rice, weather, London,
# bitcoin) are what the articles never mention.
UNRELATED += [
    "How do I make fried rice?",
    "What's the weather like in London tomorrow?",
    "What is the price of Bitcoin today?",
    "How do I bake bread at home?",
]


@pytest.mark.parametrize("question", UNRELATED)
def test_questions_far_from_the_articles_are_not_found(real_index, question):
    result = qa.answer(question, settings=real_index.settings)

    assert result.found is False and result.verdict in ("not_found", "unsure")
    if result.verdict == "not_found":
        assert result.passages == []  # hidden: nothing relevant to show
    else:
        assert result.passages  # mixed evidence: shown, under a "may not answer it" line
    assert result.message and result.message in result.markdown
    lang = question_language(question)
    if lang == "en":
        assert not _has_han(result.message)
    elif lang == "zh-Hans":
        assert _has_han(result.message) and to_simplified_chars(result.message) == result.message
    else:
        assert _has_han(result.message) and to_simplified_chars(result.message) != result.message

    shown = qa.answer(question, settings=real_index.settings, show_unrelated=True)
    assert shown.found is False and len(shown.passages) == 5
    assert shown.message == result.message


def test_most_far_questions_are_reported_as_nothing_found(real_index):
    verdicts = [qa.answer(question, settings=real_index.settings).verdict for question in UNRELATED]
    # Measured: see the README's judge figures; "unsure" still shows passages, so the
    # stronger claim is held for most of them.
    assert verdicts.count("not_found") >= 0.75 * len(UNRELATED), verdicts


ANSWERABLE = [
    *MEMORANDA.values(),
    KUNSHAN["zh-Hans"],
    KUNSHAN["zh-Hant"],
    "网格工作站一共发现了多少处隐患？",
    "How many hazards did the grid workstations find in total?",
]


@pytest.mark.parametrize(
    "question",
    ANSWERABLE
    + [
        # Known limit: none of leaflets / publicity / hand out translates to words the
        # article uses (宣传资料, 发放), so the question reads as off-topic.
        pytest.param(KUNSHAN["en"], marks=pytest.mark.xfail(reason="paraphrase outside the dictionary", strict=True)),
        # Known limit: half of its translated words (copies, high tech, zone, distribute)
        # miss the article's (份, 高新区, 发放), so it is shown under "may not answer".
        pytest.param(
            "How many copies of safety publicity materials did the Kunshan high-tech zone distribute?",
            marks=pytest.mark.xfail(reason="translations miss the article's words", strict=True),
        ),
    ],
)
def test_answerable_questions_are_found(real_index, question):
    result = qa.answer(question, settings=real_index.settings)
    assert result.found is True, question
    assert result.passages and result.message == ""


# ------------------------------------------------------------------------ duplicates

REPEATED = "立足新发展阶段，中新广州知识城登高望远"


def test_summary_box_repeat_is_shown_once(real_index):
    chunks = real_index.retriever.index.chunks
    holding = [c for c in chunks if REPEATED in c.text]
    # ¶7 and the summary box's ¶21 both hold the sentence; otherwise this test proves nothing.
    assert len(holding) >= 2
    assert all(c.source == "knowledge-city-masterplan-anniversary.txt" for c in holding)

    for question in ["周亚伟表示知识城要打造成什么？", "周亞偉表示知識城要打造成什麼？"]:
        for mode in ("hybrid", "dense", "lexical"):
            hits = qa.retrieve(question, k=5, mode=mode, settings=real_index.settings)
            repeats = [hit.paragraph for hit in hits if REPEATED in hit.text]
            assert len(repeats) <= 1, (question, mode, [h.citation for h in hits])
            # Measured: the simplified question finds it in every mode (first), the
            # traditional one in hybrid (third) and lexical but not in dense's top 5.
            if question.startswith("周亚伟") or mode != "dense":
                assert len(repeats) == 1, (question, mode, [h.citation for h in hits])
    top = qa.retrieve("周亚伟表示知识城要打造成什么？", k=5, settings=real_index.settings)[0]
    assert REPEATED in top.text and "周亚伟" in top.highlight_text


# ------------------------------------------------------------------- acceptance floors


def test_dev_set_floors(real_index):
    questions = _questions(EVAL_FILE)
    hybrid, results = evaluate(questions, real_index.retriever, "hybrid")
    # Measured: hybrid R@1 1.000, R@5 1.000, MRR@10 1.000; dense R@1 0.92, R@5 1.000.
    assert hybrid.unanswerable == 3
    assert hybrid.recall_at_5 == 1.0, [(r.question.id, r.first_answer_rank) for r in results]
    assert hybrid.recall_at_1 >= 0.9
    assert hybrid.unanswerable_flagged == 1.0
    assert hybrid.answerable_hidden == 0.0
    dense, _ = evaluate(questions, real_index.retriever, "dense")
    assert dense.recall_at_5 >= 0.9


def test_extra_set_floors(real_index):
    # Measured: hybrid R@1 0.96, R@5 1.000, 5/5 unanswerable reported, none missed.
    hybrid, results = evaluate(_questions(EXTRA_FILE), real_index.retriever, "hybrid")
    assert hybrid.recall_at_5 >= 0.95, [(r.question.id, r.first_answer_rank) for r in results]
    assert hybrid.recall_at_1 >= 0.85
    assert hybrid.unanswerable_flagged == 1.0
    assert hybrid.answerable_hidden <= 0.05


# ------------------------------------------------------------------- model limits


def test_every_indexed_passage_fits_the_model(real_index):
    from qa.embed.factory import load_encoder

    encoder = load_encoder(real_index.settings)
    context = real_index.settings.embed_context
    chunks = real_index.retriever.index.chunks
    assert len(chunks) == real_index.summary.chunks > 0
    longest = max(encoder.token_count(context_prefix(c, context) + c.text) for c in chunks)
    assert longest < 512
