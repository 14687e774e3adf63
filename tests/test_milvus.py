"""QA_STORE=milvus end to end: the same answers as the local store, incremental builds
through upsert and delete, filters inside the search, a build that dies leaving the
live index exact, `qa status`; embedded milvus-lite and a milvus-lite server process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import milvus_missing

from qa.index.build import build_index
from qa.index.freshness import index_status
from qa.index.read import load_index
from qa.schema import Filter
from qa.search.retriever import Retriever
from qa.settings import Settings

pytestmark = pytest.mark.skipif(bool(milvus_missing()), reason=milvus_missing() or "milvus available")

QUESTIONS = [
    "昆山高新区发放了多少份安全宣传资料？",
    "知识城与新加坡签署了多少份合作备忘录？",
    "洛阳市科技局如何推动科技创新？",
    "知識城在人形機器人領域有布局嗎？",
    "How many memoranda did Knowledge City sign with Singapore?",
]
FILTERS = [
    None,
    Filter(date_from="2024-01-01"),
    Filter(sources=frozenset({"knowledge-city-new-productive-forces-2024.txt"})),
]


@pytest.fixture(params=["embedded", "server"])
def milvus_uri(request, tmp_path):
    """Embedded milvus-lite (the default URI: a .db beside the index folder), or the
    session's milvus-lite server reached by URI."""
    return "" if request.param == "embedded" else request.getfixturevalue("milvus_server")


def _settings(tmp_path, corpus, store, uri=""):
    return Settings.load(
        corpus_dir=corpus, index_dir=tmp_path / f"index-{store}", embed_model="fake", store=store, milvus_uri=uri
    )


def _hits(settings, encoder, question, where=None):
    retriever = Retriever(load_index(settings), encoder, settings)
    return [(h.source, h.start, h.end, round(h.score, 4)) for h in retriever.retrieve(question, 5, where=where)]


def _rows(settings) -> dict[str, int]:
    """Rows of each collection as Milvus counts them (deleted ones excluded)."""
    from qa.stores.milvus import connect

    block = load_index(settings).manifest["store"]
    client = connect(settings.milvus_target()[0])
    return {
        kind: len(client.query(name, filter="pk >= 0", output_fields=["pk"], limit=16384))
        for kind, name in block["collections"].items()
    }


def test_milvus_answers_as_the_local_store_does_with_and_without_filters(tmp_path, corpus, fake_encoder, milvus_uri):
    local, milvus = _settings(tmp_path, corpus, "local"), _settings(tmp_path, corpus, "milvus", milvus_uri)
    build_index(local, encoder=fake_encoder)
    summary = build_index(milvus, encoder=fake_encoder)
    assert summary.chunks == len(load_index(local).chunks)
    for question in QUESTIONS:
        for where in FILTERS:
            assert _hits(milvus, fake_encoder, question, where) == _hits(local, fake_encoder, question, where), (
                question,
                where,
            )
    index = load_index(milvus)
    assert not (milvus.index_dir / "vectors.faiss").exists(), "vectors live in Milvus, not in the folder"
    assert _rows(milvus) == {"passages": len(index.chunks), "sentences": len(index.sentences)}


def test_a_filter_goes_into_the_milvus_search_itself(tmp_path, corpus, fake_encoder):
    from qa.stores.milvus import filter_expression

    milvus = _settings(tmp_path, corpus, "milvus")
    build_index(milvus, encoder=fake_encoder)
    index = load_index(milvus)
    where = Filter(sources=frozenset({"knowledge-city-new-productive-forces-2024.txt"}))
    vector = fake_encoder.encode_queries(["新加坡"])[0]
    ids, _ = index.vectors.search(vector, 100, where=where)  # no allowed rows: only the expression filters
    rows = ids[0][ids[0] >= 0]
    assert len(rows) == sum(c.source in where.sources for c in index.chunks)
    assert {index.chunks[r].source for r in rows} == set(where.sources)
    rows, _ = index.lexical_search.search("新加坡 合作备忘录", 100, where=Filter(date_to="2021-12-31"))
    assert rows.size and all("2021" <= index.chunks[r].date <= "2021-12-31" for r in rows)
    expression = filter_expression(
        3, np.array([7, 9]), Filter(sources=frozenset({'a "b".txt'}), date_from="2024-01-01")
    )
    assert (
        expression
        == 'born <= 3 and pk not in [7,9] and source in ["a \\"b\\".txt"] and date != "" and date >= "2024-01-01"'
    )


