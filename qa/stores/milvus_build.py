"""The Milvus side of one `qa build`: collections opened or created, rows of added and
changed articles upserted under the build's generation, and after the swap the rows
and collections the new index dropped deleted (see `qa.stores.milvus` for why a
dying build never disturbs the live index).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.stores.base import kind_for
from qa.stores.milvus import (
    KINDS,
    PASSAGES,
    SENTENCES,
    MilvusStore,
    call,
    connect,
    create_collection,
    ensure_loaded,
    plain_uri,
)


@dataclass
class _Collections:
    passages: str
    sentences: str


class MilvusBuild:
    """The Milvus side of one `qa build`: open (or create) the collections, upsert the
    rows of added and changed articles, hand the stores to the new index, and after
    the swap delete what the new index dropped.

    Args:
        uri, token, base: where, and the collection base name.
        live: the "store" block of the index now in use (its manifest), or None.
        previous: that index's stores by kind, when this build reuses its articles
            (an incremental build, into the same collections); None for a full build.
        dimension: of the vectors.
        rows: passages and sentences the index will hold (exact or HNSW search for new
            collections, as `qa.stores.faiss_store.kind_for` picks for FAISS).
    """

    def __init__(
        self,
        uri: str,
        token: str,
        base: str,
        live: dict | None,
        previous: dict[str, MilvusStore] | None,
        dimension: int,
        rows: tuple[int, int],
    ):
        self.uri, self.base = uri, base
        self.client = connect(uri, token)
        self.live = live if live and live.get("uri") == plain_uri(uri) else None
        live_generation = int(self.live["generation"]) if self.live else 0
        self.generation = live_generation + 1
        self._drop_dead_builds(live_generation)
        self.previous = previous if self.live else None
        if self.previous:
            self.collections = _Collections(**self.live["collections"])
            self.kinds = dict(self.live.get("kinds", {}))
            for kind, name in zip(KINDS, (self.collections.passages, self.collections.sentences)):
                # Rows a build that died before its swap wrote, and rows the live index
                # dropped if its build died before deleting them.
                call("delete", self.client.delete, name, filter=f"born > {live_generation}")
                self.previous[kind].delete(self.previous[kind].retired)
            self.retire_after = []
        else:
            self.collections = _Collections(*(f"{base}_g{self.generation}_{kind}" for kind in KINDS))
            self.kinds = {PASSAGES: kind_for(rows[0]), SENTENCES: kind_for(rows[1])}
            for kind, name in zip(KINDS, (self.collections.passages, self.collections.sentences)):
                if call("has_collection", self.client.has_collection, name):
                    call("drop_collection", self.client.drop_collection, name)
                create_collection(self.client, name, dimension, self.kinds[kind], bm25=kind == PASSAGES)
            self.retire_after = list(self.live["collections"].values()) if self.live else []
        self.stores = {
            kind: MilvusStore(
                self.client, name, dimension, generation=self.generation, uri=plain_uri(uri), kind=self.kinds[kind]
            )
            for kind, name in zip(KINDS, (self.collections.passages, self.collections.sentences))
        }

    def _drop_dead_builds(self, live_generation: int) -> None:
        """Collections that full builds which died before their swap created."""
        pattern = re.compile(rf"{re.escape(self.base)}_g(\d+)_(?:{'|'.join(KINDS)})")
        for name in call("list_collections", self.client.list_collections):
            match = pattern.fullmatch(name)
            if match and int(match.group(1)) > live_generation:
                call("drop_collection", self.client.drop_collection, name)

    def write(self, kind: str, keys: np.ndarray, vectors: np.ndarray, records: Sequence[dict]) -> None:
        self.stores[kind].write(keys, vectors, records)

    def finish(self, passage_ids: np.ndarray, sentence_ids: np.ndarray):
        """Flush, and give the stores the new index's row -> key maps and the keys it
        drops from the previous index (filtered out of its searches until deleted).
        Returns (passage store, sentence store, the manifest's "store" block)."""
        for kind, ids in ((PASSAGES, passage_ids), (SENTENCES, sentence_ids)):
            store = self.stores[kind]
            store.set_ids(np.asarray(ids, dtype=np.int64))
            old = self.previous[kind].ids if self.previous else np.zeros(0, dtype=np.int64)
            store.retired = np.setdiff1d(old, store.ids)
            store.flush()
            ensure_loaded(self.client, store.collection)
        block = {
            "kind": "milvus",
            "uri": plain_uri(self.uri),
            "collections": {PASSAGES: self.collections.passages, SENTENCES: self.collections.sentences},
            "kinds": self.kinds,
            "generation": self.generation,
            "retired": {kind: int(len(self.stores[kind].retired)) for kind in KINDS},
        }
        return self.stores[PASSAGES], self.stores[SENTENCES], block

    def after_swap(self) -> None:
        """Delete the rows the new index dropped and the collections it replaced. If
        this never runs (the process dies), the new index still filters the rows out
        and the next build deletes them."""
        for store in self.stores.values():
            if len(store.retired):
                store.delete(store.retired)
                store.flush()
        for name in self.retire_after:
            if call("has_collection", self.client.has_collection, name):
                call("drop_collection", self.client.drop_collection, name)
