"""Index build, reload, staleness and damage, with the fake encoder (fast, no model)."""

from __future__ import annotations

import json
import shutil

import pytest

from qa.errors import CorpusError, IndexCorruptError, IndexNotFoundError, StaleIndexError
from qa.index import build_index, index_status, load_index
from qa.retrieve import Retriever
from qa.settings import Settings

from conftest import REPO


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", folder)
    return folder


@pytest.fixture
def settings(tmp_path, corpus):
    return Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")


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
    from qa import index as index_module

    index_module._CACHE.clear()  # force a read from disk
    second = Retriever.from_settings(built, encoder=fake_encoder).retrieve(question, k=3)
    assert [(h.source, h.start, h.score) for h in first] == [(h.source, h.start, h.score) for h in second]


def test_no_index_yet_names_qa_build(settings, fake_encoder):
    with pytest.raises(IndexNotFoundError, match="qa build"):
        Retriever.from_settings(settings, encoder=fake_encoder)
    assert index_status(settings)["state"] == "missing"


def test_changed_added_or_removed_article_makes_the_index_stale(built, corpus, fake_encoder):
    article = next(corpus.glob("*.txt"))
    article.write_text(article.read_text(encoding="utf-8") + "\n新增的一句话。\n", encoding="utf-8")
    with pytest.raises(StaleIndexError, match=rf"~{article.name}.*qa build"):
        load_index(built)
    (corpus / "new.txt").write_text("新文章\n内容一句。", encoding="utf-8")
    status = index_status(built)
    assert status["state"] == "stale"
    assert "+new.txt" in status["changes"] and f"~{article.name}" in status["changes"]
    build_index(built, encoder=fake_encoder)
    assert index_status(built)["state"] == "ready"


def test_other_chunk_size_makes_the_index_stale(built):
    other = Settings.load(corpus_dir=built.corpus_dir, index_dir=built.index_dir, embed_model="fake", chunk_size=300)
    with pytest.raises(StaleIndexError, match="chunk_size 200 -> 300"):
        load_index(other)


@pytest.mark.parametrize("victim", ["vectors.faiss", "chunks.jsonl", "manifest.json"])
def test_damaged_index_is_reported_not_crashed(built, victim):
    from qa import index as index_module

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

    from qa import lexical

    monkeypatch.setattr(lexical.LexicalIndex, "save", explode)
    with pytest.raises(Interrupted):
        build_index(built, encoder=fake_encoder)
    assert (built.index_dir / "manifest.json").read_text(encoding="utf-8") == before
    assert load_index(built).chunks
    monkeypatch.undo()
    build_index(built, encoder=fake_encoder)  # the next build cleans up and succeeds
    leftovers = [p.name for p in built.index_dir.parent.glob(".index.*") if not p.name.endswith(".lock")]
    assert leftovers == []


def test_unreadable_article_fails_the_build_and_keeps_the_index(built, corpus, fake_encoder):
    before = (built.index_dir / "manifest.json").read_text(encoding="utf-8")
    (corpus / "broken.txt").write_bytes(b"\x00\x00binary")
    with pytest.raises(CorpusError, match="broken.txt"):
        build_index(built, encoder=fake_encoder)
    assert (built.index_dir / "manifest.json").read_text(encoding="utf-8") == before


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


@pytest.mark.parametrize(
    "setting, value, message",
    [("top_k", 0, "top_k must be between 1 and 50"), ("chunk_size", 5, "chunk_size"), ("embed_context", "titel", "one of none")],
)
def test_bad_settings_are_named(setting, value, message):
    from qa.errors import SettingsError

    with pytest.raises(SettingsError, match=message):
        Settings.load(**{setting: value})
