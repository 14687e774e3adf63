"""The web chat: `respond` on a tiny index with a fake encoder, and the page in a real browser.

The browser test needs Playwright for Python (`pip install playwright`) and Debian's
Chromium (`apt-get install chromium`); it is skipped when either is missing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from qa.index import build_index, load_index
from qa.normalize import match_form
from qa.retrieve import Retriever
from qa.settings import Settings

web = pytest.importorskip("qa.web")

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


# -- respond ----------------------------------------------------------------------


def test_reply_cites_the_right_article_and_marks_the_answer(tiny):
    settings, retriever = tiny
    reply = web.respond(QUESTION, [], settings=settings, retriever=retriever)
    first = reply.split("**[2]**")[0]
    assert first.startswith("**[1]**")
    assert f"> [1] 《{TITLE}》 (knowledge-city.txt, 2021-03-01) ¶" in first
    assert "· score " in first
    assert f"<mark>{ANSWER_SENTENCE}</mark>" in first
    assert "Traceback" not in reply


def test_traditional_question_gets_the_same_article(tiny):
    settings, retriever = tiny
    reply = web.respond("知識城與新加坡簽署了多少份合作備忘錄？", [], settings=settings, retriever=retriever)
    assert f"> [1] 《{TITLE}》" in reply
    assert "<mark>" in reply


def test_unanswerable_question_gets_the_not_found_message(tiny):
    settings, retriever = tiny
    reply = web.respond("火星上有水吗？", [], settings=settings, retriever=retriever)
    assert "没有在文章中找到" in reply
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
        def __getattr__(self, name):
            raise RuntimeError("boom")

    reply = web.respond(QUESTION, [], settings=settings, retriever=Broken())
    assert reply == web.ERROR_REPLY
    assert "RuntimeError" in capsys.readouterr().err  # the details go to the server log


def test_article_text_cannot_inject_markup():
    from qa.schema import Hit

    text = "1. 价格<b>$5</b> *星* [链接](x)\n- 列表"
    hit = Hit(text=text, score=1.0, title="t", source="s", start=10, end=10 + len(text), citation="c",
              highlight=(10, 12))
    from qa.answer import highlight_markup

    markup = highlight_markup(hit)
    assert markup.startswith("<mark>1\\.</mark> ")
    assert "<b>" not in markup and "\\<b\\>" in markup
    assert "\\$5" in markup and "\\*星\\*" in markup and "\\[链接\\]" in markup
    assert "\n\\- 列表" in markup


def test_app_has_title_examples_and_no_network(tiny):
    settings, retriever = tiny
    app = web.make_app(settings, retriever=retriever)
    assert app.title == web.TITLE
    assert len(web.EXAMPLES) == 4 and app.examples == web.EXAMPLES
    assert app.analytics_enabled is False
    assert app.fn(QUESTION, []).startswith("**[1]**")


def test_serve_builds_a_missing_index_first(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")
    import qa.index

    real_build = qa.index.build_index
    monkeypatch.setattr(qa.index, "build_index", lambda s, **kw: real_build(s, encoder=TopicEncoder(), **kw))
    web.prepare_index(settings)
    assert "no index in" in capsys.readouterr().out
    assert qa.index.index_status(settings)["state"] == "ready"
    web.prepare_index(settings)  # ready now: nothing to do
    assert "building" not in capsys.readouterr().out


# -- the page in a real browser ---------------------------------------------------

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    for candidate in (os.environ.get("QA_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
def test_chat_in_a_real_browser(tiny, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium not found (apt-get install chromium, or set QA_CHROMIUM)")
    settings, retriever = tiny
    port = _free_port()
    app = web.serve(replace(settings, port=port), retriever=retriever, block=False)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded", timeout=15_000)
                box = page.get_by_placeholder("输入问题… / Type a question…")
                box.wait_for(timeout=15_000)
                sync_api.expect(page).to_have_title(web.TITLE, timeout=5_000)
                box.fill(QUESTION)
                box.press("Enter")
                reply = page.locator(".message.bot, [data-testid='bot']").filter(has_text="《").first
                reply.wait_for(timeout=15_000)
                assert f"[1] 《{TITLE}》" in reply.inner_text()
                mark = reply.locator("mark").first
                assert mark.inner_text() == ANSWER_SENTENCE
                assert mark.is_visible()
                # The chat is idle again (no progress overlay on the textbox) before the screenshot.
                sync_api.expect(page.get_by_text("queue:")).to_have_count(0, timeout=5_000)
                page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
                if os.environ.get("QA_SCREENSHOT"):
                    shutil.copy(tmp_path / "chat.png", os.environ["QA_SCREENSHOT"])
            finally:
                browser.close()
    finally:
        app.close()
