"""Smoke test of qa/bench/scale.py: the generator and the stand-in encoder (no timings, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.bench import generate
from qa.index.build import build_index
from qa.index.read import load_index
from qa.ingest.corpus import load_corpus
from qa.search.retriever import Retriever
from qa.settings import Settings

ARTICLES = 30


@pytest.fixture(scope="module")
def scale():
    from qa.bench import scale

    return scale


@pytest.fixture(scope="module")
def generated(scale, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale") / "corpus"
    scale.generate_corpus(folder, ARTICLES, seed=7)
    return folder


def _contents(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_generator_is_deterministic_for_a_seed(scale, generated, tmp_path):
    scale.generate_corpus(tmp_path / "again", ARTICLES, seed=7)
    scale.generate_corpus(tmp_path / "other", ARTICLES, seed=8)
    first = _contents(generated)
    assert len(first) == ARTICLES
    assert _contents(tmp_path / "again") == first
    assert _contents(tmp_path / "other") != first


def test_generated_articles_load_with_distinct_titles_and_dates(generated):
    articles = load_corpus(generated)
    assert len(articles) == ARTICLES
    assert len({a.title for a in articles}) == ARTICLES
    assert len({a.date for a in articles}) == ARTICLES
    for article in articles:
        assert 1000 <= len(article.text) <= 2600, (article.source, len(article.text))
        assert article.text.count("\n") >= 1  # several paragraphs survive cleaning


def test_stand_in_vectors_are_unit_length_and_deterministic(scale):
    encoder = scale.StandIn()
    vectors = encoder.encode_passages(["知识城", "知识城", "新加坡"])
    assert vectors.shape == (3, encoder.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[1]) and not np.allclose(vectors[0], vectors[2])
    assert encoder.encode_passages([]).shape == (0, encoder.dimension)


def test_index_of_generated_articles_answers_from_them(scale, generated, tmp_path):
    settings = Settings.load(corpus_dir=generated, index_dir=tmp_path / "index")
    encoder = scale.StandIn()
    build_index(settings, encoder=encoder)
    # A sentence of one article as the question. Which passages come first is not
    # checked: the stand-in's vectors are noise, so the dense half of the ranking is too.
    article = load_corpus(generated)[3]
    sentence = next(s for s in generate._SENTENCE.findall(article.text) if len(s) >= 15)
    hits = Retriever(load_index(settings), encoder, settings).retrieve(sentence, 5)
    names = {path.name for path in generated.iterdir()}
    assert hits and {hit.source for hit in hits} <= names
