"""The web chat's replies, JSON, follow-ups, limits and article panel on a tiny index
with a fake encoder; the page itself is driven in a real browser in test_web_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa.errors import QuestionError, SettingsError
from qa.index.build import build_index
from qa.index.read import load_index
from qa.search.retriever import Retriever
from qa.settings import Settings
from qa.text.normalize import match_form

web = pytest.importorskip("qa.serve.web")
from qa.serve.limits import WebSettings  # noqa: E402
from qa.serve.service import ChatService  # noqa: E402
from qa.serve.views import ArticleView, Paragraph, parse_filter  # noqa: E402

ARTICLES = {
    "knowledge-city.txt": (
        "---\ntitle: 中新广州知识城国际合作再上新台阶\ndate: 2021-03-01\n---\n"
        "中新广州知识城是中国与新加坡两国政府合作的旗舰项目。\n"
        "今年，知识城与新加坡企业签署了12份合作备忘录，涵盖数字经济和生物医药。\n"
        "知识城还在人形机器人领域布局了多家企业。\n"
    ),
    "luoyang.txt": (
        "---\ntitle: 洛阳市科技局推动人才引进\ndate: 2021-05-10\n---\n"
        "洛阳市科技局今年工作重点是服务企业创新发展。\n"
        "洛阳将实施“河洛英才计划”，引进高层次创新人才和团队。\n"
    ),
    "kunshan.txt": (
        "---\ntitle: 昆山高新区筑牢安全生产防线\ndate: 2022-01-20\n---\n"
        "昆山高新区开展安全生产大检查，排查企业隐患。\n"
        "园区组织消防演练，提高员工应急处置能力。\n"
    ),
}
QUESTION = "知识城与新加坡签署了多少份合作备忘录？"
ANSWER_SENTENCE = "今年，知识城与新加坡企业签署了12份合作备忘录，涵盖数字经济和生物医药。"
TITLE = "中新广州知识城国际合作再上新台阶"


class TopicEncoder:
    """Deterministic stand-in for the embedding model, dim 32.

    Every text gets a small hash-seeded random vector; each topic word it contains adds
    a strong fixed direction. A question and the passage sharing its topic words are
    therefore close (cosine above the relevance threshold), unrelated texts are not.
    """

    name = "fake"
    dimension = 32
    TOPICS = ["新加坡", "备忘录", "人才", "洛阳", "安全", "昆山", "知识城"]

    def _vector(self, text: str) -> np.ndarray:
        form = match_form(text)
        seed = int.from_bytes(hashlib.sha256(form.encode()).digest()[:8], "little")
        noise = np.random.default_rng(seed).standard_normal(self.dimension)
        vector = 0.1 * noise / np.linalg.norm(noise)
        for axis, word in enumerate(self.TOPICS):
            if match_form(word) in form:
                vector[axis] += 1.0
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    def encode_passages(self, texts):
        return np.stack([self._vector(t) for t in texts]) if len(texts) else np.zeros((0, 32), np.float32)

    def encode_queries(self, texts):
        return self.encode_passages(texts)

    def token_count(self, text: str) -> int:
        return len(text) + 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Settings, Retriever]:
    """Settings for a 3-article corpus and a retriever over its freshly built index."""
    root = tmp_path_factory.mktemp("web")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings.load(corpus_dir=corpus, index_dir=root / "index", embed_model="fake")
    encoder = TopicEncoder()
    build_index(settings, encoder=encoder)
    return settings, Retriever(load_index(settings), encoder, settings)


# -- replies ------------------------------------------------------------------------


def test_reply_cites_the_right_article_and_marks_the_answer(tiny):
    settings, retriever = tiny
    reply = web.respond(QUESTION, [], settings=settings, retriever=retriever)
    assert web.FOUND in reply.split("**[1]**")[0]
    first = reply.split("**[2]**")[0]
    assert f"> [1] 《{TITLE}》 (knowledge-city.txt, 2021-03-01) ¶" in first
    assert "· answers the question" in first and "score" not in first
    assert f"<mark>{ANSWER_SENTENCE}</mark>" in first
    assert "Traceback" not in reply


def test_traditional_question_gets_the_same_article(tiny):
    settings, retriever = tiny
    reply = web.respond("知識城與新加坡簽署了多少份合作備忘錄？", [], settings=settings, retriever=retriever)
    assert f"> [1] 《{TITLE}》" in reply
    assert "<mark>" in reply


def test_unanswerable_question_gets_the_not_found_line(tiny):
    settings, retriever = tiny
    reply = web.respond("火星上有水吗？", [], settings=settings, retriever=retriever)
    assert 'class="qa-verdict qa-not-found"' in reply and "没有在文章中找到" in reply
    assert "《" not in reply


@pytest.mark.parametrize("message", ["", "   \n ", None])
def test_empty_message_gets_a_helpful_reply(tiny, message):
    settings, retriever = tiny
    reply = web.respond(message, [], settings=settings, retriever=retriever)
    assert "请输入" in reply and "type a question" in reply.lower()


def test_too_long_question_is_explained(tiny):
    settings, retriever = tiny
    reply = web.respond("问" * 600, [], settings=settings, retriever=retriever)
    assert "limit is 500" in reply


def test_missing_index_names_qa_build(tmp_path):
    settings = Settings.load(corpus_dir=tmp_path, index_dir=tmp_path / "no-index", embed_model="fake")
    reply = web.respond(QUESTION, [], settings=settings)
    assert "`qa build`" in reply
    assert "Traceback" not in reply


def test_unexpected_error_is_a_short_reply_not_a_traceback(tiny, capsys):
    settings, retriever = tiny

    class Broken:
        settings = None

        def __getattr__(self, name):
            raise RuntimeError("boom")

    reply = web.respond(QUESTION, [], settings=settings, retriever=Broken())
    assert web.ERROR_REPLY in reply
    assert "RuntimeError" in capsys.readouterr().err  # the details go to the server log


def test_article_text_cannot_inject_markup():
    from qa.schema import Hit

    text = "1. 价格<b>$5</b> *星* [链接](x)\n- 列表"
    hit = Hit(
        text=text, score=1.0, title="t", source="s", start=10, end=10 + len(text), citation="c", highlight=(10, 12)
    )
    from qa.search.answer import highlight_markup

    markup = highlight_markup(hit)
    assert markup.startswith("<mark>1\\.</mark> ")
    assert "<b>" not in markup and "\\<b\\>" in markup
    assert "\\$5" in markup and "\\*星\\*" in markup and "\\[链接\\]" in markup
    assert "\n\\- 列表" in markup


def test_follow_up_is_read_against_the_previous_question(tiny):
    settings, retriever = tiny
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=retriever.encoder)
    first = service.ask("洛阳将实施什么人才计划？")
    assert first.answer.passages[0].source == "luoyang.txt"
    reply = service.ask("那昆山呢？", history=["洛阳将实施什么人才计划？"])
    assert reply.resolved == "昆山将实施什么人才计划？"
    assert "↪" in web.reply_markdown(reply) and "昆山将实施什么人才计划" in web.reply_markdown(reply)
    alone = service.ask("昆山高新区如何开展安全生产大检查？", history=["洛阳将实施什么人才计划？"])
    assert alone.resolved == "" and alone.answer.passages[0].source == "kunshan.txt"


def test_a_short_follow_up_to_a_long_question_is_answered_not_refused_for_its_length(tiny):
    """The length limit was applied to the rewritten question: 那昆山呢？ after a question
    near the limit was refused as longer than the limit, a length the user never typed."""
    settings, retriever = tiny
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=retriever.encoder)
    long_question = "洛阳将实施什么人才计划？" + "请说明" * ((settings.max_question_chars - 12) // 3)
    long_question += "？" * (settings.max_question_chars - len(long_question))
    assert len(long_question) == settings.max_question_chars
    # Rewritten, 洛阳 becomes 昆山高新区: three characters past the limit.
    reply = service.ask("那昆山高新区呢？", history=[long_question])
    assert reply.status == 200 and not reply.error and reply.resolved == ""
    assert reply.answer.passages[0].source == "kunshan.txt"
    too_long = service.ask("问" * (settings.max_question_chars + 1), history=["洛阳将实施什么人才计划？"])
    assert too_long.status == 400 and f"{settings.max_question_chars + 1} characters long" in too_long.error


def test_warm_up_loads_the_build_model_before_anyone_asks(tiny):
    # The default encoder loads its passage model on first use; loading it during a
    # rebuild under load stalled every question for ~1.5 s, so the server loads it first.
    from qa.embed.base import SplitEncoder

    settings, retriever = tiny
    encoder = SplitEncoder(retriever.encoder, lambda: retriever.encoder)
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=encoder)
    assert "passages loaded: False" in repr(encoder)
    service.warm_up()
    assert "passages loaded: True" in repr(encoder)


# -- the JSON reply ---------------------------------------------------------------------


def test_json_reply_holds_passages_as_data(tiny):
    settings, retriever = tiny
    data = ChatService(settings, WebSettings(rate_limit=0), encoder=retriever.encoder).ask(QUESTION, k=2).to_dict()
    assert data["found"] is True and data["verdict"] == "found" and data["error"] == "" and data["stale"] == ""
    assert 1 <= len(data["passages"]) <= 2
    top = data["passages"][0]
    assert top["source"] == "knowledge-city.txt" and top["citation"].startswith(f"《{TITLE}》")
    a, b = top["highlight_in_text"]
    assert top["text"][a:b] == ANSWER_SENTENCE == top["highlight_text"]
    assert isinstance(top["score"], float) and top["score"] > 0
    json.dumps(data)  # plain JSON all the way down


def test_k_limits_the_passages(tiny):
    settings, retriever = tiny
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=retriever.encoder)
    assert len(service.ask(QUESTION, k=1).to_dict()["passages"]) == 1
    assert len(service.ask(QUESTION, k=3).to_dict()["passages"]) > 1
    assert service.ask("知识城", k=0).status == 400


def test_bad_dates_are_explained():
    with pytest.raises(SettingsError, match="date like 2021-03-01"):
        parse_filter(None, "March", "")
    with pytest.raises(SettingsError, match="before it starts"):
        parse_filter(None, "2022-01-01", "2021-01-01")
    assert parse_filter(None, "", "") is None


def test_rate_limit_is_per_client_with_a_friendly_message(tiny):
    settings, retriever = tiny
    service = ChatService(settings, WebSettings(rate_limit=2), encoder=retriever.encoder)
    assert service.ask(QUESTION, client="a").status == 200
    assert service.ask(QUESTION, client="a").status == 200
    limited = service.ask(QUESTION, client="a")
    assert limited.status == 429 and "wait a few seconds" in limited.error
    assert "wait a few seconds" in web.reply_markdown(limited)
    assert service.ask(QUESTION, client="b").status == 200  # another user is not held up


def test_web_settings_come_only_from_explicit_variables(monkeypatch):
    for name in ("QA_AUTH", "QA_SHARE", "QA_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    default = WebSettings.load()
    assert default.auth is None and default.share is False and default.rate_limit > 0
    assert Settings.load().host == "127.0.0.1"
    monkeypatch.setenv("QA_AUTH", "reader:s3cret")
    assert WebSettings.load().auth == ("reader", "s3cret")
    monkeypatch.setenv("QA_AUTH", "no-colon")
    with pytest.raises(SettingsError, match="QA_AUTH must be user:password"):
        WebSettings.load()


# -- the article panel --------------------------------------------------------------------


def test_a_passage_opens_in_its_article_with_neighbours_and_the_highlight(tiny):
    settings, retriever = tiny
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=retriever.encoder)
    passage = service.ask(QUESTION).to_dict()["passages"][0]
    view = service.article(passage)
    assert view.title == TITLE and view.source == "knowledge-city.txt" and view.date == "2021-03-01"
    numbers = [p.number for p in view.paragraphs]
    own = [p for p in view.paragraphs if p.in_passage]
    assert len(own) == 1 and numbers == [own[0].number - 1, own[0].number, own[0].number + 1]
    a, b = own[0].highlight
    assert own[0].text[a:b] == ANSWER_SENTENCE
    page = web.article_html(view)
    assert f"<mark>{ANSWER_SENTENCE}</mark>" in page and "knowledge-city.txt" in page and "2021-03-01" in page


def test_a_changed_article_is_not_shown_at_the_old_offsets(tiny):
    settings, retriever = tiny
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=retriever.encoder)
    passage = dict(service.ask(QUESTION).to_dict()["passages"][0], text="something else")
    assert "changed since this answer" in service.article(passage).note
    gone = dict(passage, source="gone.txt")
    assert "no longer in the index" in service.article(gone).note


def test_article_panel_escapes_article_text():
    view = ArticleView("<b>t</b>", "a.txt", paragraphs=[Paragraph(1, "<img src=x onerror=alert(1)>", True, (0, 5))])
    page = web.article_html(view)
    assert "<img" not in page and "&lt;img" in page and "<b>t" not in page


def test_app_has_title_examples_and_no_network(tiny):
    settings, retriever = tiny
    app = web.make_app(settings, retriever=retriever)
    assert app.title == web.TITLE
    assert len(web.EXAMPLES) == 4
    assert app.analytics_enabled is False
    assert {"search", "ask"} <= {fn.api_name for fn in app.fns.values() if fn.api_visibility == "public"}


def test_serve_builds_a_missing_index_first(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")
    import qa.index.build
    import qa.index.freshness

    real_build = qa.index.build.build_index
    monkeypatch.setattr(qa.index.build, "build_index", lambda s, **kw: real_build(s, encoder=TopicEncoder(), **kw))
    web.prepare_index(settings)
    assert "no index in" in capsys.readouterr().out
    assert qa.index.freshness.index_status(settings)["state"] == "ready"
    web.prepare_index(settings)  # ready now: nothing to do
    assert "building" not in capsys.readouterr().out


# -- settings that change the result ---------------------------------------------------------


def test_filter_by_article_or_date_limits_the_passages(tiny):
    settings, retriever = tiny
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=retriever.encoder)
    everywhere = service.ask("知识城", k=3).to_dict()["passages"]
    only = service.ask("知识城", k=3, where=parse_filter(["luoyang.txt"])).to_dict()
    assert {p["source"] for p in only["passages"]} <= {"luoyang.txt"}
    assert {p["source"] for p in everywhere} != {"luoyang.txt"}
    dated = service.ask(QUESTION, k=3, where=parse_filter(None, "2022-01-01", "2022-12-31")).to_dict()
    assert {p["source"] for p in dated["passages"]} <= {"kunshan.txt"}


# -- rebuilds and uploads ----------------------------------------------------------------------


class GatedEncoder(TopicEncoder):
    """TopicEncoder whose question embedding waits at a gate the test opens."""

    def __init__(self):
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def encode_queries(self, texts):
        self.waiting.set()
        self.gate.wait(30)
        return super().encode_queries(texts)


def _corpus_copy(tmp_path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")


def test_a_rebuild_swaps_in_without_failing_a_running_question(tmp_path):
    settings = _corpus_copy(tmp_path)
    encoder = GatedEncoder()
    build_index(settings, encoder=encoder)
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=encoder)
    running: list = []
    question = threading.Thread(target=lambda: running.append(service.ask(QUESTION)))
    question.start()
    assert encoder.waiting.wait(10)  # the question is inside the model, on the old index
    (Path(settings.corpus_dir) / "wuhan.txt").write_text(
        "---\ntitle: 武汉光谷新政\ndate: 2023-06-01\n---\n武汉光谷发布人才新政，吸引安全领域专家。\n", encoding="utf-8"
    )
    assert service.start_rebuild(full=True)
    assert service.start_rebuild() is False  # one at a time
    record = service.wait_for_rebuild(60)
    assert record["error"] == "" and record["result"]
    encoder.gate.set()
    question.join(30)
    assert running and running[0].error == "" and running[0].answer.passages[0].source == "knowledge-city.txt"
    # The next question runs on the new index, which holds the new article.
    assert ("武汉光谷新政", "wuhan.txt") in service.articles()
    assert service.ask(QUESTION).error == ""
    assert service.status()["state"] == "ready" and service.status()["articles"] == 4


class PriorityRecorder(TopicEncoder):
    """TopicEncoder declaring two batches at once, noting each embedding thread's niceness."""

    concurrency = 2

    def __init__(self):
        self.niceness: dict[int, int] = {}

    def encode_passages(self, texts):
        thread = threading.get_native_id()
        self.niceness[thread] = os.getpriority(os.PRIO_PROCESS, thread)
        return super().encode_passages(texts)


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are Linux's")
def test_a_rebuild_in_the_chat_embeds_on_every_core_below_the_questions(tmp_path):
    from qa.serve.service import REBUILD_NICENESS

    settings = _corpus_copy(tmp_path)
    encoder = PriorityRecorder()
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=encoder)
    assert service.start_rebuild(full=True)
    assert service.wait_for_rebuild(60)["error"] == ""
    # Every thread that embedded for the rebuild (its batches run on a pool) yields
    # the CPU to questions, which run at the server's own priority.
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert encoder.niceness and all(n >= min(mine + REBUILD_NICENESS, 19) for n in encoder.niceness.values())
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_stale_index_answers_with_a_note_until_rebuilt(tmp_path):
    settings = _corpus_copy(tmp_path)
    build_index(settings, encoder=TopicEncoder())
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=TopicEncoder())
    (Path(settings.corpus_dir) / "extra.txt").write_text("---\ntitle: 新\n---\n新文章。\n", encoding="utf-8")
    time.sleep(1.1)  # the freshness check runs at most once a second
    reply = service.ask(QUESTION)
    assert reply.answer.passages and "extra.txt" in reply.to_dict()["stale"]
    assert "extra.txt" in web.reply_markdown(reply) and 'class="qa-stale"' in web.reply_markdown(reply)
    status = service.status()
    assert status["state"] == "stale" and "extra.txt" in web.status_markdown(status)


