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

from qa.index import read_index
from test_cli import MEMORANDA, qa_command, run_qa

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
    counts = re.search(r"(\d+) added, (\d+) changed, (\d+) removed, (\d+) unchanged.*embedded (\d+) texts", result.stdout)
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
    assert counts == {"added": 1, "changed": 0, "removed": 0, "unchanged": 4, "embedded": texts_of(ws.index, "library.txt")}
    after = ask(ws, LIBRARY_QUESTION)
    assert after["stale"] == ""
    assert after["passages"][0]["source"] == "library.txt" and "古籍修复室" in after["passages"][0]["highlight_text"]

    (ws.corpus / "library.txt").write_text(LIBRARY.replace("三十二万册", "四十五万册"), encoding="utf-8")
    counts, _ = build(ws)
    assert counts == {"added": 0, "changed": 1, "removed": 0, "unchanged": 4, "embedded": texts_of(ws.index, "library.txt")}
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
    env.update(QA_CORPUS_DIR=str(ws.corpus), QA_INDEX_DIR=str(ws.index), QA_CACHE_DIR=str(ws.cache), PYTHONIOENCODING="utf-8")
    return env
