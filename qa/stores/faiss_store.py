"""The `VectorStore` contract (`qa.stores.base`) over FAISS, on this machine.

The only module that imports faiss. Vectors are L2-normalised, so inner product is
cosine. Below `EXACT_BELOW` rows search is exact (IndexFlatIP): it keeps evaluation
honest and costs a few milliseconds. Above it, HNSW (IndexHNSWFlat), whose cost
grows with the log of the size: exact search over the 536,000 vectors of 10,000
articles was half of a question's time. A Milvus collection stands behind the same
contract in qa/stores/milvus.py.

An incremental build appends to a store (`with_rows`) instead of building it again
(an HNSW graph costs about 0.3 ms a vector to build; an exact index, a copy of all
its vectors). The store then holds dead rows, vectors of removed and changed
articles, and a row map (saved beside the index as `*.rows.npy`) from its ids to the
index's rows; searches never return a dead row. A build compacts (builds the store
from the live rows) past `DEAD_ROWS_MAX`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError
from qa.schema import Filter
from qa.stores.base import EXACT_BELOW, HNSW_EF_CONSTRUCTION, HNSW_M, KINDS, as_matrix, ef_search

try:
    import faiss
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("faiss is not installed; run `pip install faiss-cpu`") from error


class FaissStore:
    """Inner-product search over float32 vectors: exact (IndexFlatIP) or HNSW (IndexHNSWFlat)."""

    def __init__(self, dimension: int, kind: str = "flat"):
        if dimension <= 0:
            raise ValueError(f"dimension must be positive, got {dimension}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if kind == "hnsw":
            self._index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        else:
            self._index = faiss.IndexFlatIP(dimension)
        self._mapped = False
        self._path: Path | None = None  # the file a loaded store was read from
        self._rows: np.ndarray | None = None  # None: graph id i is row i, no dead rows
        self._ids: np.ndarray | None = None
        self._live: tuple | None = None

    def _set_rows(self, rows: np.ndarray | None) -> None:
        """Take `rows` (int64, one per graph id: the index row it holds, -1 if dead) as
        the row map; None or the identity means none is needed."""
        if rows is not None and len(rows) == self._index.ntotal and np.array_equal(rows, np.arange(len(rows))):
            rows = None
        self._rows, self._ids, self._live = rows, None, None
        if rows is None:
            return
        live = rows >= 0
        self._ids = np.empty(int(live.sum()), dtype=np.int64)
        self._ids[rows[live]] = np.flatnonzero(live)
        # A bitmap of live graph ids: a selector made once, costing nothing per search
        # (an IDSelectorBatch of 370,000 ids is a hash set built on every call). The
        # array is kept with it: faiss reads it in place.
        bitmap = np.packbits(live, bitorder="little")
        self._live = (faiss.IDSelectorBitmap(len(rows), faiss.swig_ptr(bitmap)), bitmap)

    @property
    def kind(self) -> str:
        return "hnsw" if hasattr(self._index, "hnsw") else "flat"

    @property
    def graph_rows(self) -> int:
        """Vectors in the index, dead rows included (`len` counts the live ones)."""
        return self._index.ntotal

    @property
    def dead_rows(self) -> int:
        return self._index.ntotal - len(self)

    @property
    def dimension(self) -> int:
        return self._index.d

    def __len__(self) -> int:
        return self._index.ntotal if self._ids is None else len(self._ids)

    def add(self, vectors: np.ndarray) -> None:
        if self._mapped:
            raise RuntimeError("a vector store loaded from a file is read-only; a build makes a new one")
        if self._rows is not None:
            raise RuntimeError("a store with dead rows grows by `with_rows`, which says where each row goes")
        self._index.add(as_matrix(vectors, self.dimension))

    def with_rows(self, previous_rows: np.ndarray, vectors: np.ndarray) -> FaissStore:
        """A new store whose row r is this store's row `previous_rows[r]`, kept where it
        is in the graph, or where that is -1 the next of `vectors`, appended to the
        graph. Rows of this store not named become dead rows. This store is unchanged.

        Adding 30 vectors to the graph of 100,000 passages took 0.16 s, where building
        it takes minutes; the copy in memory (this store's file stays mapped and
        untouched, for the questions served from it meanwhile) is read from the file,
        about 0.3 s for that graph's 190 MB.
        """
        previous_rows = np.asarray(previous_rows, dtype=np.int64)
        fresh = previous_rows < 0
        vectors = as_matrix(vectors, self.dimension)
        if int(fresh.sum()) != len(vectors):
            raise ValueError(f"{int(fresh.sum())} new rows but {len(vectors)} vectors")
        if np.any(previous_rows >= len(self)):
            raise ValueError(f"previous rows must be below {len(self)}")
        store = FaissStore.__new__(FaissStore)
        # A mapped index's vectors are the file's pages, which a clone shares and an add
        # cannot grow (faiss aborts): one read from the file gives a copy of its own.
        store._index = faiss.read_index(str(self._path)) if self._mapped else faiss.clone_index(self._index)
        store._mapped, store._path = False, None
        graph = np.arange(self._index.ntotal, dtype=np.int64) if self._ids is None else self._ids
        ids = np.empty(len(previous_rows), dtype=np.int64)
        ids[~fresh] = graph[previous_rows[~fresh]]
        ids[fresh] = np.arange(store._index.ntotal, store._index.ntotal + len(vectors))
        if len(vectors):
            store._index.add(vectors)
        rows = np.full(store._index.ntotal, -1, dtype=np.int64)
        rows[ids] = np.arange(len(ids))
        store._set_rows(rows)
        return store

    def search(
        self, vectors: np.ndarray, n: int, allowed: np.ndarray | None = None, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = as_matrix(vectors, self.dimension)
        n = min(n, len(self) if allowed is None else len(allowed))
        if n <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        if allowed is not None and (self.kind == "flat" or len(allowed) < EXACT_BELOW):
            # A filtered search over few rows is exact: a graph walk that may only step
            # on a few allowed nodes would miss most of them.
            allowed = np.asarray(allowed, dtype=np.int64)
            scores = queries @ self.vectors(allowed).T
            order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
            return allowed[order], np.take_along_axis(scores, order, axis=1).astype(np.float32)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
            selector = faiss.IDSelectorBatch(allowed if self._ids is None else self._ids[allowed])
        else:
            selector = None if self._live is None else self._live[0]  # every live row
        if self.kind == "hnsw":
            # A search breadth below n would return fewer than n neighbours; passed per
            # call, not set on the shared index, so concurrent searches never race.
            params = faiss.SearchParametersHNSW(efSearch=ef_search(self._index.ntotal, n), sel=selector)
            scores, ids = self._index.search(queries, n, params=params)
        else:
            params = None if selector is None else faiss.SearchParameters(sel=selector)
            scores, ids = self._index.search(queries, n, params=params)
        if self._rows is not None:
            ids = np.where(ids >= 0, self._rows[np.maximum(ids, 0)], -1)
        return ids, scores

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._index.reconstruct_batch(ids if self._ids is None else self._ids[ids])

    def scores(self, vector: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return self.vectors(ids) @ as_matrix(vector, self.dimension)[0]

    def save(self, path: Path) -> None:
        """Write the index to `path`, and its row map (if it has dead rows) beside it
        (`rows_file`); OSError when it cannot be written (a full disk)."""
        try:
            faiss.write_index(self._index, str(path))
            if self._rows is not None:
                np.save(rows_file(path), self._rows.astype(np.int32))
        except RuntimeError as error:
            # faiss reports a failed write (ENOSPC, EIO) as RuntimeError with a C++ message
            # whose last line names the cause; the index writer reports OSError as one line.
            cause = str(error).strip().splitlines()[-1] if str(error).strip() else "write error"
            raise OSError(f"{Path(path).name}: {cause}") from error

    @classmethod
    def load(cls, path: Path) -> FaissStore:
        """Read a file written by `save`, read-only; IndexCorruptError if it is missing or
        damaged.

        The vectors are mapped from the file, not copied (IO_FLAG_MMAP_IFC): reading
        the 526,000 vectors of 10,000 articles (800 MB) was a second of a cold start,
        and mapped pages are shared by every process serving the index. An index swap
        renames folders, never rewrites a file, so a mapped file never changes. A faiss
        without the flag (before 1.11) reads them into memory.
        """
        path = Path(path)
        flags = getattr(faiss, "IO_FLAG_MMAP_IFC", 0)
        try:
            index = faiss.read_index(str(path), flags)
        except Exception as error:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(f"cannot read the vector index {path}; rebuild it with `qa build`") from error
        store = cls.__new__(cls)
        store._index = index
        store._mapped, store._path = bool(flags), path
        rows = None
        if rows_file(path).exists():
            try:
                rows = np.load(rows_file(path)).astype(np.int64)
            except (OSError, ValueError) as error:
                raise IndexCorruptError(f"cannot read {rows_file(path)}; rebuild the index with `qa build`") from error
            live = np.sort(rows[rows >= 0])
            if rows.ndim != 1 or len(rows) != index.ntotal or not np.array_equal(live, np.arange(len(live))):
                raise IndexCorruptError(f"{rows_file(path)} does not match {path.name}; rebuild it with `qa build`")
        store._set_rows(rows)
        return store


def rows_file(path: Path) -> Path:
    """Where the row map of the vector index `path` is saved ("vectors.faiss" ->
    "vectors.rows.npy"): graph id -> row, -1 for a dead row."""
    return Path(path).with_suffix(".rows.npy")
