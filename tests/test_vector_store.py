"""The vector-store contract: every backend passes the same tests, with exact numpy top-k as
the reference (a fake in-memory store here, FAISS in qa/stores/faiss_store.py, Milvus through
embedded milvus-lite and through a milvus-lite server in qa/stores/milvus.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from conftest import milvus_missing

from qa.stores.base import VectorStore, as_matrix
from qa.stores.faiss_store import FaissStore


class NumpyStore:
    """The simplest store that keeps the contract: a matrix and a full sort."""

    def __init__(self, dimension: int):
        self._rows = np.zeros((0, dimension), dtype=np.float32)

    @property
    def dimension(self) -> int:
        return self._rows.shape[1]

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, vectors):
        self._rows = np.vstack([self._rows, as_matrix(vectors, self.dimension)])

    def search(self, vectors, n, allowed=None, where=None):
        scores = as_matrix(vectors, self.dimension) @ self._rows.T
        if allowed is not None:
            blocked = np.ones(len(self), dtype=bool)
            blocked[np.asarray(allowed, dtype=np.int64)] = False
            scores[:, blocked] = -np.inf
        n = min(n, len(self) if allowed is None else len(allowed))
        ids = np.argsort(-scores, axis=1, kind="stable")[:, :n]
        return ids, np.take_along_axis(scores, ids, axis=1)

    def vectors(self, ids):
        return self._rows[np.asarray(ids, dtype=np.int64)]

    def scores(self, vector, ids):
        return self.vectors(ids) @ as_matrix(vector, self.dimension)[0]

    def save(self, path: Path) -> None:
        np.save(path, self._rows)

    @classmethod
    def load(cls, path: Path) -> NumpyStore:
        store = cls(1)
        store._rows = np.load(path if str(path).endswith(".npy") else f"{path}.npy")
        return store


class HnswStore(FaissStore):
    """FAISS's HNSW index: approximate, but at these sizes its search is exact."""

    def __init__(self, dimension: int):
        super().__init__(dimension, kind="hnsw")


class Backend:
    """How a test makes and reloads one kind of store."""

    def __init__(self, name, new, load):
        self.name, self.new, self.load = name, new, load


_collections = itertools.count()


def _milvus_backend(uri: str, name: str) -> Backend:
    from qa.stores.milvus import MilvusStore

    def new(dimension):
        return MilvusStore.create(uri, f"contract_{next(_collections)}", dimension)

    return Backend(name, new, MilvusStore.load)


@pytest.fixture(scope="session")
def lite_db(tmp_path_factory):
    """One embedded milvus-lite database per test worker (one process may open a file)."""
    if milvus_missing():
        pytest.skip(milvus_missing())
    return str(tmp_path_factory.mktemp("milvus") / "contract.db")


@pytest.fixture(params=["NumpyStore", "FaissStore", "HnswStore", "MilvusLite", "MilvusServer"])
def backend(request):
    if request.param == "MilvusLite":
        return _milvus_backend(request.getfixturevalue("lite_db"), request.param)
    if request.param == "MilvusServer":
        return _milvus_backend(request.getfixturevalue("milvus_server"), request.param)
    cls = {"NumpyStore": NumpyStore, "FaissStore": FaissStore, "HnswStore": HnswStore}[request.param]
    return Backend(request.param, cls, cls.load)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[[7, 150]] + 0.1 * rng.standard_normal((2, 16)).astype(np.float32)
    return vectors, queries


def test_search_returns_the_exact_top_n_for_each_query(backend, data):
    vectors, queries = data
    store = backend.new(16)
    assert isinstance(store, VectorStore)
    store.add(vectors[:100])
    store.add(vectors[100:])  # ids continue across adds
    ids, scores = store.search(queries, 10)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    assert ids.shape == scores.shape == (2, 10)
    assert (ids == expected).all()
    assert np.allclose(scores, np.take_along_axis(queries @ vectors.T, expected, axis=1), atol=1e-5)
    assert ids[0, 0] == 7 and ids[1, 0] == 150


def test_a_filtered_search_finds_the_nearest_allowed_rows_only(backend, data):
    vectors, queries = data
    store = backend.new(16)
    store.add(vectors)
    allowed = np.arange(0, 300, 3)  # query 0 is near row 7, which is not allowed
    ids, scores = store.search(queries, 10, allowed)
    expected = allowed[np.argsort(-(queries @ vectors[allowed].T), axis=1)[:, :10]]
    assert (ids == expected).all() and 7 not in ids[0]
    assert np.allclose(scores, np.take_along_axis(queries @ vectors.T, expected, axis=1), atol=1e-5)
    ids, _ = store.search(queries, 10, np.array([5, 9]))
    assert ids.shape == (2, 2) and set(ids[0].tolist()) == {5, 9}


def test_stored_vectors_come_back_by_id_and_n_beyond_the_size_is_capped(backend, data):
    vectors, queries = data
    store = backend.new(16)
    store.add(vectors[:5])
    assert np.allclose(store.vectors(np.array([4, 0])), vectors[[4, 0]])
    ids, _ = store.search(queries[0], 50)  # one query as a plain vector is fine too
    assert ids.shape == (1, 5) and sorted(ids[0].tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="shape"):
        store.add(np.zeros((2, 8), dtype=np.float32))


def test_scores_are_the_inner_products_with_the_rows_asked_for(backend, data):
    vectors, queries = data
    store = backend.new(16)
    store.add(vectors)
    rows = np.array([299, 3, 3, 150, 0])  # any order, repeats allowed
    assert np.allclose(store.scores(queries[0], rows), vectors[rows] @ queries[0], atol=1e-5)
    assert store.scores(queries[0], np.array([], dtype=np.int64)).shape == (0,)


def test_a_saved_store_loads_with_the_same_answers(backend, data, tmp_path):
    vectors, queries = data
    store = backend.new(16)
    store.add(vectors)
    store.save(tmp_path / "store")
    loaded = backend.load(tmp_path / "store")
    assert len(loaded) == len(store) == 300
    for a, b in zip(store.search(queries, 5), loaded.search(queries, 5)):
        assert np.allclose(a, b)


def test_the_index_kind_follows_the_size_and_survives_a_save(tmp_path):
    from qa.stores.base import EXACT_BELOW, kind_for

    assert kind_for(EXACT_BELOW - 1) == "flat" and kind_for(EXACT_BELOW) == "hnsw"
    store = FaissStore(8, kind="hnsw")
    store.add(np.eye(8, dtype=np.float32))
    store.save(tmp_path / "v.faiss")
    assert FaissStore.load(tmp_path / "v.faiss").kind == "hnsw"
    with pytest.raises(ValueError, match="kind"):
        FaissStore(8, kind="ivf")


def test_a_damaged_faiss_file_is_reported_with_the_fix(tmp_path):
    from qa.errors import IndexCorruptError

    (tmp_path / "vectors.faiss").write_bytes(b"not an index")
    with pytest.raises(IndexCorruptError, match="qa build"):
        FaissStore.load(tmp_path / "vectors.faiss")
