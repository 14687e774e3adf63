"""Incremental builds of HNSW indexes append to the graphs: the new article is found,
a changed or removed article's old rows are never returned, and a build compacts past
DEAD_ROWS_MAX and on --full. Real FAISS, real files, the fake encoder."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from qa.bench.generate import BUNDLED, generate_corpus
from qa.index.build import build_index
from qa.index.read import forget_cached, load_index
from qa.search.retriever import Retriever
from qa.settings import Settings
from qa.stores.base import DEAD_ROWS_MAX
from qa.stores.faiss_store import FaissStore

# Texts no generated article holds (those are recombined sentences of corpus/).
MARKED = "青龙湖水库完成了第二期加固工程。工程共投入资金四千八百万元，新建泄洪闸两座。"
CHANGED = "白鹭洲公园的樱花节今年推迟到四月举办。主办方增设了夜间灯光秀和古琴演奏。"
NEW = "东港码头开通了直达海岛的夜班客轮。每晚九点发船，单程票价六十五元。"


@pytest.fixture
def graph(tmp_path):
    """Settings over 40 generated articles and one marked one, built in full as HNSW."""
    corpus = tmp_path / "corpus"
    generate_corpus(corpus, 40, sources=[BUNDLED])
    (corpus / "marked.txt").write_text(f"水库加固\n{MARKED}", encoding="utf-8")
    return Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake", vector_index="hnsw")


def _build(settings, encoder, **options):
    summary = build_index(settings, encoder=encoder, **options)
    forget_cached(settings.index_dir)
    return summary


def _every_row(index, encoder, text):
    """What the passage store returns for `text` when asked for all its rows."""
    ids, _ = index.vectors.search(encoder.encode_queries([text]), len(index.vectors))
    return ids[0]


def _sources(settings, encoder, text, k=5):
    return [hit.source for hit in Retriever(load_index(settings), encoder, settings).retrieve(text, k=k)]


def test_an_added_article_is_appended_to_the_graph_and_found(graph, fake_encoder):
    first = _build(graph, fake_encoder)
    assert first.vectors == "built"
    before = FaissStore.load(graph.index_dir / "vectors.faiss")
    old_vectors = before.vectors(np.arange(len(before)))
    (graph.corpus_dir / "new.txt").write_text(f"夜班客轮\n{NEW}", encoding="utf-8")

    summary = _build(graph, fake_encoder)

    assert summary.vectors == "appended" and summary.added == 1 and not summary.full
    after = FaissStore.load(graph.index_dir / "vectors.faiss")
    # The graph kept every vector where it was and took the new ones at its end.
    assert after.graph_rows == len(before) + summary.chunks - first.chunks
    assert np.array_equal(after._index.reconstruct_n(0, len(before)), old_vectors)
    assert _sources(graph, fake_encoder, "夜班客轮几点发船？")[0] == "new.txt"


def test_a_changed_articles_old_text_is_never_returned(graph, fake_encoder):
    _build(graph, fake_encoder)
    (graph.corpus_dir / "marked.txt").write_text(f"樱花节\n{CHANGED}", encoding="utf-8")

    summary = _build(graph, fake_encoder)

    assert summary.vectors == "appended" and summary.changed == 1
    index = load_index(graph)
    assert index.manifest["dead_rows"]["passages"] >= 1
    rows = _every_row(index, fake_encoder, MARKED)
    assert sorted(rows) == list(range(len(index.chunks)))  # every live row once, no dead one
    assert all("青龙湖" not in index.chunks[row].text for row in rows)
    hits = Retriever(index, fake_encoder, graph).retrieve(MARKED, k=10)
    assert all("青龙湖" not in hit.text for hit in hits)
    assert _sources(graph, fake_encoder, "樱花节推迟到几月？")[0] == "marked.txt"


def test_a_removed_article_is_never_returned_after_a_reload(graph, fake_encoder):
    _build(graph, fake_encoder)
    (graph.corpus_dir / "marked.txt").unlink()

    summary = _build(graph, fake_encoder)

    assert summary.vectors == "appended" and summary.removed == 1 and summary.embedded == 0
    index = load_index(graph)  # read from disk: the row maps say which rows are dead
    assert (graph.index_dir / "vectors.rows.npy").exists()
    assert sorted(_every_row(index, fake_encoder, MARKED)) == list(range(len(index.chunks)))
    sentence_ids, _ = index.sentence_vectors.search(fake_encoder.encode_queries([MARKED]), len(index.sentences))
    assert sorted(sentence_ids[0]) == list(range(len(index.sentences)))
    assert "marked.txt" not in _sources(graph, fake_encoder, MARKED, k=10)


def test_appended_builds_answer_as_a_full_build_does(graph, fake_encoder, tmp_path):
    _build(graph, fake_encoder)
    (graph.corpus_dir / "marked.txt").write_text(f"樱花节\n{CHANGED}", encoding="utf-8")
    (graph.corpus_dir / "new.txt").write_text(f"夜班客轮\n{NEW}", encoding="utf-8")
    assert _build(graph, fake_encoder).vectors == "appended"
    whole = replace(graph, index_dir=tmp_path / "whole")
    _build(whole, fake_encoder, full=True)

    for question in ("樱花节推迟到几月？", "夜班客轮几点发船？", MARKED, "科创成果直通车活动"):
        appended = Retriever(load_index(graph), fake_encoder, graph).retrieve(question, k=5)
        rebuilt = Retriever(load_index(whole), fake_encoder, whole).retrieve(question, k=5)
        assert [(h.source, h.start, h.text) for h in appended] == [(h.source, h.start, h.text) for h in rebuilt]
        assert [h.score for h in appended] == pytest.approx([h.score for h in rebuilt], abs=1e-5)


def test_a_build_compacts_past_the_dead_share_and_on_full(graph, fake_encoder):
    _build(graph, fake_encoder)
    articles = sorted(graph.corpus_dir.glob("scale-*.txt"))
    # One removal leaves few dead rows: appended. Then a quarter of the articles.
    articles[0].unlink()
    assert _build(graph, fake_encoder).vectors == "appended"
    for path in articles[1 : 1 + round(len(articles) * DEAD_ROWS_MAX) + 1]:
        path.unlink()

    summary = _build(graph, fake_encoder)

    assert summary.vectors == "compacted"
    manifest = json.loads((graph.index_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["dead_rows"] == {"passages": 0, "sentences": 0}
    assert not (graph.index_dir / "vectors.rows.npy").exists()
    assert len(FaissStore.load(graph.index_dir / "vectors.faiss")) == manifest["chunks"]

    (graph.corpus_dir / "marked.txt").unlink()
    assert _build(graph, fake_encoder).vectors == "appended"
    full = _build(graph, fake_encoder, full=True)
    assert full.vectors == "built" and full.full
    assert not (graph.index_dir / "vectors.rows.npy").exists()


def test_a_damaged_row_map_is_reported(graph, fake_encoder):
    from qa.errors import IndexCorruptError

    _build(graph, fake_encoder)
    (graph.corpus_dir / "marked.txt").unlink()
    _build(graph, fake_encoder)
    rows = graph.index_dir / "vectors.rows.npy"
    np.save(rows, np.zeros(3, dtype=np.int32))
    with pytest.raises(IndexCorruptError, match="qa build"):
        load_index(graph)


def test_bm25_from_counts_scores_as_bm25s_does():
    """The numpy construction (`LexicalIndex.from_counts`) gives bm25s's own scores,
    and counts taken and joined (an incremental build) give those of counting anew."""
    import bm25s

    from qa.stores.bm25 import LexicalIndex
    from qa.stores.term_counts import TermCounts
    from qa.text.tokens import query_terms, tokenize

    texts = [path.read_text(encoding="utf-8") for path in sorted(BUNDLED.glob("*.txt"))]
    documents = [tokenize(text[i : i + 200]) for text in texts for i in range(0, len(text), 200)] + [[]]
    reference = bm25s.BM25()
    reference.index(documents, show_progress=False)
    ours = LexicalIndex.from_tokens(documents)
    # Drop the first ten documents, put the rest back behind two new ones.
    kept = TermCounts.from_tokens(documents).take(np.arange(10, len(documents)))
    joined = TermCounts.concatenate([TermCounts.from_tokens(documents[:2]), kept])
    again = LexicalIndex.from_tokens(documents[:2] + documents[10:])
    for question in ("昆山高新区发放了多少份安全宣传资料？", "火灾", "社会主义现代化"):
        terms = query_terms(question)
        ids = [reference.vocab_dict[t] for t in dict.fromkeys(terms) if t in reference.vocab_dict]
        assert np.array_equal(ours.term_scores(terms), reference.get_scores_from_ids(ids))
        assert np.array_equal(LexicalIndex.from_counts(joined).term_scores(terms), again.term_scores(terms))
    assert set(ours._bm25.vocab_dict) == set(reference.vocab_dict)
    # Terms only the dropped documents held leave the vocabulary.
    assert set(LexicalIndex.from_counts(joined)._bm25.vocab_dict) == set(again._bm25.vocab_dict)


def test_an_index_of_format_6_is_upgraded_without_embedding_and_scores_as_a_full_build(graph, fake_encoder, tmp_path):
    from qa.index.write import file_checksum
    from qa.text.tokens import query_terms, tokenize

    _build(graph, fake_encoder)
    # What format 6 wrote: each passage's own tokens in tokens.jsonl, no term counts.
    folder = graph.index_dir
    chunks = load_index(graph).chunks
    (folder / "term_counts.npz").unlink()
    (folder / "tokens.jsonl").write_text(
        "".join(json.dumps(tokenize(chunk.text), ensure_ascii=False) + "\n" for chunk in chunks), encoding="utf-8"
    )
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]["term_counts.npz"]
    manifest["files"]["tokens.jsonl"] = file_checksum(folder / "tokens.jsonl")
    manifest["format_version"] = 6
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    summary = _build(graph, fake_encoder)

    assert summary.written and summary.embedded == 0 and summary.unchanged == summary.articles
    assert (folder / "term_counts.npz").exists() and not (folder / "tokens.jsonl").exists()
    whole = replace(graph, index_dir=tmp_path / "whole")
    _build(whole, fake_encoder, full=True)
    terms = query_terms("水库加固工程投入了多少资金？")
    assert np.array_equal(load_index(graph).lexical.term_scores(terms), load_index(whole).lexical.term_scores(terms))