def test_idle_clients_are_forgotten_by_the_rate_limiter():
    from qa.serve.limits import RateLimiter

    # A window far longer than the 10,001 calls take even on a loaded machine: were the
    # first clients already idle at the 10,001st, they would be dropped before "late".
    limiter = RateLimiter(per_minute=1, window_s=1.0)
    for number in range(10_001):
        assert limiter.allow(f"client-{number}")
    time.sleep(1.05)
    assert limiter.allow("late")  # past 10,000 clients: the idle ones are dropped
    assert len(limiter._asked) == 1
    assert not limiter.allow("late")  # and the limit still holds for the rest


def test_uploads_of_one_name_at_once_keep_the_first_whole_and_refuse_the_rest(tmp_path, fake_encoder):
    import threading

    settings = Settings.load(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", embed_model="fake")
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=fake_encoder)
    service.start_rebuild = lambda full=False: False  # the files are the point here, not the index
    versions = [f"标题{n}\n" + f"第{n}版的正文。" * 2000 for n in range(8)]
    errors = []

    def upload(text):
        try:
            service.add_article("same.txt", text.encode("utf-8"))
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            errors.append(error)

    threads = [threading.Thread(target=upload, args=(text,)) for text in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One is added whole; every other is refused with the reason, none replaces it.
    assert len(errors) == len(versions) - 1
    assert all(isinstance(error, QuestionError) and "already in the corpus" in str(error) for error in errors)
    assert (tmp_path / "corpus" / "same.txt").read_text(encoding="utf-8") in versions
    assert [p.name for p in (tmp_path / "corpus").iterdir()] == ["same.txt"]  # no temporary file left


def test_upload_adds_an_article_and_refuses_what_it_cannot_take(tmp_path):
    settings = _corpus_copy(tmp_path)
    encoder = TopicEncoder()
    build_index(settings, encoder=encoder)
    service = ChatService(settings, WebSettings(rate_limit=0, max_upload_bytes=1000), encoder=encoder)
    for name, data, why in [
        ("../../etc/evil.sh", b"x", "only .txt"),
        (".hidden.txt", b"x", "no usable name"),
        ("big.txt", b"x" * 2000, "the limit is"),
        ("empty.txt", b"  \n", "is empty"),
        # Saved, these were said to be "added; indexing it now" and never indexed.
        ("README.md", "成都建设人才公寓。".encode(), "never indexed; rename it"),
        ("~$报告.docx", b"PK\x03\x04", "never indexed; rename it"),
    ]:
        with pytest.raises(QuestionError, match=why):
            service.add_article(name, data)
    assert sorted(p.name for p in Path(settings.corpus_dir).iterdir()) == sorted(ARTICLES)
    message = service.add_article("../sub/chengdu.txt", "---\ntitle: 成都\n---\n成都建设人才公寓。\n".encode())
    assert "chengdu.txt added" in message and (Path(settings.corpus_dir) / "chengdu.txt").exists()
    assert service.wait_for_rebuild(60)["error"] == ""
    assert service.status()["articles"] == 4 and service.status()["state"] == "ready"


# -- the HTTP API of a running server -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port, path, body, headers=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(tiny):
    settings, retriever = tiny
    port = _free_port()
    app = web.serve(
        replace(settings, port=port), encoder=retriever.encoder, web_settings=WebSettings(rate_limit=0), block=False
    )
    yield port
    app.close()


def test_a_port_in_use_is_a_one_line_settings_error(tiny):
    from qa.errors import SettingsError

    settings, retriever = tiny
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError, match=f"port {port} on 127.0.0.1 is in use.*QA_PORT"):
            web.serve(
                replace(settings, port=port),
                encoder=retriever.encoder,
                web_settings=WebSettings(rate_limit=0),
                block=False,
            )


