"""Shared fixtures: a fake encoder for fast tests, the real model once per session, seed paths."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.text.normalize import match_form

REPO = Path(__file__).resolve().parents[1]


# Copies of shared/seeds and shared/eval, so a clone is enough (see their READMEs).
SEEDS = REPO / "tests" / "data" / "seeds"
EVAL_FILE = REPO / "eval" / "dev_questions.jsonl"


class FakeEncoder:
    """Deterministic stand-in for the embedding model.

    Each character bigram of the matching form gets a fixed random vector seeded by
    its hash; a text is the L2-normalised sum. Texts sharing words are close, so
    retrieval behaves sensibly, and no model is loaded.
    """

    name = "fake-bigram-hash"
    dimension = 64

    def _vector(self, text: str) -> np.ndarray:
        form = "".join(ch for ch in match_form(text) if ch.isalnum())
        grams = [form[i : i + 2] for i in range(len(form) - 1)] or [form or " "]
        total = np.zeros(self.dimension, dtype=np.float32)
        for gram in grams:
            seed = int.from_bytes(hashlib.sha256(gram.encode()).digest()[:8], "little")
            total += np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)
        return total / (np.linalg.norm(total) or 1.0)

    def encode_passages(self, texts):
        return np.stack([self._vector(t) for t in texts]) if len(texts) else np.zeros((0, self.dimension), np.float32)

    def encode_queries(self, texts):
        return self.encode_passages(texts)

    def token_count(self, text: str) -> int:
        return len(text) + 2


@pytest.fixture(scope="session")
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A copy of the bundled corpus that a test may change."""
    folder = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", folder)
    return folder


@pytest.fixture
def settings(tmp_path, corpus):
    """Settings over that copy, with the fake encoder's name: no model is loaded."""
    from qa.settings import Settings

    return Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    if not SEEDS.is_dir():
        raise FileNotFoundError(f"seed files missing from {SEEDS}; restore them with git checkout")
    return SEEDS


# ------------------------------------------------- the real model over the bundled corpus


@pytest.fixture(scope="session")
def real_index(tmp_path_factory):
    """The bundled corpus indexed with the real bundled model and real FAISS, once per session.

    The corpus is copied first, so tests may read it freely and nothing they do can
    touch the repository's corpus/ or index/. The model comes from the default cache
    (~/.cache/qa-news; converted on first use). Yields a namespace with `settings`,
    `retriever` (a Retriever on that index), `corpus_dir`, `index_dir` and `summary`.
    Tests must not modify these folders: copy them (see test_cli.py).
    """
    import shutil
    from types import SimpleNamespace

    from qa.index.build import build_index
    from qa.search.retriever import Retriever
    from qa.settings import Settings

    root = tmp_path_factory.mktemp("real-index")
    corpus_dir = root / "corpus"
    shutil.copytree(REPO / "corpus", corpus_dir)
    settings = Settings.load(corpus_dir=corpus_dir, index_dir=root / "index")
    summary = build_index(settings)
    retriever = Retriever.from_settings(settings)
    return SimpleNamespace(
        settings=settings,
        retriever=retriever,
        corpus_dir=corpus_dir,
        index_dir=root / "index",
        summary=summary,
    )


# ------------------------------------------------------------------ Milvus (milvus-lite)


def milvus_missing() -> str:
    """Why the Milvus tests cannot run here ("" when they can): the `milvus` extra
    (pymilvus, milvus-lite[chinese]) is not installed."""
    import importlib.util

    for module, package in (("pymilvus", "pymilvus"), ("milvus_lite", "milvus-lite[chinese]"), ("jieba", "jieba")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed; run `pip install -e '.[milvus]'` to test the Milvus store"
    return ""


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A `milvus-lite server` process on a free local port, for the session; yields its
    URI (http://127.0.0.1:PORT) and stops the process afterwards."""
    if milvus_missing():
        pytest.skip(milvus_missing())
    from qa.bench.milvus import MilvusServer

    data_dir = tmp_path_factory.mktemp("milvus-server") / "data"
    server = MilvusServer(data_dir, log=data_dir.parent / "server.log")
    yield server.uri
    server.stop()
