"""The contracts of the stores: `VectorStore` (FAISS here, Milvus past one machine) and
`LexicalSearch` (BM25 candidates from an engine that holds the passages), and the
vector-index parameters both backends share.

Cheap to import: numpy only. The backends are `qa.stores.faiss_store`,
`qa.stores.bm25` and `qa.stores.milvus`; `qa.stores.factory` picks one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from qa.schema import Filter


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
# qa/bench/scale.py), so below this many rows it stays under ~3 ms a question.
EXACT_BELOW = 50_000
# HNSW graph degree, build breadth and search breadth (a search looks at
# max(HNSW_EF_SEARCH, n) candidates), measured with qa/bench/run.py's stand-in passages
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
# A larger graph needs a wider search for the same recall. The bench's stand-ins
# (2026-12-05, top 100 asked, Recall@10 against exact / search p50 ms on 2 cores):
#   efSearch       128            256            384            512            768
#   100,000:  0.889 / 0.81   0.946 / 1.37   0.965 / 2.03   0.975 / 2.61   0.984 / 3.60
#   1,000,000: 0.811 / 1.48  0.897 / 2.20   0.932 / 3.00   0.951 / 4.00   0.973 / 5.91
# From HNSW_LARGE_FROM vectors a search is twice as wide: the first breadth reaching
# 0.95 at a million. Below it 256 stays (0.97 on real vectors; the 10,000-article
# archive, 124,144 passages, keeps its query time).
HNSW_EF_SEARCH_LARGE = 512
HNSW_LARGE_FROM = 500_000
KINDS = ("flat", "hnsw")
# The share of an HNSW graph's vectors that may be dead (rows of removed and changed
# articles, left in the graph by incremental builds that append) before a build
# compacts it, building it again from the live rows. See docs/corpus.md for the
# measurement behind 20%.
DEAD_ROWS_MAX = 0.2
# The sentence store is only read by row (the candidate passages' sentences are scored,
# never searched: qa/search/retriever.py), so it is flat at every size: a graph over 2.7
# vectors a passage would cost most of a large build's index time and memory for nothing.
SENTENCES_KIND = "flat"


def ef_search(rows: int, n: int) -> int:
    """The HNSW search breadth for a graph of `rows` vectors asked for `n` neighbours
    (a breadth below n would return fewer than n)."""
    return max(HNSW_EF_SEARCH_LARGE if rows >= HNSW_LARGE_FROM else HNSW_EF_SEARCH, n)


def kind_for(rows: int, choice: str = "auto") -> str:
    """The index kind for a store of `rows` vectors: exact when that is cheap, unless
    `choice` (Settings.vector_index) names one."""
    if choice in KINDS:
        return choice
    return "flat" if rows < EXACT_BELOW else "hnsw"


@runtime_checkable
class LexicalSearch(Protocol):
    """BM25's best passages from an engine that holds them itself (Milvus), in place of
    ranking `LexicalIndex.term_scores` over every passage here. The scores that fusion
    and the judge read still come from `LexicalIndex`, so both stores rank alike."""

    def search(
        self, text: str, n: int, allowed: np.ndarray | None = None, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the `n` passages that score best for the question text `text`
        (`Query.lexical_query`), best first, among the rows `allowed` or the articles
        `where` lets through; (rows, scores), scores higher is better."""
