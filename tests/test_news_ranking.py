"""Ranking for a news archive, with the fake encoder: a report re-posted by other outlets is
one result naming the others, a headline is context of every passage under it, and the
benchmark rule counts a named copy from the question's own article."""

from __future__ import annotations

import pytest

from qa.eval.evaluate import Question, first_answer_rank
from qa.index.build import build_index
from qa.search.answer import to_markdown
from qa.search.retriever import Retriever
from qa.settings import Settings

# Our own fictional reports. The same wire story as posted by two outlets (each with its
# own dateline), and an unrelated one.
WIRE = (
    "北湾港区新建的三号集装箱码头昨日正式投入运营，首批靠泊的货轮装载了一千二百个标准箱。"
    "港区管理局表示，新码头每年可增加吞吐能力八十万标准箱，并将开通两条通往东南亚的新航线。"
)
REPORTS = {
    "xinhua-port.txt": ("北湾港三号码头投入运营", "新华社", f"新华社北湾5月6日电 {WIRE}"),
    "chinanews-port.txt": ("北湾港新码头启用", "中新网", f"中新网5月6日电 {WIRE}"),
    "library.txt": (
        "城西图书馆延长开放时间",
        "本报",
        "城西图书馆自下月起每天开放到晚上十点，周末增设亲子阅读活动，读者可在线预约座位。",
    ),
}


def _write(corpus, reports):
    corpus.mkdir()
    for name, (title, publication, text) in reports.items():
        (corpus / name).write_text(
            f"---\ntitle: {title}\npublication: {publication}\ndate: 2024-05-06\n---\n{text}\n", encoding="utf-8"
        )


def _built(folder, reports: dict, encoder) -> tuple[Settings, Retriever]:
    """These reports as a corpus, indexed with the fake encoder, and a retriever over them."""
    _write(folder / "corpus", reports)
    settings = Settings.load(corpus_dir=folder / "corpus", index_dir=folder / "index", embed_model="fake")
    build_index(settings, encoder=encoder)
    return settings, Retriever.from_settings(settings, encoder=encoder)


@pytest.fixture
def news(tmp_path, fake_encoder):
    return _built(tmp_path, REPORTS, fake_encoder)[1]


def test_a_report_reposted_by_another_outlet_is_one_result_naming_the_other(news):
    hits = news.retrieve("北湾港新码头每年可增加多少吞吐能力？", k=3)
    assert "八十万标准箱" in hits[0].text
    first, copy = hits[0].source, ({"xinhua-port.txt", "chinanews-port.txt"} - {hits[0].source}).pop()
    # The copy is named under the first result, with its outlet, not listed again below it.
    assert len(hits[0].also) == 1 and copy in hits[0].also[0] and "北湾" in hits[0].also[0]
    assert all(WIRE[:20] not in hit.text for hit in hits[1:]), [h.citation for h in hits]
    assert hits[0].to_dict()["also_reported_by"] == list(hits[0].also)
    assert "also reported by 《" in to_markdown("found", hits, "")
    assert first != copy


def test_reports_that_only_share_a_topic_stay_separate_results(news):
    hits = news.retrieve("图书馆晚上开放到几点？", k=3)
    assert hits[0].source == "library.txt" and hits[0].also == ()


def test_the_benchmark_rule_counts_a_named_copy_only_from_the_questions_article_with_the_answer():
    question = Question("q1", "新码头每年可增加多少吞吐能力？", ("八十万标准箱",), False, source="chinanews-port.txt")
    shown = [("xinhua-port.txt", WIRE), ("library.txt", REPORTS["library.txt"][2])]
    # Without the copy named, the first result is from another article: no hit at all.
    assert first_answer_rank(shown, question) is None
    assert first_answer_rank(shown, question, [[("chinanews-port.txt", WIRE)], []]) == 1
    # A copy from the right article that lacks the answer does not count.
    assert first_answer_rank(shown, question, [[("chinanews-port.txt", WIRE[:30])], []]) is None


