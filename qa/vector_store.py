"""Store and search vectors: the `VectorStore` contract and its FAISS implementation.

The only module that imports faiss. Vectors are L2-normalised, so inner product is
cosine. Exact search (IndexFlatIP) keeps evaluation honest and is fast at the sizes
one newsroom archive reaches; an approximate index or a Milvus collection can stand
behind the same contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from qa.errors import IndexCorruptError

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

    def search(self, vectors: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The `n` nearest rows to each query vector, best first.

        Returns (ids, scores), each of shape (queries, min(n, len)); scores are inner products.
        """

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of rows `ids`, shape (len(ids), dimension)."""

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


class FaissStore:
    """Exact inner-product search over float32 vectors (FAISS IndexFlatIP)."""

    def __init__(self, dimension: int):
        if dimension <= 0:
            raise ValueError(f"dimension must be positive, got {dimension}")
        self._index = faiss.IndexFlatIP(dimension)

    @property
    def dimension(self) -> int:
        return self._index.d

    def __len__(self) -> int:
        return self._index.ntotal

    def add(self, vectors: np.ndarray) -> None:
        self._index.add(as_matrix(vectors, self.dimension))

    def search(self, vectors: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        queries = as_matrix(vectors, self.dimension)
        n = min(n, len(self))
        if n <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        scores, ids = self._index.search(queries, n)
        return ids, scores

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._index.reconstruct_batch(ids)

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
