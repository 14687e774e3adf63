"""Milvus behind the engine's contracts: passage and sentence vectors (`MilvusStore`, a
`VectorStore`), BM25 candidates from Milvus's own BM25 function (`MilvusLexical`, a
`LexicalSearch`); one build's writes are `qa.stores.milvus_build.MilvusBuild`.

The only module that imports pymilvus. The same code talks to embedded milvus-lite
(a URI ending in .db), a single server or a cluster (http(s)://host:port): only the
URI changes. What stays in the index folder is what a question reads besides the
candidates: passage and sentence texts, articles, and the bm25s statistics that
score candidates for fusion and the judge (so both stores rank alike).

Rows and ids. A Milvus row's primary key is a stable hash of (article source, file
sha256, passage or sentence position), so an unchanged article keeps its rows across
builds and an incremental build upserts only added and changed articles' rows. The
index folder keeps, per store, the keys in row order (row -> key), and the store maps
keys back to the engine's row numbers.

Builds and the live index. Every build has a generation (1, 2, ...) and stamps the
rows it writes with it (`born`). Every search carries `born <= generation and pk not
in retired` for the generation of the index that asks, where `retired` are the keys
of the rows that index dropped (removed or changed articles), deleted from Milvus
only after its folder is swapped in. So while a build writes, and if it dies at any
point, the previous index searches exactly the rows it was built with; the next
build deletes what a dead one left (`born` above the live generation). A full build
(first build, `--full`, other settings) writes new collections and drops the old
ones after the swap.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError, StoreUnavailableError
from qa.schema import Chunk, Filter
from qa.stores.base import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, as_matrix
from qa.text.tokens import bm25_text

try:
    from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker
    from pymilvus.client.types import LoadState
    from pymilvus.exceptions import MilvusException
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pymilvus is not installed; run `pip install -e '.[milvus]'` (pymilvus, and milvus-lite[chinese] "
        "for an embedded database), or set QA_STORE=local"
    ) from error

PASSAGES, SENTENCES = "passages", "sentences"
KINDS = (PASSAGES, SENTENCES)
# VARCHAR limits are in bytes: a 2,000-character passage (the chunk_size maximum) is
# at most 8,000 bytes of UTF-8; titles are cut to fit, a source path is at most
# PATH_MAX (4,096) bytes.
TEXT_BYTES = 65_535
SOURCE_BYTES = 4_096
TITLE_CHARS = 1_000
# Rows per upsert request: a 384-dimensional row is about 2 KB on the wire, so a
# batch stays far below gRPC's 64 MB message limit.
BATCH_ROWS = 1_000
# BM25 parameters of bm25s's defaults (qa/stores/bm25.py), so both stores' BM25 agree.
BM25_K1, BM25_B = 1.5, 0.75
# The most results one Milvus search returns (its topk limit).
MAX_LIMIT = 16_384
# Milvus's RRF constant, as the engine's own fusion uses (qa/tuning.py rrf_k).
RRF_K = 60


# ---------------------------------------------------------------------- connections

_CLIENTS: dict[tuple[str, str], MilvusClient] = {}
_CLIENTS_LOCK = threading.Lock()


def connect(uri: str, token: str = "") -> MilvusClient:
    """One client per (URI, token) in this process: milvus-lite lets one process open
    a database file, so a build and the questions of one process share it.

    Raises:
        StoreUnavailableError: the server cannot be reached, or the .db file is open
            in another process.
    """
    key = (uri, token)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            # pymilvus pings every 10 s; milvus-lite's gRPC server allows one ping in 5
            # minutes and answers more with GOAWAY "too_many_pings" (logged, then a
            # reconnect). Embedded, the server is this process: ping no more than it allows.
            options = {"grpc_options": {"grpc.keepalive_time_ms": 300_000}} if uri.endswith(".db") else {}
            try:
                _CLIENTS[key] = MilvusClient(uri=uri, token=token, **options)
            except Exception as error:  # pymilvus raises MilvusException and gRPC errors
                raise StoreUnavailableError(_connect_advice(uri, error)) from error
    return _CLIENTS[key]


def _connect_advice(uri: str, error: Exception) -> str:
    if uri.endswith(".db"):
        return (
            f"cannot open the embedded Milvus database {uri} ({error}); it may be open in another process "
            f"(the web chat, a build): one process at a time can open a .db file. Stop that process, or "
            f"serve the file with `milvus-lite server --data-dir {uri} --port 19530` and set "
            f"QA_MILVUS_URI=http://127.0.0.1:19530"
        )
    return f"cannot reach Milvus at {uri} ({error}); check QA_MILVUS_URI and QA_MILVUS_TOKEN, or set QA_STORE=local"


def call(what: str, function, *args, **kwargs):
    """Run one client call, turning Milvus's errors into a StoreUnavailableError that
    names the operation (a question must not end in a gRPC traceback)."""
    try:
        return function(*args, **kwargs)
    except MilvusException as error:
        raise StoreUnavailableError(f"Milvus {what} failed: {error}") from error


# ---------------------------------------------------------------------- ids and filters


def stable_ids(source: str, content_hash: str, kind: str, count: int) -> np.ndarray:
    """The primary keys of an article's `count` passages or sentences: positive int64s
    from a hash of (source, file sha256, kind, position), so an unchanged article has
    the same keys in every build, and a changed or renamed one gets new ones. Two keys
    of a 10-million-row collection collide with odds of about 1e-5."""
    prefix = f"{source}\0{content_hash}\0{kind}\0".encode()
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(prefix + str(i).encode(), digest_size=8).digest(), "little") >> 1
            for i in range(count)
        ),
        dtype=np.int64,
        count=count,
    )


def _quoted(text: str) -> str:
    # A Milvus string literal: double quotes, with backslash escapes as in JSON.
    return json.dumps(text, ensure_ascii=False)


def filter_expression(
    generation: int, retired: np.ndarray, where: Filter | None = None, keys: np.ndarray | None = None
) -> str:
    """The boolean expression every search of an index of `generation` carries: its own
    rows only, then the article filter `where` (sources, dates) or explicit `keys`."""
    parts = [f"born <= {int(generation)}"]
    if len(retired):
        parts.append(f"pk not in [{','.join(map(str, retired.tolist()))}]")
    if where:
        if where.sources is not None:
            parts.append(f"source in [{', '.join(_quoted(s) for s in sorted(where.sources))}]")
        if where.date_from or where.date_to:
            parts.append('date != ""')  # an undated article is outside any range (qa.schema.Filter)
        if where.date_from:
            parts.append(f"date >= {_quoted(where.date_from)}")
        if where.date_to:
            parts.append(f"date <= {_quoted(where.date_to)}")
    elif keys is not None:
        parts.append(f"pk in [{','.join(map(str, np.asarray(keys, dtype=np.int64).tolist()))}]")
    return " and ".join(parts)


# ---------------------------------------------------------------------- collections


def create_collection(client: MilvusClient, name: str, dimension: int, kind: str = "flat", bm25: bool = False) -> None:
    """Create collection `name`: key, generation, article metadata, text, the dense
    vector, and with `bm25` the normalised text and the sparse BM25 vector that
    Milvus's BM25 function makes from it with the jieba analyzer."""
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("born", DataType.INT64)
    schema.add_field("source", DataType.VARCHAR, max_length=SOURCE_BYTES)
    schema.add_field("title", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("date", DataType.VARCHAR, max_length=64)
    schema.add_field("start_offset", DataType.INT64)
    schema.add_field("end_offset", DataType.INT64)
    schema.add_field("paragraph", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    index_params = client.prepare_index_params()
    if kind == "hnsw":
        index_params.add_index(
            field_name="vector",
            index_type="HNSW",
            metric_type="IP",
            params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION},
        )
    else:
        index_params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    if bm25:
        # {"type": "chinese"} is refused by milvus-lite ("unknown tokenizer type");
        # {"tokenizer": "jieba"} works there and on a Milvus server.
        schema.add_field(
            "norm",
            DataType.VARCHAR,
            max_length=TEXT_BYTES,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "jieba"},
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25", function_type=FunctionType.BM25, input_field_names=["norm"], output_field_names=["sparse"]
            )
        )
        index_params.add_index(
            field_name="sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
        )
    call("create_collection", client.create_collection, name, schema=schema, index_params=index_params)


