"""Where an index's vectors live, chosen in one place: FAISS files beside the index
(`local`) or Milvus collections (`milvus`, for archives past one machine).

`backend(kind)` is the only branch on the store kind. The index reader opens a built
index's stores through it (`open`), and a build writes new ones through it (`write`);
neither knows which backend it talks to. Each backend imports its engine on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.errors import SettingsError, StoreUnavailableError
from qa.schema import Article, Chunk
from qa.settings import Settings
from qa.stores.base import SENTENCES_KIND, LexicalSearch, VectorStore, kind_for

LOCAL = "local"
MILVUS = "milvus"
STORE_KINDS = (LOCAL, MILVUS)


class ArticleRows(Protocol):
    """One article's rows as a build hands them to a store (`qa.index.build.Units`)."""

    article: Article
    chunks: list[Chunk]
    sentences: list[tuple[int, int, int, str]]  # (passage position, start, end, matching form)
    chunk_vectors: np.ndarray | None  # None: a reused article whose rows the store kept
    sentence_vectors: np.ndarray | None


@dataclass(frozen=True)
class OpenStores:
    """The stores of one index, opened for questions."""

    passages: VectorStore  # one vector per passage
    sentences: VectorStore  # one vector per sentence
    lexical_search: LexicalSearch | None = None  # BM25 candidates from the store itself


@dataclass(frozen=True)
class WrittenStores:
    """The stores a build wrote, and what the manifest and the swap need to know of them."""

    passages: VectorStore
    sentences: VectorStore
    manifest_block: dict | None = None  # the manifest's "store" entry: where the vectors live
    after_swap: Callable[[Callable[[str], None]], None] | None = None  # clean-up once swapped in


class StoreBackend(Protocol):
    kind: str
    files: tuple[str, str]  # the files in the index folder that stand for the two stores
    keeps_rows: bool  # whether rows of reused articles stay in the store across builds

    def open(self, index_dir: Path, settings: Settings) -> OpenStores: ...

    def write(
        self,
        rows: Sequence[ArticleRows],
        settings: Settings,
        dimension: int,
        previous: OpenStores | None,
        live_block: Callable[[], dict | None],
    ) -> WrittenStores: ...


class LocalStores:
    """FAISS files in the index folder: exact below `EXACT_BELOW` vectors, HNSW above."""

    kind = LOCAL
    files = ("vectors.faiss", "sentence_vectors.faiss")
    # FAISS files are written whole, so a build adds every vector again and reads the
    # reused articles' vectors back from the previous index first.
    keeps_rows = False

    def open(self, index_dir: Path, settings: Settings) -> OpenStores:
        from qa.stores.faiss_store import FaissStore

        return OpenStores(*(FaissStore.load(index_dir / name) for name in self.files))

    def write(self, rows, settings, dimension, previous=None, live_block=lambda: None) -> WrittenStores:
        from qa.stores.faiss_store import FaissStore

        passages = np.concatenate([unit.chunk_vectors for unit in rows])
        sentences = np.concatenate([unit.sentence_vectors for unit in rows])
        stores = []
        for vectors, kind in ((passages, kind_for(len(passages), settings.vector_index)), (sentences, SENTENCES_KIND)):
            store = FaissStore(dimension, kind)
            store.add(vectors)
            stores.append(store)
        return WrittenStores(*stores)


class MilvusStores:
    """Milvus collections (`qa.stores.milvus`); the index folder keeps the row -> key maps."""

    kind = MILVUS
    files = ("vectors.milvus.npz", "sentence_vectors.milvus.npz")
    # An incremental build upserts only added and changed articles; the rest stay.
    keeps_rows = True

    def open(self, index_dir: Path, settings: Settings) -> OpenStores:
        milvus = _milvus_module()
        # The settings' URI carries credentials the saved one lacks; settings for another
        # store are refused by the reader's settings check after this, from the saved URI.
        uri = settings.milvus_target()[0] if settings.store == MILVUS else None
        passages, sentences = (
            milvus.MilvusStore.load(index_dir / name, uri, settings.milvus_token) for name in self.files
        )
        return OpenStores(passages, sentences, milvus.MilvusLexical(passages))

    def write(self, rows, settings, dimension, previous=None, live_block=lambda: None) -> WrittenStores:
        """Upsert the rows of added and changed articles (all, for a full build) into
        Milvus, keyed by stable ids; reused articles' rows are already there.
        `live_block()` reads the live index's "store" block (only Milvus needs it)."""
        milvus = _milvus_module()
        from qa.stores.milvus_build import MilvusBuild

        passages_kind, sentences_kind = milvus.PASSAGES, milvus.SENTENCES
        uri, base = settings.milvus_target()
        build = MilvusBuild(
            uri,
            settings.milvus_token,
            base,
            live_block(),
            {passages_kind: previous.passages, sentences_kind: previous.sentences} if previous else None,
            dimension,
            rows=(sum(len(unit.chunks) for unit in rows), sum(len(unit.sentences) for unit in rows)),
        )
        keys = {passages_kind: [], sentences_kind: []}
        fresh = {passages_kind: ([], [], []), sentences_kind: ([], [], [])}  # keys, vectors, records
        for unit in rows:
            article = unit.article
            passage_keys = milvus.stable_ids(article.source, article.content_hash, "passage", len(unit.chunks))
            sentence_keys = milvus.stable_ids(article.source, article.content_hash, "sentence", len(unit.sentences))
            keys[passages_kind].append(passage_keys)
            keys[sentences_kind].append(sentence_keys)
            if unit.chunk_vectors is None:
                assert build.previous is not None, "a reused article's rows must be in the live collections"
                continue
            for kind, unit_keys, vectors, records in (
                (passages_kind, passage_keys, unit.chunk_vectors, milvus.chunk_records(unit.chunks)),
                (
                    sentences_kind,
                    sentence_keys,
                    unit.sentence_vectors,
                    milvus.sentence_records(unit.chunks, unit.sentences),
                ),
            ):
                fresh[kind][0].append(unit_keys)
                fresh[kind][1].append(vectors)
                fresh[kind][2].extend(records)
        for kind, (fresh_keys, vectors, records) in fresh.items():
            if fresh_keys:
                build.write(kind, np.concatenate(fresh_keys), np.concatenate(vectors), records)
        passages, sentences, block = build.finish(
            np.concatenate(keys[passages_kind]), np.concatenate(keys[sentences_kind])
        )

        def after_swap(say: Callable[[str], None]) -> None:
            try:
                build.after_swap()
            except StoreUnavailableError as error:
                # The new index already filters these rows out; the next build deletes them.
                say(f"could not delete the rows this build retired from Milvus ({error}); the next build will")

        return WrittenStores(passages, sentences, block, after_swap)


def backend(kind: str) -> StoreBackend:
    """The store backend named `kind` ("local" or "milvus")."""
    if kind == LOCAL:
        return LocalStores()
    if kind == MILVUS:
        return MilvusStores()
    raise SettingsError(f"store must be one of {LOCAL}, {MILVUS}, got {kind!r}")


def kind_of(manifest: dict) -> str:
    """ "local" (FAISS files) or "milvus": where a built index's vectors live."""
    return manifest.get("store", {}).get("kind", LOCAL)


def _milvus_module():
    """qa.stores.milvus, or SettingsError naming what to install (pymilvus is optional)."""
    try:
        import qa.stores.milvus
    except ImportError as error:
        raise SettingsError(f"QA_STORE=milvus needs Milvus's client: {error}") from error
    return qa.stores.milvus
