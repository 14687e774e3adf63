"""Store and search passage vectors with FAISS (inner product on L2-normalised vectors).

The only module that imports faiss. Exact search (IndexFlatIP): a news corpus of
thousands of passages searches in well under a millisecond, and exact results
keep evaluation honest; an approximate index can replace it behind this interface.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError

try:
    import faiss
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("faiss is not installed; run `pip install faiss-cpu`") from error


class VectorStore:
    """Exact inner-product search over float32 vectors."""

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
        """Append vectors (n, dimension); row i gets id len(self)+i."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of shape (n, {self.dimension}), got {vectors.shape}")
        self._index.add(vectors)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k nearest rows to one query vector, best first, as (row id, inner product)."""
        if len(self) == 0 or k <= 0:
            return []
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        scores, ids = self._index.search(query, min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def all_scores(self, query: np.ndarray) -> np.ndarray:
        """Inner product of the query with every stored row, in row order (for fusion)."""
        scores = np.full(len(self), -1.0, dtype=np.float32)
        for row, score in self.search(query, len(self)):
            scores[row] = score
        return scores

    def save(self, path: Path) -> None:
        """Write the index to the file `path`."""
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> "VectorStore":
        """Read a file written by `save`; IndexCorruptError if it is missing or damaged."""
        path = Path(path)
        try:
            index = faiss.read_index(str(path))
        except Exception as error:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(
                f"cannot read the vector index {path}; rebuild it with `qa build`"
            ) from error
        store = cls.__new__(cls)
        store._index = index
        return store