def chunk_records(chunks: Sequence[Chunk]) -> list[dict]:
    """The metadata and text fields of passage rows (BM25 reads `norm`)."""
    return [
        {
            "source": c.source,
            "title": c.title[:TITLE_CHARS],
            "date": c.date,
            "start_offset": c.start,
            "end_offset": c.end,
            "paragraph": c.paragraph,
            "text": c.text,
            "norm": bm25_text(c.text),
        }
        for c in chunks
    ]


def sentence_records(chunks: Sequence[Chunk], sentences: Sequence[tuple[int, int, int, str]]) -> list[dict]:
    """The fields of sentence rows, from (passage position, start, end, matching form)."""
    records = []
    for position, start, end, _ in sentences:
        c = chunks[position]
        records.append(
            {
                "source": c.source,
                "title": c.title[:TITLE_CHARS],
                "date": c.date,
                "start_offset": start,
                "end_offset": end,
                "paragraph": c.paragraph + c.text.count("\n", 0, start - c.start),
                "text": c.text[start - c.start : end - c.start],
            }
        )
    return records


# ---------------------------------------------------------------------- the store


class MilvusStore:
    """A `VectorStore` over one Milvus collection (inner product on unit vectors, so
    cosine). Row r of the engine is the row whose key is `ids[r]`; searches see only
    rows of this store's generation and not retired (see the module docstring).

    Example:
        >>> store = MilvusStore.create("/tmp/demo.db", "demo", 384)  # doctest: +SKIP
        >>> store.add(vectors); ids, scores = store.search(vectors[:1], 5)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: MilvusClient,
        collection: str,
        dimension: int,
        ids: np.ndarray | None = None,
        *,
        generation: int = 0,
        retired: np.ndarray | None = None,
        uri: str = "",
        kind: str = "flat",
    ):
        self._client = client
        self.collection = collection
        self._dimension = int(dimension)
        self.generation = int(generation)
        self.retired = np.asarray(retired if retired is not None else [], dtype=np.int64)
        self.uri = uri
        self.kind = kind
        self.set_ids(np.asarray(ids if ids is not None else [], dtype=np.int64))

    def set_ids(self, ids: np.ndarray) -> None:
        """Make `ids` the store's row -> key map (a build hands it the new index's)."""
        self.ids = ids
        # key -> row through a sorted copy: a dict of ten million keys costs ~1 GB.
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]

    @classmethod
    def create(
        cls, uri: str, collection: str, dimension: int, *, token: str = "", kind: str = "flat", bm25: bool = False
    ):
        """An empty store in a new collection (dropped first if it exists)."""
        client = connect(uri, token)
        if call("has_collection", client.has_collection, collection):
            call("drop_collection", client.drop_collection, collection)
        create_collection(client, collection, dimension, kind, bm25)
        return cls(client, collection, dimension, uri=uri, kind=kind)

    @property
    def dimension(self) -> int:
        return self._dimension

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, keys: Sequence[int]) -> np.ndarray:
        """The engine's rows of Milvus keys; -1 for a key this store does not hold."""
        keys = np.asarray(keys, dtype=np.int64)
        if not len(self._sorted) or not keys.size:
            return np.full(keys.shape, -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        return np.where(self._sorted[at] == keys, self._order[at], -1)

    def expression(self, allowed: np.ndarray | None = None, where: Filter | None = None) -> str:
        keys = self.ids[np.asarray(allowed, dtype=np.int64)] if allowed is not None and not where else None
        return filter_expression(self.generation, self.retired, where, keys)

    def add(self, vectors: np.ndarray) -> None:
        """Append rows keyed by their row numbers (stores made by `create`; a build
        writes keyed rows with `write`)."""
        vectors = as_matrix(vectors, self.dimension)
        keys = np.arange(len(self), len(self) + len(vectors), dtype=np.int64)
        self.write(keys, vectors, [{} for _ in keys])
        self.set_ids(np.concatenate([self.ids, keys]))
        self.flush()

    def write(self, keys: np.ndarray, vectors: np.ndarray, records: Sequence[dict]) -> None:
        """Upsert rows `keys` with `vectors` and the fields `records`, stamped with this
        store's generation; missing fields get empty values. Not searchable by this
        store until its ids include the keys; call `flush` after the last write."""
        vectors = as_matrix(vectors, self.dimension)
        defaults = {
            "source": "",
            "title": "",
            "date": "",
            "start_offset": 0,
            "end_offset": 0,
            "paragraph": 0,
            "text": "",
        }
        bm25 = self._has_bm25()
        for begin in range(0, len(keys), BATCH_ROWS):
            rows = []
            for i in range(begin, min(begin + BATCH_ROWS, len(keys))):
                row = {
                    **defaults,
                    **records[i],
                    "pk": int(keys[i]),
                    "born": self.generation,
                    "vector": vectors[i].tolist(),
                }
                if bm25:
                    row.setdefault("norm", bm25_text(row["text"]))
                else:
                    row.pop("norm", None)
                rows.append(row)
            call("upsert", self._client.upsert, self.collection, rows)

    def _has_bm25(self) -> bool:
        if not hasattr(self, "_bm25"):
            fields = call("describe_collection", self._client.describe_collection, self.collection)["fields"]
            self._bm25 = any(f["name"] == "sparse" for f in fields)
        return self._bm25

    def delete(self, keys: np.ndarray) -> None:
        for begin in range(0, len(keys), BATCH_ROWS * 10):
            chunk = np.asarray(keys[begin : begin + BATCH_ROWS * 10], dtype=np.int64).tolist()
            call("delete", self._client.delete, self.collection, ids=chunk)

    def flush(self) -> None:
        # Milvus searches unflushed rows slowly (lite: a scan of its write buffer), so a
        # build flushes once at the end instead of leaving it to the server.
        call("flush", self._client.flush, self.collection)

    def search(
        self, vectors: np.ndarray, n: int, allowed: np.ndarray | None = None, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = as_matrix(vectors, self.dimension)
        n = min(n, len(self) if allowed is None else len(allowed))
        ids = np.full((len(queries), max(n, 0)), -1, dtype=np.int64)
        scores = np.zeros((len(queries), max(n, 0)), dtype=np.float32)
        if n <= 0:
            return ids, scores
        results = self._dense_search(queries, n, self.expression(allowed, where))
        for q, hits in enumerate(results):
            rows = self.rows_of([hit.id for hit in hits])
            found = rows >= 0  # always, unless the collection was changed behind our back
            ids[q, : found.sum()] = rows[found]
            scores[q, : found.sum()] = np.asarray([hit["distance"] for hit in hits], dtype=np.float32)[found]
        return ids, scores

    def _dense_search(self, queries: np.ndarray, limit: int, expression: str):
        """Milvus's inner-product search of this collection: per query, the `limit` best
        rows' keys and scores among those `expression` lets through."""
        return call(
            "search",
            self._client.search,
            self.collection,
            data=queries.tolist(),
            anns_field="vector",
            limit=limit,
            filter=expression,
            output_fields=["pk"],
            search_params={"metric_type": "IP", "params": {"ef": max(HNSW_EF_SEARCH, limit)}},
        )

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        if not ids.size:
            return out
        keys = self.ids[ids]
        unique = np.unique(keys)
        got = call("get", self._client.get, self.collection, ids=unique.tolist(), output_fields=["vector"])
        by_key = {int(row["pk"]): row["vector"] for row in got}
        missing = [int(k) for k in unique if int(k) not in by_key]
        if missing:
            raise IndexCorruptError(
                f"Milvus collection {self.collection} lacks {len(missing)} rows the index expects "
                f"(key {missing[0]}); run `qa build --full` to rebuild it"
            )
        return np.asarray([by_key[int(k)] for k in keys], dtype=np.float32)

    def scores(self, vector: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Inner products with rows `ids`, computed in Milvus: a search restricted to
        those rows' keys returns only scores. Fetching the vectors instead (`get`) was
        85% of a question's time on milvus-lite (decoding ~700 rows of 384 floats)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not ids.size:
            return np.zeros(0, dtype=np.float32)
        keys = self.ids[ids]
        unique = np.unique(keys)
        query = as_matrix(vector, self.dimension)[:1]
        found: dict[int, float] = {}
        for begin in range(0, len(unique), MAX_LIMIT):
            batch = unique[begin : begin + MAX_LIMIT]
            hits = self._dense_search(query, len(batch), f"pk in [{','.join(map(str, batch.tolist()))}]")[0]
            found.update((int(hit.id), float(hit["distance"])) for hit in hits)
        missing = np.asarray([k for k in unique.tolist() if k not in found], dtype=np.int64)
        if missing.size:
            # A graph index may not reach every row a narrow filter allows: those few
            # are computed here from their vectors.
            rows = self.rows_of(missing)
            found.update(zip(missing.tolist(), (self.vectors(rows) @ query[0]).tolist()))
        return np.asarray([found[k] for k in keys.tolist()], dtype=np.float32)

    def hybrid(
        self, vector: np.ndarray, text: str, n: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Milvus's own hybrid search: the nearest `n` passages and BM25's best `n` for
        `text`, fused by reciprocal rank (BM25 scores come back negative in milvus-lite,
        so only ranks are comparable), the filter inside each request. Returns the
        fused (rows, scores), best first. The engine fuses with more evidence than this
        (sentences, answer types), so `Retriever.rank` asks for both lists instead."""
        expression = self.expression(None, where)
        requests = [
            AnnSearchRequest(
                data=[as_matrix(vector, self.dimension)[0].tolist()],
                anns_field="vector",
                param={"metric_type": "IP", "params": {"ef": max(HNSW_EF_SEARCH, n)}},
                limit=n,
                expr=expression,
            ),
            AnnSearchRequest(
                data=[bm25_text(text)], anns_field="sparse", param={"metric_type": "BM25"}, limit=n, expr=expression
            ),
        ]
        hits = call(
            "hybrid_search", self._client.hybrid_search, self.collection, requests, RRFRanker(RRF_K), limit=2 * n
        )[0]
        rows = self.rows_of([hit.id for hit in hits])
        scores = np.asarray([hit["distance"] for hit in hits], dtype=np.float32)
        return rows[rows >= 0], scores[rows >= 0]

    # -- the file in the index folder ------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the keys in row order and where they live (no credentials) to `path`."""
        meta = {
            "uri": self.uri,
            "collection": self.collection,
            "dimension": self.dimension,
            "generation": self.generation,
            "kind": self.kind,
        }
        with open(path, "wb") as out:
            np.savez(out, ids=self.ids, retired=self.retired, meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: Path, uri: str | None = None, token: str = "") -> MilvusStore:
        """Read a file written by `save` and connect to its collection (at `uri` when
        given: the saved URI has no credentials).

        Raises:
            IndexCorruptError: the file is missing or damaged, or the collection is gone.
            StoreUnavailableError: Milvus cannot be reached.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                ids, retired = data["ids"].astype(np.int64), data["retired"].astype(np.int64)
                meta = json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError) as error:
            raise IndexCorruptError(f"cannot read the Milvus row map {path}; rebuild it with `qa build`") from error
        client = connect(uri or meta["uri"], token)
        if not call("has_collection", client.has_collection, meta["collection"]):
            raise IndexCorruptError(
                f"the Milvus collection {meta['collection']} this index was built into is gone from "
                f"{meta['uri']}; run `qa build --full` to rebuild it"
            )
        ensure_loaded(client, meta["collection"])
        return cls(
            client,
            meta["collection"],
            meta["dimension"],
            ids,
            generation=meta["generation"],
            retired=retired,
            uri=meta["uri"],
            kind=meta.get("kind", "flat"),
        )


class MilvusLexical:
    """A `LexicalSearch` on the passage collection's BM25 field: Milvus analyses the
    question's normalised text with jieba and ranks by BM25 inside the filter."""

    def __init__(self, store: MilvusStore):
        self.store = store

    def search(
        self, text: str, n: int, allowed: np.ndarray | None = None, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        form = bm25_text(text)
        if not form.strip() or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        hits = call(
            "BM25 search",
            self.store._client.search,
            self.store.collection,
            data=[form],
            anns_field="sparse",
            limit=n,
            filter=self.store.expression(allowed, where),
            output_fields=["pk"],
            search_params={"metric_type": "BM25"},
        )[0]
        rows = self.store.rows_of([hit.id for hit in hits])
        # milvus-lite returns BM25 as a negative distance, a server as a positive score:
        # either way the order is best first, and the magnitude is the score.
        scores = np.abs(np.asarray([hit["distance"] for hit in hits], dtype=np.float32))
        return rows[rows >= 0], scores[rows >= 0]


def ensure_loaded(client: MilvusClient, collection: str) -> None:
    """Load a collection that is not loaded (a restarted server starts with every
    collection released); one already loaded is left alone, so the replicas an
    operator loaded it with on a cluster stay as they are."""
    state = call("get_load_state", client.get_load_state, collection)["state"]
    if state != LoadState.Loaded:
        call("load_collection", client.load_collection, collection)


def plain_uri(uri: str) -> str:
    from qa.settings import without_credentials

    return without_credentials(uri)