def test_http_api_answers_json_and_explains_bad_requests(server):
    code, data = _post(server, "/api/ask", {"question": QUESTION, "k": 2})
    assert code == 200 and data["found"] and data["passages"][0]["source"] == "knowledge-city.txt"
    code, data = _post(
        server, "/api/ask", {"question": "那洛阳呢？", "history": ["知识城与新加坡签署了多少份合作备忘录？"]}
    )
    assert code == 200 and data["resolved_question"] == "洛阳与新加坡签署了多少份合作备忘录？"
    for body, why in [
        ({"question": ""}, "type a question"),
        ({"question": "问" * 600}, "limit is 500"),
        ({"question": QUESTION, "k": "many"}, "whole number"),
        ({"question": QUESTION, "mode": "magic"}, "mode must be"),
        ({"question": QUESTION, "date_from": "yesterday"}, "date like"),
        ({"q": QUESTION}, "unknown fields"),
    ]:
        code, data = _post(server, "/api/ask", body)
        assert code == 400 and why in data["error"] and "Traceback" not in json.dumps(data)
    with urllib.request.urlopen(f"http://127.0.0.1:{server}/api/status", timeout=10) as response:
        assert json.loads(response.read())["state"] == "ready"


def test_gradio_client_gets_the_same_json(server):
    gradio_client = pytest.importorskip("gradio_client")
    client = gradio_client.Client(f"http://127.0.0.1:{server}/", verbose=False)
    data = client.predict(QUESTION, api_name="/search")
    assert data["found"] and data["passages"][0]["highlight_text"] == ANSWER_SENTENCE
    assert client.predict(QUESTION, api_name="/ask").count("**[1]**") == 1


