"""The index's life as a user lives it, through the real `qa` command and the real model:
one article added, changed and removed (only its texts embedded), questions asked
before a build (answered, marked stale), a build killed with SIGKILL (the old index
keeps answering), and articles in every encoding and format a newsroom has.

Each `qa` call loads the model (about 10 s), so the steps share a few calls.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_cli import MEMORANDA, qa_command, run_qa

from qa.index.read import read_index

pytestmark = pytest.mark.model

LIBRARY = (
    "---\ntitle: 黄埔区新图书馆开馆\ndate: 2024-06-01\n---\n"
    "黄埔区新图书馆于6月1日正式开馆，是区内面积最大的公共文化设施。\n"
    "新馆藏书三十二万册，设有古籍修复室和少儿阅览区，每周一闭馆。\n"
)
LIBRARY_QUESTION = "哪个图书馆设有古籍修复室？"


@pytest.fixture
def workspace(real_index, tmp_path):
    """Copies of the session's bundled corpus and its real index, ours to change."""
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(real_index.corpus_dir, corpus)
    shutil.copytree(real_index.index_dir, index)
    return SimpleNamespace(corpus=corpus, index=index, cache=real_index.settings.cache_dir, tmp=tmp_path)


def qa(ws, *args: str, timeout: int = 300):
    return run_qa(*args, cwd=ws.tmp, corpus=ws.corpus, index=ws.index, cache=ws.cache, timeout=timeout)


def ask(ws, question: str) -> dict:
    result = qa(ws, "ask", question, "--json", "--all")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def build(ws, *args: str) -> tuple[dict, str]:
    """Run `qa build`; the counts it printed, and its output."""
    result = qa(ws, "build", "-q", *args)
    assert result.returncode == 0, result.stderr
    counts = re.search(
        r"(\d+) added, (\d+) changed, (\d+) removed, (\d+) unchanged.*embedded (\d+) texts", result.stdout
    )
    assert counts, result.stdout
    names = ("added", "changed", "removed", "unchanged", "embedded")
    return dict(zip(names, map(int, counts.groups()))), result.stdout


def texts_of(index_dir: Path, source: str) -> int:
    """The passages and sentences the index holds for one article: what embedding it costs."""
    index = read_index(index_dir)
    rows = [row for row, chunk in enumerate(index.chunks) if chunk.source == source]
    return len(rows) + sum(len(index.sentences.of_chunk(row)) for row in rows)


def test_one_article_added_changed_and_removed_embeds_only_that_article(workspace):
    ws = workspace
    (ws.corpus / "library.txt").write_text(LIBRARY, encoding="utf-8")

    before = qa(ws, "ask", LIBRARY_QUESTION, "--json", "--all")
    assert before.returncode == 0, before.stderr
    payload = json.loads(before.stdout)
    assert "+library.txt" in payload["stale"] and "qa build" in payload["stale"]
    assert payload["passages"] and all(p["source"] != "library.txt" for p in payload["passages"])
    assert "library.txt" in before.stderr, "the CLI says the answer comes from an older index"

    counts, _ = build(ws)
    assert counts == {
        "added": 1,
        "changed": 0,
        "removed": 0,
        "unchanged": 4,
        "embedded": texts_of(ws.index, "library.txt"),
    }
    after = ask(ws, LIBRARY_QUESTION)
    assert after["stale"] == ""
    assert after["passages"][0]["source"] == "library.txt" and "古籍修复室" in after["passages"][0]["highlight_text"]

    (ws.corpus / "library.txt").write_text(LIBRARY.replace("三十二万册", "四十五万册"), encoding="utf-8")
    counts, _ = build(ws)
    assert counts == {
        "added": 0,
        "changed": 1,
        "removed": 0,
        "unchanged": 4,
        "embedded": texts_of(ws.index, "library.txt"),
    }
    assert "四十五万册" in read_index(ws.index).articles["library.txt"].text

    (ws.corpus / "library.txt").unlink()
    counts, _ = build(ws)
    assert counts == {"added": 0, "changed": 0, "removed": 1, "unchanged": 4, "embedded": 0}
    assert "library.txt" not in read_index(ws.index).articles


