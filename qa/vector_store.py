"""Store and search vectors: the `VectorStore` contract and its FAISS implementation.

The only module that imports faiss. Vectors are L2-normalised, so inner product is
cosine. Below `EXACT_BELOW` rows search is exact (IndexFlatIP): it keeps evaluation
honest and costs a few milliseconds. Above it, HNSW (IndexHNSWFlat), whose cost
grows with the log of the size: exact search over the 536,000 vectors of 10,000
articles was half of a question's time. A Milvus collection stands behind the same
contract in qa/milvus_store.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from qa.errors import IndexCorruptError
from qa.schema import Filter

try:
    import faiss
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("faiss is not installed; run `pip install faiss-cpu`") from error


@runtime_checkable
class VectorStore(Protocol):
    """What retrieval needs from a vector store. Row ids are 0..len-1 in insertion order."""

    @property
    def dimension(self) -> int: ...

    def __len__(self) -> int: ...

    def add(self, vectors: np.ndarray) -> None:
        """Append vectors of shape (n, dimension); row i gets id len(self)+i."""

    def search(
        self, vectors: np.ndarray, n: int, allowed: np.ndarray | None = None, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `n` nearest rows to each query vector, best first; with `allowed` (row
        ids), only among those rows (a filter applied inside the search, not after it).
        `where`, when given, is the article filter `allowed` was made from: a store that
        holds the articles' metadata (Milvus) filters by it instead of by a list of ids,
        one that does not (FAISS) ignores it.

        Returns (ids, scores), each of shape (queries, n') with n' <= n; an id of -1
        pads a row that found fewer; scores are inner products.
        """

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of rows `ids`, shape (len(ids), dimension)."""

    def scores(self, vector: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Inner products of one query vector with rows `ids`, shape (len(ids),): what
        ranking needs of its candidates. A remote store (Milvus) computes them beside
        the data instead of sending the vectors."""

    def save(self, path: Path) -> None:
        """Write the store to the file `path`."""


def as_matrix(vectors: np.ndarray, dimension: int) -> np.ndarray:
    """`vectors` as a C-contiguous float32 (n, dimension) array, or ValueError."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors.reshape(1, -1)
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise ValueError(f"expected vectors of shape (n, {dimension}), got {vectors.shape}")
    return vectors


# Exact search costs about 0.05 ms per 1,000 vectors on one core (measured by
# scripts/scale.py), so below this many rows it stays under ~3 ms a question.
EXACT_BELOW = 50_000
# HNSW graph degree, build breadth and search breadth (a search looks at
# max(HNSW_EF_SEARCH, n) candidates), measured with scripts/bench.py's stand-in passages
# (sums of real sentence vectors) and real questions, top 100 as the retriever asks:
#   100k stand-ins, Recall@10:  M 32/efC 80/efS 128: 0.789 (0.37 ms);  M 48/200/256: 0.944 (0.86 ms)
#   16,809 real vectors (cmrc2018-trial + drcd-dev passages and sentences): 0.969 and 0.975,
#   the ceiling there (identical texts tie).
# Stand-ins crowd more than real vectors (their 1st and 10th neighbours are 0.009 apart
# in cosine, real ones 0.046), so they are the harder case; the wider graph costs about
# half a millisecond a search, 12% more memory than M 32 (1.27x the raw vectors) and 2.7x
# the graph's build time, which is still a few percent of embedding the same texts.
HNSW_M = 48
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 256
KINDS = ("flat", "hnsw")


def kind_for(rows: int, choice: str = "auto") -> str:
    """The index kind for a store of `rows` vectors: exact when that is cheap, unless
    `choice` (Settings.vector_index) names one."""
    if choice in KINDS:
        return choice
    return "flat" if rows < EXACT_BELOW else "hnsw"


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

    @property
    def kind(self) -> str:
        return "hnsw" if hasattr(self._index, "hnsw") else "flat"

    @property
    def dimension(self) -> int:
        return self._index.d

    def __len__(self) -> int:
        return self._index.ntotal

    def add(self, vectors: np.ndarray) -> None:
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
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> "FaissStore":
        """Read a file written by `save`; IndexCorruptError if it is missing or damaged."""
        path = Path(path)
        try:
            index = faiss.read_index(str(path))
        except Exception as error:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(f"cannot read the vector index {path}; rebuild it with `qa build`") from error
        store = cls.__new__(cls)
        store._index = index
        return store
