"""The `VectorStore` contract (`qa.stores.base`) over FAISS, on this machine.

The only module that imports faiss. Vectors are L2-normalised, so inner product is
cosine. Below `EXACT_BELOW` rows search is exact (IndexFlatIP): it keeps evaluation
honest and costs a few milliseconds. Above it, HNSW (IndexHNSWFlat), whose cost
grows with the log of the size: exact search over the 536,000 vectors of 10,000
articles was half of a question's time. A Milvus collection stands behind the same
contract in qa/stores/milvus.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError
from qa.schema import Filter
from qa.stores.base import EXACT_BELOW, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, KINDS, as_matrix

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

    @property
    def kind(self) -> str:
        return "hnsw" if hasattr(self._index, "hnsw") else "flat"

    @property
    def dimension(self) -> int:
        return self._index.d

    def __len__(self) -> int:
        return self._index.ntotal

    def add(self, vectors: np.ndarray) -> None:
        if self._mapped:
            raise RuntimeError("a vector store loaded from a file is read-only; a build makes a new one")
        self._index.add(as_matrix(vectors, self.dimension))

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
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)) if allowed is not None else None
        if self.kind == "hnsw":
            # A search breadth below n would return fewer than n neighbours; passed per
            # call, not set on the shared index, so concurrent searches never race.
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, n), sel=selector)
            scores, ids = self._index.search(queries, n, params=params)
        else:
            scores, ids = self._index.search(queries, n)
        return ids, scores

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._index.reconstruct_batch(ids)

    def scores(self, vector: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return self.vectors(ids) @ as_matrix(vector, self.dimension)[0]

    def save(self, path: Path) -> None:
        """Write the index to `path`; OSError when it cannot be written (a full disk)."""
        try:
            faiss.write_index(self._index, str(path))
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
        store._mapped = bool(flags)
        return store