def test_sigkill_during_an_incremental_build_leaves_the_old_index_answering(workspace):
    ws = workspace
    (ws.corpus / "library.txt").write_text(LIBRARY, encoding="utf-8")
    manifest = (ws.index / "manifest.json").read_bytes()
    process = subprocess.Popen(
        [*qa_command(), "build"],
        cwd=ws.tmp,
        env=_env(ws),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        for line in process.stderr:  # the plan is made, the model is loading: mid-build
            if "loading embedding model" in line:
                break
        time.sleep(2)
        assert process.poll() is None, "the build ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    assert (ws.index / "manifest.json").read_bytes() == manifest, "the old index is untouched"
    payload = ask(ws, MEMORANDA)
    assert payload["found"] and "81份" in payload["passages"][0]["text"]
    assert "+library.txt" in payload["stale"]

    counts, _ = build(ws)  # the next build cleans up after the killed one
    assert counts["added"] == 1
    assert not list(ws.tmp.glob(".index.building-*")) and not list(ws.tmp.glob(".index.old-*"))


def _env(ws) -> dict:
    """The environment `run_qa` gives every other call."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(
        QA_CORPUS_DIR=str(ws.corpus), QA_INDEX_DIR=str(ws.index), QA_CACHE_DIR=str(ws.cache), PYTHONIOENCODING="utf-8"
    )
    return env


# Each article carries one fact no other has, and is asked about by that fact.
FORMATS = {
    "metro.txt": (
        "gbk",
        "广州地铁十八号线开通\n广州地铁十八号线全长六十二公里，列车最高时速一百六十公里，是国内最快的地铁线路之一。\n",
    ),
    "opera.txt": (
        "big5",
        "臺中歌劇院年度成績\n臺中歌劇院今年共舉辦三百二十場演出，吸引觀眾五十萬人次，創下開幕以來新高。\n",
    ),
    "bay.txt": ("utf-16", "深圳湾滨海步道贯通\n深圳湾公园新建的滨海步道全长十二公里，沿途设有八个观鸟平台。\n"),
    "village.txt": ("utf-8-sig", "亚运村赛后利用\n杭州亚运村赛后改造为住宅社区，可容纳一万户居民入住。\n"),
}
QUESTIONS = {
    "metro.txt": ("十八号线列车最高时速是多少？", "一百六十公里"),
    "opera.txt": ("臺中歌劇院今年舉辦了多少場演出？", "三百二十場"),
    "bay.txt": ("深圳湾滨海步道沿途有几个观鸟平台？", "八个观鸟平台"),
    "village.txt": ("杭州亚运村赛后可以容纳多少户居民？", "一万户"),
    "panda.html": ("成都大熊猫基地今年新生了多少只幼崽？", "二十只"),
    "walls.pdf": ("西安城墙夜游线路全长多少公里？", "十三点七公里"),
    "festival.docx": ("青岛国际啤酒节今年接待了多少游客？", "六百万人次"),
}
PANDA_PAGE = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<title>成都大熊猫繁育研究基地迎来生育高峰_新闻频道</title></head><body>
<nav><a href="/">首页</a> <a href="/news">新闻</a> <a href="/sports">体育</a> <a href="/login">登录</a></nav>
<article><h1>成都大熊猫繁育研究基地迎来生育高峰</h1>
<p>成都大熊猫繁育研究基地今年新生大熊猫幼崽二十只，存活率达到百分之百，创下历史纪录。</p>
<p>基地负责人介绍，新生幼崽将在明年春天与游客见面，基地还将扩建两座室外运动场。</p>
<p>据了解，基地目前共饲养大熊猫二百四十余只，是全球最大的圈养大熊猫种群所在地之一。</p></article>
<section class="comments"><h3>网友评论</h3><p>太可爱了！什么时候能去看？</p></section>
<footer>版权所有 © 新闻网 · 联系我们 · 广告服务</footer></body></html>"""
WALLS = (
    "西安城墙推出夜游线路\n"
    "西安城墙景区今年推出全新的夜游线路，游客可以在灯光下骑行或步行游览整段城墙，夜游线路全长十三点七公里，"
    "沿途设有十二处灯光秀和四个观景台，开放时间为每晚七点至十一点，门票价格与日间相同，景区还推出了夜间讲解服务。\n"
    "景区负责人表示，夜游项目开放首月已接待游客三十万人次，周末高峰时段实行预约入场。\n"
)
FESTIVAL = "青岛国际啤酒节闭幕\n第三十四届青岛国际啤酒节今年接待海内外游客六百万人次，消费啤酒两千吨。\n主办方表示，明年将增设西海岸会场。\n"


@pytest.mark.browser
def test_every_encoding_and_format_a_newsroom_has_is_retrievable(real_index, tmp_path):
    from test_readers import article_page, make_docx, print_to_pdf

    from qa.index.read import load_index
    from qa.search.retriever import Retriever
    from qa.settings import Settings

    ws = SimpleNamespace(
        corpus=tmp_path / "corpus", index=tmp_path / "index", cache=real_index.settings.cache_dir, tmp=tmp_path
    )
    ws.corpus.mkdir()
    for name, (encoding, text) in FORMATS.items():
        (ws.corpus / name).write_bytes(text.encode(encoding))
    (ws.corpus / "panda.html").write_text(PANDA_PAGE, encoding="utf-8")
    pdf = print_to_pdf(article_page(WALLS), tmp_path, "walls")
    shutil.copy(pdf, ws.corpus / "walls.pdf")
    (ws.corpus / "festival.docx").write_bytes(make_docx(FESTIVAL, "青岛国际啤酒节闭幕"))
    (ws.corpus / "binary.txt").write_bytes(bytes(range(256)) * 8)

    result = qa(ws, "build", "-q")
    assert result.returncode == 0, result.stderr
    assert "7 added" in result.stdout
    assert "binary.txt" in result.stdout.split("skipped", 1)[1], "the binary file is refused by name"
    status = qa(ws, "status")
    assert status.returncode == 0 and "binary.txt" in status.stdout

    settings = Settings.load(corpus_dir=ws.corpus, index_dir=ws.index)
    retriever = Retriever(load_index(settings), real_index.retriever.encoder, settings)
    for source, (question, fact) in QUESTIONS.items():
        hits = retriever.retrieve(question, k=3)
        assert hits[0].source == source and fact in hits[0].text, (source, [(h.source, h.text) for h in hits])
    articles = load_index(settings).articles
    assert "網友評論" not in articles["panda.html"].text and "网友评论" not in articles["panda.html"].text
    assert "登录" not in articles["panda.html"].text and "版权所有" not in articles["panda.html"].text
    assert articles["panda.html"].title.startswith("成都大熊猫繁育研究基地迎来生育高峰")
    walls = articles["walls.pdf"].text
    assert "夜游线路全长十三点七公里" in walls, "lines the PDF wrapped are joined again"
    assert articles["festival.docx"].title == "青岛国际啤酒节闭幕"
    assert articles["opera.txt"].text.startswith("臺中歌劇院")