def test_http_api_asks_for_the_login_when_auth_is_set(tiny):
    settings, retriever = tiny
    port = _free_port()
    app = web.serve(
        replace(settings, port=port),
        encoder=retriever.encoder,
        web_settings=WebSettings(auth=("reader", "s3cret"), rate_limit=0),
        block=False,
    )
    try:
        assert _post(port, "/api/ask", {"question": QUESTION})[0] == 401
        foreign = base64.b64encode("讀者:密碼".encode()).decode()  # non-ASCII: a 401, never a 500
        assert _post(port, "/api/ask", {"question": QUESTION}, {"Authorization": f"Basic {foreign}"})[0] == 401
        wrong = base64.b64encode(b"reader:nope").decode()
        assert _post(port, "/api/ask", {"question": QUESTION}, {"Authorization": f"Basic {wrong}"})[0] == 401
        right = base64.b64encode(b"reader:s3cret").decode()
        code, data = _post(port, "/api/ask", {"question": QUESTION}, {"Authorization": f"Basic {right}"})
        assert code == 200 and data["found"]
    finally:
        app.close()


def test_an_uploaded_html_article_is_indexed(tmp_path):
    settings = _corpus_copy(tmp_path)
    encoder = TopicEncoder()
    build_index(settings, encoder=encoder)
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=encoder)
    page = (
        "<html><head><title>成都人才公寓</title></head><body><h1>成都人才公寓</h1>"
        "<p>成都今年建设人才公寓三千套，吸引洛阳等地人才。</p></body></html>"
    )
    assert "page.html added" in service.add_article("page.html", page.encode("utf-8"))
    assert service.wait_for_rebuild(60)["error"] == ""
    assert "page.html" in {source for _, source in service.articles()}
    assert service.status()["state"] == "ready"


def test_web_settings_come_from_the_config_file_before_the_environment(tmp_path, monkeypatch):
    for name in ("QA_AUTH", "QA_SHARE", "QA_RATE_LIMIT", "QA_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "qa.toml").write_text('auth = "editor:secret"\nrate_limit = 5\nshare = false\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    web_settings = WebSettings.load()
    assert web_settings.auth == ("editor", "secret") and web_settings.rate_limit == 5 and not web_settings.share
    monkeypatch.setenv("QA_RATE_LIMIT", "9")
    assert WebSettings.load().rate_limit == 9
    # The web chat's keys are not settings of the engine, and the engine does not refuse them.
    assert Settings.load().top_k == 5