def test_an_incremental_build_upserts_changed_articles_and_deletes_removed_ones(
    tmp_path, corpus, fake_encoder, milvus_uri
):
    local, milvus = _settings(tmp_path, corpus, "local"), _settings(tmp_path, corpus, "milvus", milvus_uri)
    build_index(milvus, encoder=fake_encoder)
    first = load_index(milvus).manifest["store"]
    articles = sorted(corpus.glob("*.txt"))
    articles[0].write_text(
        articles[0].read_text(encoding="utf-8") + "\n昆山新增了一座图书馆，藏书三万册。\n", encoding="utf-8"
    )
    articles[1].unlink()
    (corpus / "new.txt").write_text("新文章\n\n深圳发布了新的人工智能产业政策，支持企业研发。", encoding="utf-8")
    build_index(local, encoder=fake_encoder)
    summary = build_index(milvus, encoder=fake_encoder)
    assert (summary.added, summary.changed, summary.removed, summary.full) == (1, 1, 1, False)
    block = load_index(milvus).manifest["store"]
    assert block["collections"] == first["collections"] and block["generation"] == first["generation"] + 1
    assert block["retired"]["passages"] > 0
    index = load_index(milvus)
    # The retired rows are gone from Milvus, not only filtered out.
    assert _rows(milvus) == {"passages": len(index.chunks), "sentences": len(index.sentences)}
    for question in QUESTIONS + ["昆山新增的图书馆藏书多少册？", "深圳发布了什么政策？"]:
        assert _hits(milvus, fake_encoder, question) == _hits(local, fake_encoder, question), question


def test_a_build_that_dies_after_writing_to_milvus_leaves_the_live_index_exact(
    tmp_path, corpus, fake_encoder, monkeypatch
):
    import qa.index.build

    milvus = _settings(tmp_path, corpus, "milvus")
    build_index(milvus, encoder=fake_encoder)
    before = {q: _hits(milvus, fake_encoder, q) for q in QUESTIONS}
    article = corpus / "kunshan-high-tech-zone-safety.txt"
    article.write_text(article.read_text(encoding="utf-8").replace("昆山", "苏州"), encoding="utf-8")
    (corpus / "new.txt").write_text("新文章\n\n昆山高新区发放了九千份安全宣传资料。", encoding="utf-8")

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # killed between the Milvus writes and the folder swap

    monkeypatch.setattr(qa.index.build, "write_atomically", die)
    with pytest.raises(KeyboardInterrupt):
        build_index(milvus, encoder=fake_encoder)
    from qa.index import read as index_module

    index_module._CACHE.clear()
    # Milvus holds the dead build's rows, but the live index searches only its own.
    assert {q: _hits(milvus, fake_encoder, q) for q in QUESTIONS} == before
    monkeypatch.undo()
    summary = build_index(milvus, encoder=fake_encoder)
    assert (summary.added, summary.changed) == (1, 1)
    index = load_index(milvus)
    assert _rows(milvus) == {"passages": len(index.chunks), "sentences": len(index.sentences)}
    assert _hits(milvus, fake_encoder, "昆山高新区发放了多少份安全宣传资料？")[0][0] == "new.txt"


def test_a_full_build_writes_new_collections_and_drops_the_old(tmp_path, corpus, fake_encoder):
    from qa.stores.milvus import connect

    milvus = _settings(tmp_path, corpus, "milvus")
    build_index(milvus, encoder=fake_encoder)
    old = load_index(milvus).manifest["store"]["collections"]
    build_index(milvus, encoder=fake_encoder, full=True)
    new = load_index(milvus).manifest["store"]["collections"]
    names = set(connect(milvus.milvus_target()[0]).list_collections())
    assert set(new.values()) <= names and not set(old.values()) & names


