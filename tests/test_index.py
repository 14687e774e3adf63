"""Index build, reload, staleness and damage, with the fake encoder (fast, no model)."""

from __future__ import annotations

import json
import time

import pytest

from qa.errors import IndexCorruptError, IndexNotFoundError, StaleIndexError
from qa.index.build import build_index
from qa.index.freshness import FRESHNESS_INTERVAL_S, index_status
from qa.index.read import load_index
from qa.search.retriever import Retriever
from qa.settings import Settings


@pytest.fixture
def built(settings, fake_encoder):
    build_index(settings, encoder=fake_encoder)
    return settings


def test_build_writes_vectors_passages_and_manifest(built, fake_encoder):
    index = load_index(built)
    manifest = json.loads((built.index_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"] == fake_encoder.name
    assert manifest["dimension"] == fake_encoder.dimension
    assert manifest["settings"]["chunk_size"] == built.chunk_size
    assert {a["source"] for a in manifest["articles"]} == {p.name for p in built.corpus_dir.glob("*.txt")}
    assert all(len(a["sha256"]) == 64 for a in manifest["articles"])
    assert len(index.chunks) == len(index.vectors) == len(index.lexical) == manifest["chunks"]


def test_reloaded_index_gives_the_same_results(built, fake_encoder):
    question = "昆山高新区发放了多少份安全宣传资料？"
    first = Retriever.from_settings(built, encoder=fake_encoder).retrieve(question, k=3)
    from qa.index import read as index_module

    index_module._CACHE.clear()  # force a read from disk
    second = Retriever.from_settings(built, encoder=fake_encoder).retrieve(question, k=3)
    assert [(h.source, h.start, h.score) for h in first] == [(h.source, h.start, h.score) for h in second]


def test_no_index_yet_names_qa_build(settings, fake_encoder):
    with pytest.raises(IndexNotFoundError, match="qa build"):
        Retriever.from_settings(settings, encoder=fake_encoder)
    assert index_status(settings)["state"] == "missing"


def test_changed_added_or_removed_article_is_answered_from_the_last_build_with_a_note(built, corpus, fake_encoder):
    from qa.search.answer import answer

    article = next(corpus.glob("*.txt"))
    article.write_text(article.read_text(encoding="utf-8") + "\n新增的一句话。\n", encoding="utf-8")
    (corpus / "new.txt").write_text("新文章\n内容一句。", encoding="utf-8")
    time.sleep(FRESHNESS_INTERVAL_S)
    retriever = Retriever(load_index(built), fake_encoder, built)
    result = answer("昆山高新区发放了多少份安全宣传资料？", settings=built, retriever=retriever, show_unrelated=True)
    assert result.passages, "a stale index still answers"
    assert "+new.txt" in result.stale and f"~{article.name}" in result.stale and "qa build" in result.stale
    assert result.to_dict()["stale"] == result.stale and "new.txt" in result.markdown
    status = index_status(built)
    assert status["state"] == "stale"
    assert "+new.txt" in status["changes"] and f"~{article.name}" in status["changes"]
    build_index(built, encoder=fake_encoder)
    assert index_status(built)["state"] == "ready"
    fresh = Retriever(load_index(built), fake_encoder, built)
    assert answer("新文章", settings=built, retriever=fresh).stale == ""


class CountingEncoder:
    """The fake encoder, counting the texts a build sends it."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension, self.texts = inner, inner.name, inner.dimension, []

    def encode_passages(self, texts):
        self.texts += list(texts)
        return self.inner.encode_passages(texts)

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)


def _texts_of(settings, source: str) -> int:
    """Passages plus sentences the index holds for one article."""
    index = load_index(settings)
    rows = [row for row, chunk in enumerate(index.chunks) if chunk.source == source]
    return len(rows) + sum(len(index.sentences.of_chunk(row)) for row in rows)


def test_adding_changing_and_removing_an_article_embeds_only_that_article(built, corpus, fake_encoder):
    counting = CountingEncoder(fake_encoder)
    (corpus / "new.txt").write_text(
        "---\ntitle: 新文章\ndate: 2024-05-01\n---\n黄埔区新开了一家图书馆。馆内藏书十万册。\n", encoding="utf-8"
    )
    summary = build_index(built, encoder=counting)
    assert (summary.added, summary.changed, summary.removed, summary.unchanged) == (1, 0, 0, 4)
    assert summary.embedded == len(counting.texts) == _texts_of(built, "new.txt") > 0
    assert all("图书馆" in t or "藏书" in t or "新文章" in t for t in counting.texts)

    counting.texts.clear()
    (corpus / "new.txt").write_text(
        "---\ntitle: 新文章\ndate: 2024-05-01\n---\n黄埔区新开了一家博物馆。\n", encoding="utf-8"
    )
    summary = build_index(built, encoder=counting)
    assert (summary.added, summary.changed, summary.removed, summary.unchanged) == (0, 1, 0, 4)
    # One passage of one sentence: two vectors, one text sent to the model.
    assert summary.embedded == _texts_of(built, "new.txt") == 2 and len(counting.texts) == 1
    assert not any("图书馆" in chunk.text for chunk in load_index(built).chunks)

    counting.texts.clear()
    (corpus / "new.txt").unlink()
    summary = build_index(built, encoder=counting)
    assert (summary.added, summary.changed, summary.removed, summary.unchanged, summary.embedded) == (0, 0, 1, 4, 0)
    assert "new.txt" not in load_index(built).articles

    summary = build_index(built, encoder=counting)
    assert not summary.written and "up to date" in str(summary)


def test_a_build_reads_a_new_article_once(built, corpus, fake_encoder, monkeypatch):
    from pathlib import Path

    article = corpus / "new.txt"
    article.write_text("新文章\n内容一句。", encoding="utf-8")
    reads = []
    original = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or original(self))
    build_index(built, encoder=fake_encoder)
    assert reads.count("new.txt") == 1  # hashed and parsed from the same bytes


def test_an_incremental_build_answers_as_a_full_build_does(built, corpus, fake_encoder):
    (corpus / "new.txt").write_text("黄埔区新开了一家图书馆。\n馆内藏书十万册，周末开放。\n", encoding="utf-8")
    build_index(built, encoder=fake_encoder)
    incremental = Retriever(load_index(built), fake_encoder, built)
    questions = ["图书馆藏书多少册？", "昆山高新区发放了多少份安全宣传资料？", "知识城与新加坡签署了多少份合作备忘录？"]
    before = [[(h.source, h.start, h.end, h.highlight) for h in incremental.retrieve(q, k=5)] for q in questions]
    summary = build_index(built, encoder=fake_encoder, full=True)
    assert summary.full and summary.embedded > 0
    full = Retriever(load_index(built), fake_encoder, built)
    after = [[(h.source, h.start, h.end, h.highlight) for h in full.retrieve(q, k=5)] for q in questions]
    assert before == after


def test_changing_the_chunk_size_rebuilds_every_article_and_says_why(built, fake_encoder):
    other = Settings.load(corpus_dir=built.corpus_dir, index_dir=built.index_dir, embed_model="fake", chunk_size=300)
    messages = []
    summary = build_index(other, encoder=fake_encoder, log=messages.append)
    assert summary.full and summary.unchanged == 0
    assert any("chunk_size 200 -> 300" in m and "every article" in m for m in messages)


def test_a_question_asked_during_a_build_is_answered_and_the_new_index_follows(
    built, corpus, fake_encoder, monkeypatch
):
    import threading

    from qa.search.answer import answer
    from qa.search.retriever import get_retriever

    started, release = threading.Event(), threading.Event()

    class SlowEncoder(CountingEncoder):
        def encode_passages(self, texts):
            started.set()
            release.wait(30)
            return super().encode_passages(texts)

    monkeypatch.setattr("qa.embed.factory.load_encoder", lambda settings: fake_encoder)
    (corpus / "new.txt").write_text("黄埔区新开了一家图书馆。\n馆内藏书十万册。\n", encoding="utf-8")
    errors = []
    builder = threading.Thread(target=lambda: _catch(errors, build_index, built, encoder=SlowEncoder(fake_encoder)))
    builder.start()
    try:
        assert started.wait(30)
        during = answer("图书馆藏书多少册？", settings=built, retriever=get_retriever(built), show_unrelated=True)
        assert during.passages and "+new.txt" in during.stale
        assert index_status(built)["building"]
    finally:
        release.set()
        builder.join(60)
    assert not errors
    after = answer("图书馆藏书多少册？", settings=built, retriever=get_retriever(built), show_unrelated=True)
    assert after.stale == "" and after.passages[0].source == "new.txt"


def _catch(errors, function, *args, **kwargs):
    try:
        function(*args, **kwargs)
    except Exception as error:  # reported by the test, not lost in a thread
        errors.append(error)


def test_other_chunk_size_makes_the_index_stale(built):
    other = Settings.load(corpus_dir=built.corpus_dir, index_dir=built.index_dir, embed_model="fake", chunk_size=300)
    with pytest.raises(StaleIndexError, match="chunk_size 200 -> 300"):
        load_index(other)


@pytest.mark.parametrize("victim", ["vectors.faiss", "chunks.jsonl", "manifest.json"])
def test_damaged_index_is_reported_not_crashed(built, victim):
    from qa.index import read as index_module

    index_module._CACHE.clear()
    path = built.index_dir / victim
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    with pytest.raises(IndexCorruptError, match="qa build"):
        load_index(built)


def test_interrupted_build_keeps_the_previous_index(built, fake_encoder, monkeypatch):
    before = (built.index_dir / "manifest.json").read_text(encoding="utf-8")

    class Interrupted(Exception):
        pass

    def explode(*args, **kwargs):
        raise Interrupted

    from qa.stores import bm25 as lexical

    monkeypatch.setattr(lexical.LexicalIndex, "save", explode)
    with pytest.raises(Interrupted):
        build_index(built, encoder=fake_encoder, full=True)
    assert (built.index_dir / "manifest.json").read_text(encoding="utf-8") == before
    assert load_index(built).chunks
    monkeypatch.undo()
    build_index(built, encoder=fake_encoder)  # the next build cleans up and succeeds
    leftovers = [p.name for p in built.index_dir.parent.glob(".index.*") if not p.name.endswith(".lock")]
    assert leftovers == []


def test_a_build_through_a_linked_index_folder_replaces_the_folder_it_points_at(built, fake_encoder, tmp_path):
    """QA_INDEX_DIR a link (to a bigger disk): the build swaps the folder at its target
    and the link stays. It had become a real folder beside the link, the target kept
    the old index, and a retired `.old-` link stayed behind forever."""
    from dataclasses import replace

    elsewhere = tmp_path / "big-disk" / "index"
    elsewhere.parent.mkdir()
    built.index_dir.rename(elsewhere)
    link = tmp_path / "linked-index"
    link.symlink_to(elsewhere, target_is_directory=True)
    settings = replace(built, index_dir=link)
    before = json.loads((elsewhere / "manifest.json").read_text(encoding="utf-8"))["built_at"]
    time.sleep(1.1)  # built_at has seconds
    build_index(settings, encoder=fake_encoder, full=True)
    assert link.is_symlink() and link.resolve() == elsewhere.resolve()
    assert json.loads((elsewhere / "manifest.json").read_text(encoding="utf-8"))["built_at"] != before
    assert load_index(settings).chunks
    leftovers = [p.name for p in [*tmp_path.glob(".linked-index.*"), *elsewhere.parent.glob(".index.*")]]
    assert [name for name in leftovers if not name.endswith(".lock")] == []


def test_a_bad_file_is_skipped_with_its_reason_and_the_rest_is_indexed(built, corpus, fake_encoder):
    (corpus / "broken.txt").write_bytes(b"\x00\x00binary")
    (corpus / "empty.txt").write_bytes(b"")
    duplicate = next(corpus.glob("kunshan*.txt"))
    (corpus / "copy-of-kunshan.txt").write_bytes(duplicate.read_bytes())
    summary = build_index(built, encoder=fake_encoder)
    reasons = {item.source: item.reason for item in summary.skipped}
    assert set(reasons) == {"broken.txt", "empty.txt", "copy-of-kunshan.txt"}
    assert "binary" in reasons["broken.txt"] and "same text as" in reasons["copy-of-kunshan.txt"]
    assert all(name in str(summary) for name in reasons)
    status = index_status(built)
    assert status["state"] == "ready", "a skipped file does not make the index look stale"
    assert {item["source"] for item in status["skipped"]} == set(reasons)
    assert len(load_index(built).articles) == 4


def test_build_killed_between_its_two_renames_is_recovered(built):
    # The old index was moved aside and the new one never moved in.
    index_dir = built.index_dir
    aside = index_dir.with_name(".index.old-12345")
    index_dir.rename(aside)
    assert load_index(built).chunks  # put back, not "no index"
    assert index_dir.exists() and not aside.exists()


def test_second_build_while_one_runs_is_refused(built, fake_encoder):
    import fcntl

    from qa.errors import IndexWriteError

    with open(built.index_dir.with_name(".index.lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(IndexWriteError, match="another build"):
            build_index(built, encoder=fake_encoder)
    assert load_index(built).chunks


def test_unwritable_index_folder_is_a_clear_error(tmp_path, corpus, fake_encoder):
    from qa.errors import IndexWriteError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = Settings.load(corpus_dir=corpus, index_dir=blocker / "index", embed_model="fake")
    with pytest.raises(IndexWriteError, match="QA_INDEX_DIR"):
        build_index(settings, encoder=fake_encoder)


def test_the_vector_index_kind_can_be_chosen_without_embedding_again(built, fake_encoder):
    question = "昆山高新区发放了多少份安全宣传资料？"
    exact = Retriever.from_settings(built, encoder=fake_encoder).retrieve(question, k=3)
    assert json.loads((built.index_dir / "manifest.json").read_text(encoding="utf-8"))["vector_index"] == {
        "passages": "flat",
        "sentences": "flat",
    }  # a small corpus is searched exactly
    from dataclasses import replace

    hnsw = replace(built, vector_index="hnsw")
    summary = build_index(hnsw, encoder=fake_encoder)
    assert summary.written and summary.embedded == 0  # the stored vectors, re-indexed
    manifest = json.loads((built.index_dir / "manifest.json").read_text(encoding="utf-8"))
    # Sentences are read by row, never searched: their store stays flat.
    assert manifest["vector_index"] == {"passages": "hnsw", "sentences": "flat"}
    graph = Retriever.from_settings(hnsw, encoder=fake_encoder).retrieve(question, k=3)
    assert [(h.source, h.start) for h in graph] == [(h.source, h.start) for h in exact]
    assert not build_index(hnsw, encoder=fake_encoder).written  # then up to date
    with pytest.raises(Exception, match="vector_index must be one of auto, flat, hnsw"):
        Settings.load(vector_index="ivf")


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("top_k", 0, "top_k must be between 1 and 50"),
        ("chunk_size", 5, "chunk_size"),
        ("embed_context", "titel", "one of none"),
    ],
)
def test_bad_settings_are_named(setting, value, message):
    from qa.errors import SettingsError

    with pytest.raises(SettingsError, match=message):
        Settings.load(**{setting: value})


def test_a_filter_keeps_every_result_inside_the_articles_it_allows(built, fake_encoder):
    from qa.errors import SettingsError
    from qa.schema import Filter

    retriever = Retriever(load_index(built), fake_encoder, built)
    question = "知识城与新加坡签署了多少份合作备忘录？"
    unfiltered = {hit.source for hit in retriever.retrieve(question, k=10)}
    luoyang = "luoyang-science-bureau.txt"
    hits = retriever.retrieve(question, k=5, where=Filter(sources=frozenset({luoyang})))
    assert hits and {hit.source for hit in hits} == {luoyang} != unfiltered
    dates = {a.source: a.date for a in load_index(built).articles.values()}
    first = min(dates.values())
    hits = retriever.retrieve(question, k=10, where=Filter(date_from=first, date_to=first))
    assert hits and all(dates[hit.source] == first for hit in hits)
    with pytest.raises(SettingsError, match="no indexed article matches"):
        retriever.retrieve(question, where=Filter(date_from="1990-01-01", date_to="1990-12-31"))


def test_a_link_to_a_file_outside_the_corpus_is_skipped_not_served(tmp_path, fake_encoder):
    secret = tmp_path / "private" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("银行账户密码是七七八八九九，请勿外传。\n", encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "news.txt").write_text("知识城与新加坡签署了81份合作备忘录。\n", encoding="utf-8")
    (corpus / "inside-link.txt").symlink_to(corpus / "news.txt")
    (corpus / "leak.txt").symlink_to(secret)
    settings = Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")
    summary = build_index(settings, encoder=fake_encoder)
    skipped = {item.source: item.reason for item in summary.skipped}
    assert "outside the corpus folder" in skipped["leak.txt"]
    index = load_index(settings)
    assert "leak.txt" not in index.articles
    assert not any("密码" in chunk.text for chunk in index.chunks)
    assert index_status(settings)["state"] == "ready"  # the skipped link does not make it stale


@pytest.mark.parametrize("victim", ["vectors.faiss", "sentence_vectors.faiss", "chunks.jsonl", "lexical/lexical.json"])
def test_a_flipped_byte_in_any_index_file_is_caught_at_load(built, victim):
    from qa.index import read as index_module

    index_module._CACHE.clear()
    path = built.index_dir / victim
    data = bytearray(path.read_bytes())
    data[len(data) * 2 // 3] ^= 0x01  # one bit, deep in the vectors: FAISS loads it happily
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=f"corrupt \\({victim} does not match the checksum.*qa build"):
        load_index(built)
    assert index_status(built)["state"] == "unusable"


def test_a_manifest_that_is_not_an_object_is_one_clear_error(built, fake_encoder):
    from qa.index import read as index_module

    index_module._CACHE.clear()
    (built.index_dir / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="manifest.json is not a JSON object.*qa build"):
        load_index(built)
    assert build_index(built, encoder=fake_encoder).articles == 4  # the build replaces it
    assert load_index(built).chunks


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs mounted at tmp_path/disk (needs root, as CI has); unmounted after."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_while_the_vectors_are_written_is_one_line_and_keeps_the_old_index(
    small_disk, corpus, fake_encoder
):
    from qa.errors import IndexWriteError
    from qa.index import read as index_module

    settings = Settings.load(corpus_dir=corpus, index_dir=small_disk / "index", embed_model="fake")
    build_index(settings, encoder=fake_encoder)
    before = load_index(settings).manifest["built_at"]
    files = {p.relative_to(settings.index_dir).as_posix(): p.stat().st_size for p in settings.index_dir.rglob("*")}
    # Room for the text files of a second copy, not for its FAISS file: faiss's own write fails.
    first = ("chunks.jsonl", "sentences.json", "articles.jsonl", "term_counts.npz")  # written before the vectors
    room = sum(-(-files[name] // 4096) * 4096 for name in first)
    free = __import__("shutil").disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * (free - room - 4096))
    with pytest.raises(IndexWriteError) as failure:
        build_index(settings, encoder=fake_encoder, full=True)
    message = str(failure.value)
    assert "\n" not in message and "No space left on device" in message and "free space" in message
    assert "vectors.faiss" in message, message  # faiss's RuntimeError, not a json write
    (small_disk / "filler").unlink()
    index_module._CACHE.clear()
    assert load_index(settings).manifest["built_at"] == before  # the old index still answers