def test_the_judges_fit_reads_a_ranking_as_the_metrics_do_copies_included(news):
    from qa.eval.evaluate import evaluate
    from qa.eval.fit_judge import collect

    asked = "北湾港新码头每年可增加多少吞吐能力？"
    shown = news.rank(news.analyse(asked), 5)[0].source
    # Asked of the article named under the first result only as "also reported by".
    copy = ({"xinhua-port.txt", "chinanews-port.txt"} - {shown}).pop()
    question = Question("q1", asked, ("八十万标准箱",), False, source=copy)
    _, results = evaluate([question], news)
    assert results[0].first_answer_rank == 1
    assert collect("news", news, [question])["questions"][0]["rank"] == 1


# Two fire reports whose bodies say "当地" where their headlines name the town.
FIRES = {
    "east-port-fire.txt": (
        "东港镇一仓库凌晨起火",
        "晚报",
        "当地一处存放纺织品的仓库凌晨三点起火，消防部门出动六辆消防车，火势在两小时后被扑灭，三名工人受轻伤。",
    ),
    "west-forest-fire.txt": (
        "西林县物流园仓库失火",
        "日报",
        "昨天下午当地物流园区一座仓库突然失火，浓烟持续了四个小时，五名搬运工人被送往医院，起火原因仍在调查。",
    ),
    **REPORTS,
}


@pytest.fixture
def fires(tmp_path, fake_encoder):
    return _built(tmp_path, FIRES, fake_encoder)


@pytest.mark.parametrize(
    "question, source",
    [
        ("东港镇仓库起火有几人受伤？", "east-port-fire.txt"),
        ("西林县的仓库失火后有几名工人被送医？", "west-forest-fire.txt"),
    ],
)
def test_a_question_naming_the_place_only_the_headline_names_finds_that_report(fires, question, source):
    _, retriever = fires
    # BM25 is where the headline is context (the fake encoder's vectors know no meaning).
    assert retriever.retrieve(question, k=3, mode="lexical")[0].source == source


def test_a_subtitle_is_context_of_every_passage_like_the_title(tmp_path, fake_encoder):
    corpus = tmp_path / "corpus"
    _write(corpus, FIRES)
    path = corpus / "west-forest-fire.txt"
    # A longer report, so that it is cut into several passages.
    text = path.read_text(encoding="utf-8").replace("title:", "subtitle: 南岭乡消防站连夜增援\ntitle:", 1)
    path.write_text(
        text + "\n".join(["附近居民被疏散到学校操场，志愿者送来了饮用水和毛毯。"] * 12) + "\n", encoding="utf-8"
    )
    settings = Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")
    build_index(settings, encoder=fake_encoder)
    index = Retriever.from_settings(settings, encoder=fake_encoder).index
    rows = [row for row, chunk in enumerate(index.chunks) if chunk.source == "west-forest-fire.txt"]
    assert len(rows) > 2
    # Every passage of the report answers to the place only its subtitle names, none of another report.
    scores = index.lexical.term_scores(["南岭"])
    assert all(scores[row] > 0 for row in rows)
    assert all(scores[row] == 0 for row in range(len(index.chunks)) if row not in rows)


def test_an_index_of_the_previous_format_is_upgraded_without_embedding_again(tmp_path, fake_encoder):
    import json

    from qa.errors import StaleIndexError
    from qa.index.read import load_index
    from qa.index.write import file_checksum

    corpus = tmp_path / "corpus"
    _write(corpus, FIRES)
    path = corpus / "west-forest-fire.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("title:", "subtitle: 南岭乡消防站连夜增援\ntitle:", 1))
    settings = Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")
    build_index(settings, encoder=fake_encoder)
    # What format 5 wrote: the same files, but no subtitle kept and BM25 without headlines.
    articles = settings.index_dir / "articles.jsonl"
    records = [json.loads(line) for line in articles.read_text(encoding="utf-8").splitlines()]
    articles.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "subtitle"}) + "\n" for r in records))
    manifest_path = settings.index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"]["articles.jsonl"] = file_checksum(articles)
    manifest["format_version"] = 5
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(StaleIndexError, match="qa build"):
        load_index(settings)

    summary = build_index(settings, encoder=fake_encoder)
    assert summary.written and summary.embedded == 0 and summary.unchanged == len(FIRES)
    index = load_index(settings)
    assert index.articles["west-forest-fire.txt"].subtitle == "南岭乡消防站连夜增援"
    scores = index.lexical.term_scores(["南岭"])
    assert all(scores[row] > 0 for row, c in enumerate(index.chunks) if c.source == "west-forest-fire.txt")