def test_qa_status_names_the_store_and_switching_stores_rebuilds(tmp_path, corpus, fake_encoder, capsys, monkeypatch):
    from qa.cli import main

    milvus = _settings(tmp_path, corpus, "milvus")
    build_index(milvus, encoder=fake_encoder)
    status = index_status(milvus)
    assert status["state"] == "ready" and status["store"]["kind"] == "milvus"
    assert status["store"]["uri"].endswith("index-milvus.milvus.db")
    monkeypatch.setenv("QA_STORE", "milvus")
    monkeypatch.setenv("QA_EMBED_MODEL", "fake")
    assert main(["--corpus", str(corpus), "--index", str(milvus.index_dir), "status"]) == 0
    out = capsys.readouterr().out
    assert "Milvus at" in out and status["store"]["collections"]["passages"] in out
    assert main(["--corpus", str(corpus), "--index", str(milvus.index_dir), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["store"]["generation"] == 1
    # The same folder read with the local store: other settings, so it must be rebuilt.
    local = Settings.load(corpus_dir=corpus, index_dir=milvus.index_dir, embed_model="fake", store="local")
    assert index_status(local)["state"] == "unusable" and "store 'milvus' -> None" in index_status(local)["problem"]


def test_a_credential_in_the_uri_is_never_written_to_the_index(tmp_path, corpus):
    settings = Settings.load(
        corpus_dir=corpus,
        index_dir=tmp_path / "i",
        store="milvus",
        milvus_uri="https://root:secret@milvus.example:19530",
    )
    assert settings.index_shape()["milvus_uri"] == "https://milvus.example:19530"


def test_an_embedded_database_open_in_another_process_is_reported_with_the_fix(tmp_path, corpus, fake_encoder):
    import subprocess
    import sys

    from qa.errors import StoreUnavailableError
    from qa.stores.milvus import connect

    path = tmp_path / "held.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from pymilvus import MilvusClient; MilvusClient({str(path)!r}); print('open', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreUnavailableError, match="milvus-lite server --data-dir"):
            connect(str(path))
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.model
def test_the_real_model_answers_the_dev_questions_alike_on_both_stores(real_index, tmp_path):
    """The bundled corpus with the real model on Milvus: the dev set's recall within
    0.02 of the local store's, most top answers the very same passage, and the web
    chat's reply the same."""
    from conftest import EVAL_FILE

    from qa.eval.evaluate import evaluate, load_questions

    settings = Settings.load(
        corpus_dir=real_index.corpus_dir,
        index_dir=tmp_path / "index",
        store="milvus",
        milvus_uri=str(tmp_path / "m.db"),
    )
    build_index(settings, encoder=real_index.retriever.encoder)
    milvus = Retriever(load_index(settings), real_index.retriever.encoder, settings)
    questions = load_questions(EVAL_FILE)
    local_metrics, local_results = evaluate(questions, real_index.retriever, "hybrid")
    milvus_metrics, milvus_results = evaluate(questions, milvus, "hybrid")
    assert abs(milvus_metrics.recall_at_1 - local_metrics.recall_at_1) <= 0.02
    assert abs(milvus_metrics.recall_at_5 - local_metrics.recall_at_5) <= 0.02
    same = sum(
        a.first_answer_rank == b.first_answer_rank and a.verdict == b.verdict
        for a, b in zip(local_results, milvus_results)
    )
    assert same >= 0.9 * len(questions)
    question = "知识城与新加坡签署了多少份合作备忘录？"
    assert [h.text for h in milvus.retrieve(question, 3)] == [
        h.text for h in real_index.retriever.retrieve(question, 3)
    ]
    # The web chat's reply, citations and highlights included, is the same.
    from qa.serve.web import respond

    reply = respond(question, settings=settings, retriever=milvus)
    assert "81份合作備忘錄" in reply and reply == respond(
        question, settings=real_index.settings, retriever=real_index.retriever
    )


def test_milvus_hybrid_search_fuses_dense_and_bm25_by_rank_inside_the_filter(tmp_path, corpus, fake_encoder):
    milvus = _settings(tmp_path, corpus, "milvus")
    build_index(milvus, encoder=fake_encoder)
    index = load_index(milvus)
    question = "知识城与新加坡签署了多少份合作备忘录？"
    vector = fake_encoder.encode_queries([question])[0]
    dense, _ = index.vectors.search(vector, 5)
    lexical, _ = index.lexical_search.search(question, 5)
    rows, scores = index.vectors.hybrid(vector, question, 5)
    assert set(rows.tolist()) == set(dense[0].tolist()) | set(lexical.tolist())  # the union, ranked
    assert np.all(np.diff(scores) <= 1e-9) and scores[0] <= 2 / 61 + 1e-6  # RRF, k=60: at most 1/61 per list
    where = Filter(date_to="2021-12-31")
    rows, _ = index.vectors.hybrid(vector, question, 5, where)
    assert rows.size and all(index.chunks[r].date <= "2021-12-31" for r in rows)
