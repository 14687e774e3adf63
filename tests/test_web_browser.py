"""The web chat in a real headless Chromium, on the real index (the bundled articles and
the real model), plus one test article carrying XSS payloads.

Needs Playwright for Python (`pip install playwright`) and Debian's Chromium
(`apt-get install chromium`, or QA_CHROMIUM=/path); skipped when either is missing.
Screenshots of the main views go to $QA_SCREENSHOT_DIR when set (the README's are
in docs/screenshots/), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

web = pytest.importorskip("qa.serve.web")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

from qa.bench.ocr import chromium  # noqa: E402
from qa.index.build import build_index  # noqa: E402
from qa.index.freshness import FRESHNESS_INTERVAL_S  # noqa: E402
from qa.serve.limits import WebSettings  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.model]

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
BOT = "[data-testid='bot']"
USER = "[data-testid='user']"
XSS_SOURCE = "xss-test.txt"
# Every payload sets window.__xss if it ever runs.
XSS_ARTICLE = (
    "---\ntitle: 测试县火龙果<img src=x onerror=\"window.__xss='title'\">\ndate: 2020-05-01\n---\n"
    "测试县火龙果种植基地面积为300亩<img src=x onerror=\"window.__xss='body'\">，年产火龙果500吨。\n"
    "基地负责人说，欢迎访问[基地网站](javascript:window.__xss='link')了解<script>window.__xss='script'</script>更多信息。\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(settings, encoder):
    settings = replace(settings, port=_free_port())
    app = web.serve(settings, encoder=encoder, web_settings=WebSettings(rate_limit=0), block=False)
    return app, f"http://127.0.0.1:{settings.port}/"


@pytest.fixture(scope="module")
def site(real_index, tmp_path_factory):
    """The bundled articles plus the XSS test article, indexed with the real model and served."""
    root = tmp_path_factory.mktemp("web-real")
    corpus = root / "corpus"
    shutil.copytree(real_index.corpus_dir, corpus)
    (corpus / XSS_SOURCE).write_text(XSS_ARTICLE, encoding="utf-8")
    settings = replace(real_index.settings, corpus_dir=corpus, index_dir=root / "index")
    encoder = real_index.retriever.encoder
    build_index(settings, encoder=encoder)
    app, url = _serve(settings, encoder)
    yield SimpleNamespace(settings=settings, encoder=encoder, url=url, root=root)
    app.close()


@pytest.fixture(scope="module")
def browser():
    binary = chromium()
    if binary is None:
        pytest.skip("Chromium not found (apt-get install chromium, or set QA_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("QA_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="domcontentloaded", timeout=20_000)
    page.get_by_placeholder("输入问题… / Type a question…").wait_for(timeout=20_000)
    return page


@pytest.fixture
def page(browser, site):
    page = _open(browser, site.url)
    yield page
    page.close()


def ask(page, question: str):
    """Type `question`, press Enter, and return the new bot message once it is there."""
    before = page.locator(BOT).count()
    box = page.get_by_placeholder("输入问题… / Type a question…")
    box.fill(question)
    box.press("Enter")
    reply = page.locator(BOT).nth(before)
    reply.wait_for(timeout=30_000)
    sync_api.expect(reply).not_to_have_text("", timeout=30_000)
    # The chat is idle again (no progress overlay) before anything is read or shot.
    sync_api.expect(page.get_by_text("queue:")).to_have_count(0, timeout=10_000)
    return reply


def shoot(page, path: Path, reply=None) -> None:
    """A screenshot, with the top of `reply` (the chat scrolls to its end) in view."""
    if reply is not None:
        reply.evaluate("node => node.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(path), full_page=True)


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _article(page):
    return page.locator("#qa-article")


# -- questions in three scripts ----------------------------------------------------------


@pytest.mark.parametrize(
    "question, source, marked",
    [
        ("知识城与新加坡签署了多少份合作备忘录？", "knowledge-city-new-productive-forces-2024.txt", "81份合作備忘錄"),
        ("知識城在人形機器人領域有布局嗎？", "knowledge-city-new-productive-forces-2024.txt", "人形機器人領域"),
        ("What talent programme does Luoyang plan to implement?", "luoyang-science-bureau.txt", "河洛英才计划"),
    ],
    ids=["simplified", "traditional", "english"],
)
def test_question_shows_passage_citation_and_highlight(page, question, source, marked, shots):
    reply = ask(page, question)
    text = reply.inner_text()
    assert web.FOUND in text
    assert re.search(r"\[1\] 《[^》]+》 \([^)]*" + re.escape(source), text), text
    mark = reply.locator("mark").first
    assert marked in mark.inner_text() and mark.is_visible()
    if question.startswith("What"):
        shoot(page, shots / "chat.png", reply)


def test_no_answer_says_so_without_passages(page):
    reply = ask(page, "火星上有水吗？")
    verdict = reply.locator(".qa-not-found")
    sync_api.expect(verdict).to_contain_text("没有在文章中找到")
    assert "《" not in reply.inner_text()
    assert reply.locator("mark").count() == 0


# -- the article panel ------------------------------------------------------------------------


def test_a_passage_opens_in_its_article(page, shots):
    reply = ask(page, "What talent programme does Luoyang plan to implement?")
    article = _article(page)
    # The first passage opens by itself: title, date, file, its paragraph and neighbours.
    sync_api.expect(article).to_contain_text("党建引领洛阳科技创新提质增效")
    sync_api.expect(article).to_contain_text("luoyang-science-bureau.txt")
    sync_api.expect(article.locator("mark")).to_contain_text("河洛英才计划")
    assert article.locator(".qa-para").count() >= 2 and article.locator(".qa-passage").count() >= 1
    assert article.locator("mark").is_visible()  # scrolled into view
    shoot(page, shots / "article.png", reply)

    # Another passage of the same answer opens its own article.
    second_title = re.search(r"\[2\] 《([^》]+)》", reply.inner_text()).group(1)
    page.locator("#qa-passages label").nth(1).click()
    sync_api.expect(article.locator("h3")).to_contain_text(second_title)

    # After a second question, clicking the first answer brings its passages back.
    ask(page, "昆山高新区如何开展安全生产工作？")
    sync_api.expect(article).to_contain_text("kunshan-high-tech-zone-safety.txt")
    reply.click()
    sync_api.expect(article).to_contain_text("luoyang-science-bureau.txt")
    sync_api.expect(page.locator("#qa-passages label").first).to_contain_text("党建引领洛阳")


def test_follow_up_is_read_against_the_previous_question(page):
    ask(page, "研讨会大约有多少人参加？")
    reply = ask(page, "那在哪里举办？")
    sync_api.expect(reply.locator(".qa-resolved")).to_contain_text("研讨会在哪里举办？")
    assert "《" in reply.inner_text()


# -- settings -----------------------------------------------------------------------------------


def test_settings_change_the_result(page, shots):
    question = "知识城与新加坡签署了多少份合作备忘录？"
    default = ask(page, question).inner_text()
    # The answer first: the one passage that answers, not five.
    assert "[1]" in default and "[2]" not in default and "knowledge-city-new-productive-forces-2024.txt" in default

    _tab(page, "设置 · Settings")
    number = page.locator("#qa-k input[type='number']")
    number.fill("2")
    number.press("Enter")
    page.locator("#qa-to input, #qa-to textarea").first.fill("2021-12-31")
    page.screenshot(path=str(shots / "settings.png"), full_page=True)
    limited = ask(page, question).inner_text()
    assert "[1]" in limited and "[3]" not in limited  # k=2; a found answer may need only one
    # The 2024 article is outside the date range now.
    assert "knowledge-city-new-productive-forces-2024.txt" not in limited

    page.locator("#qa-to input, #qa-to textarea").first.fill("")
    page.locator("#qa-mode label", has_text="lexical").click()
    lexical = ask(page, question).inner_text()
    # Citations say what the verdict read in each passage, in words, in every mode.
    for reply in (default, lexical):
        assert re.search(r"\[1\] .*· (answers the question|related)", reply) and "· score" not in reply


def test_a_bad_date_is_explained_in_the_chat(page):
    _tab(page, "设置 · Settings")
    page.locator("#qa-from input, #qa-from textarea").first.fill("last year")
    reply = ask(page, "知识城与新加坡签署了多少份合作备忘录？")
    sync_api.expect(reply).to_contain_text("date like 2021-03-01")
    assert "Traceback" not in page.content()


# -- safety -----------------------------------------------------------------------------------


def test_html_in_the_question_is_shown_as_typed(page):
    question = "<img src=x onerror=\"window.__xss='question'\"> 知识城 [x](javascript:window.__xss='qlink') **粗**"
    ask(page, question)
    bubble = page.locator(USER).last
    assert bubble.locator("img").count() == 0 and bubble.locator("a").count() == 0
    assert bubble.locator("strong").count() == 0
    text = bubble.inner_text()
    assert "<img src=x onerror=" in text and "[x](javascript:" in text and "**粗**" in text
    assert page.evaluate("window.__xss") is None


def test_html_in_an_article_stays_inert_text(page, shots):
    reply = ask(page, "测试县火龙果种植基地面积有多大？")
    assert XSS_SOURCE in reply.inner_text()
    assert reply.locator("img, script, a[href^='javascript']").count() == 0
    assert "<img src=x onerror=" in reply.inner_text()
    article = _article(page)
    sync_api.expect(article).to_contain_text("<img src=x onerror=")
    assert article.locator("img, script, a").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("window.__xss") is None
    shoot(page, shots / "xss.png", reply)


# -- the index --------------------------------------------------------------------------------


def test_stale_index_is_shown_and_a_rebuild_brings_it_up_to_date(browser, site, tmp_path, shots):
    # A copy of the served folders, so the other tests' index stays as it was.
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(site.root / "corpus", corpus)
    shutil.copytree(site.root / "index", index)
    settings = replace(site.settings, corpus_dir=corpus, index_dir=index)
    app, url = _serve(settings, site.encoder)
    try:
        page = _open(browser, url)
        (corpus / "new-article.txt").write_text(
            "---\ntitle: 新文章\ndate: 2022-02-02\n---\n洛阳新建了一座科技馆，面积两万平方米。\n", encoding="utf-8"
        )
        # The corpus is looked at no more than once per FRESHNESS_INTERVAL_S (opening the
        # page may just have looked), so a change shows from the next look on.
        time.sleep(FRESHNESS_INTERVAL_S + 0.2)
        reply = ask(page, "洛阳将实施什么人才计划？")
        sync_api.expect(reply.locator(".qa-stale")).to_contain_text("new-article.txt")
        assert "《" in reply.inner_text()  # still answered, from the last good index

        _tab(page, "索引 · Index")
        status = page.locator("#qa-status")
        sync_api.expect(status).to_contain_text("out of date", timeout=10_000)
        sync_api.expect(status).to_contain_text("new-article.txt")
        page.screenshot(path=str(shots / "index-stale.png"), full_page=True)
        page.locator("#qa-rebuild").click()
        sync_api.expect(status).to_contain_text("matches the articles", timeout=120_000)
        sync_api.expect(status).to_contain_text("articles: 6")
        page.screenshot(path=str(shots / "index.png"), full_page=True)

        fresh = ask(page, "洛阳新建的科技馆面积多大？")
        assert "new-article.txt" in fresh.inner_text()
        assert fresh.locator(".qa-stale").count() == 0
        page.close()
    finally:
        app.close()
