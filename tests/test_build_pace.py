"""A build shows its pace: `qa build --dry-run` counts the texts a build would embed
(added and changed articles only) and estimates the time, writing nothing; the
progress bar gives texts and articles per second. Fake encoder, no model."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import REPO

from qa.index.build import build_index, estimate_build


def folder_state(folder):
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_first_dry_run_counts_every_text_and_writes_nothing(settings, fake_encoder):
    estimate = estimate_build(settings, encoder=fake_encoder)
    assert not settings.index_dir.exists()
    summary = build_index(settings, encoder=fake_encoder)
    assert estimate.full and estimate.added == summary.articles
    assert estimate.texts == summary.embedded
    assert estimate.passages == summary.chunks
    # No build has recorded a pace yet: measured on a sample of the texts.
    assert estimate.pace_from.startswith("measured now") and estimate.texts_per_s > 0
    assert estimate.seconds == pytest.approx(estimate.texts / estimate.texts_per_s)


def test_dry_run_counts_only_added_and_changed_articles(settings, corpus, fake_encoder):
    build_index(settings, encoder=fake_encoder)
    before = folder_state(settings.index_dir)
    first, second = sorted(corpus.glob("*.txt"))[:2]
    (corpus / "copy.txt").write_text(first.read_text(encoding="utf-8") + "\n\n新增的一段话。", encoding="utf-8")
    second.write_text(second.read_text(encoding="utf-8") + "\n\n又改了一句。", encoding="utf-8")

    estimate = estimate_build(settings, encoder=fake_encoder)
    assert folder_state(settings.index_dir) == before  # nothing written
    assert (estimate.added, estimate.changed, estimate.full) == (1, 1, False)
    # The last build's pace, recorded in its manifest, is the one used.
    pace = json.loads((settings.index_dir / "manifest.json").read_text(encoding="utf-8"))["embedding_pace"]
    assert estimate.texts_per_s == pace["texts_per_s"] and "last build" in estimate.pace_from

    summary = build_index(settings, encoder=fake_encoder)
    assert estimate.texts == summary.embedded
    assert 0 < estimate.texts < pace["texts"]  # two articles, not all of them


def test_dry_run_of_an_up_to_date_index_says_so(settings, fake_encoder):
    build_index(settings, encoder=fake_encoder)
    estimate = estimate_build(settings, encoder=fake_encoder)
    assert estimate.texts == 0 and "up to date" in str(estimate)


def test_progress_bar_shows_texts_and_articles_per_second(settings, fake_encoder, capsys):
    build_index(settings, encoder=fake_encoder, progress=True)
    bar = capsys.readouterr().err
    assert "text/s" in bar and "articles/s" in bar


def test_qa_build_dry_run_prints_one_line(settings, corpus, fake_encoder, tmp_path):
    build_index(settings, encoder=fake_encoder)
    (corpus / "new.txt").write_text("标题\n\n2024年3月1日，这是一篇新文章。它有两句话。", encoding="utf-8")
    before = folder_state(settings.index_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    # This checkout's qa, whichever one the interpreter has installed.
    env.update(QA_CORPUS_DIR=str(corpus), QA_INDEX_DIR=str(settings.index_dir), PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "qa.cli", "--model", "fake", "build", "--dry-run"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert "1 added" in lines[0] and "would embed" in lines[0] and "texts/s" in lines[0]
    assert "nothing written" in lines[0]
    assert folder_state(settings.index_dir) == before


def test_a_text_embedded_as_passage_and_sentence_goes_to_the_model_once(settings, fake_encoder):
    class Counting:
        name, dimension = fake_encoder.name, fake_encoder.dimension

        def __init__(self):
            self.sent = []

        def encode_passages(self, texts):
            self.sent += texts
            return fake_encoder.encode_passages(texts)

        encode_queries = encode_passages

        def token_count(self, text):
            return fake_encoder.token_count(text)

    counting = Counting()
    summary = build_index(settings, encoder=counting)
    assert len(counting.sent) == len(set(counting.sent)) < summary.embedded  # one-sentence passages
    from qa.index.embedding import context_prefix
    from qa.index.read import load_index

    index = load_index(settings)
    bounds = index.sentences.bounds
    single = [row for row in range(len(index.chunks)) if bounds[row + 1] - bounds[row] == 1]
    row = next(r for r in single if index.sentence_text(int(bounds[r])) == index.chunks[r].text)
    # Its passage and its sentence still get a vector each, the same one.
    passage = index.vectors.vectors([row])[0]
    assert np.allclose(passage, index.sentence_vectors.vectors([int(bounds[row])])[0])
    embedded_as = context_prefix(index.chunks[row], settings.embed_context) + index.chunks[row].text
    assert np.allclose(passage, fake_encoder.encode_passages([embedded_as])[0], atol=1e-6)


class Concurrent:
    """The fake encoder, declaring two batches at once. Its first two calls wait for each
    other (a barrier): they fail unless the build really runs two batches at once."""

    def __init__(self, fake, concurrency=2, fail_at=None):
        self.name, self.dimension, self.concurrency = fake.name, fake.dimension, concurrency
        self._fake, self._fail_at = fake, fail_at
        self._meet = threading.Barrier(2, timeout=10) if concurrency > 1 else None
        self._lock = threading.Lock()
        self.calls = 0

    def encode_passages(self, texts):
        with self._lock:
            self.calls += 1
            call = self.calls
        if self._meet is not None and call <= 2:
            self._meet.wait()
        if call == self._fail_at:
            raise RuntimeError("the model failed on this batch")
        return self._fake.encode_passages(texts)

    def encode_queries(self, texts):
        return self._fake.encode_queries(texts)

    def token_count(self, text):
        return self._fake.token_count(text)


def stored_vectors(settings):
    from qa.index.read import load_index

    index = load_index(settings)
    passages = index.vectors.vectors(np.arange(len(index.chunks)))
    sentences = index.sentence_vectors.vectors(np.arange(len(index.sentences)))
    return passages, sentences


def test_a_build_embeds_batches_at_once_and_stores_the_same_vectors(settings, fake_encoder, tmp_path):
    parallel = Concurrent(fake_encoder, concurrency=2)
    build_index(settings, encoder=parallel)  # its barrier: two batches ran at once
    one_at_a_time = dataclasses.replace(settings, index_dir=tmp_path / "one-at-a-time")
    build_index(one_at_a_time, encoder=Concurrent(fake_encoder, concurrency=1))
    assert parallel.calls > 2
    for ours, theirs in zip(stored_vectors(settings), stored_vectors(one_at_a_time), strict=True):
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def test_a_failing_batch_stops_the_build_soon_and_keeps_the_index(settings, corpus, fake_encoder):
    build_index(settings, encoder=fake_encoder)
    manifest = (settings.index_dir / "manifest.json").read_bytes()
    for path in sorted(corpus.glob("*.txt")):  # every article changed: all re-embedded
        path.write_text(path.read_text(encoding="utf-8") + "\n\n补充一句。", encoding="utf-8")
    failing = Concurrent(fake_encoder, concurrency=2, fail_at=3)
    with pytest.raises(RuntimeError, match="the model failed"):
        build_index(settings, encoder=failing)
    # Only the batches already in flight ran after the failure, not every batch queued.
    assert failing.calls <= 3 + 2 * 2
    assert (settings.index_dir / "manifest.json").read_bytes() == manifest
    assert build_index(settings, encoder=fake_encoder).changed == 4


class Tagged:
    """The fake encoder under a label, recording the texts each call was given."""

    def __init__(self, fake, concurrency=1):
        self.name, self.dimension, self.concurrency = fake.name, fake.dimension, concurrency
        self._fake = fake
        self.texts = []

    def encode_passages(self, texts):
        self.texts += texts
        return self._fake.encode_passages(texts)

    def encode_queries(self, texts):
        return self._fake.encode_queries(texts)

    def token_count(self, text):
        return self._fake.token_count(text)


def split_with_bulk(fake, bulk_from, bulk_fails=False):
    """The default encoder's shape: questions, fp32 passages, and a bulk (bf16) passage
    encoder loaded only for a large build. Returns (split, fp32, bulk, bulk load count)."""
    from qa.embed.base import SplitEncoder
    from qa.errors import ModelError

    fp32, bulk, loads = Tagged(fake), Tagged(fake, concurrency=2), []

    def load_bulk():
        loads.append(1)
        if bulk_fails:
            raise ModelError("cannot load the bf16 passage model: torch is broken")
        return bulk

    return SplitEncoder(fake, lambda: fp32, load_bulk=load_bulk, bulk_from=bulk_from), fp32, bulk, loads


def test_a_large_build_loads_the_bulk_encoder_once_and_a_small_one_never(settings, corpus, fake_encoder):
    probe = Tagged(fake_encoder)
    build_index(dataclasses.replace(settings, index_dir=settings.index_dir.parent / "probe"), encoder=probe)
    distinct = len(probe.texts)  # what a full build sends to the model
    # Below the threshold: the fp32 passage encoder, and the bulk one is never loaded.
    split, fp32, bulk, loads = split_with_bulk(fake_encoder, bulk_from=distinct + 1)
    build_index(settings, encoder=split)
    assert len(fp32.texts) == distinct and not bulk.texts and not loads
    # At the threshold: the bulk encoder embeds everything, loaded once; once loaded it
    # embeds a small build too (its load is paid).
    split, fp32, bulk, loads = split_with_bulk(fake_encoder, bulk_from=distinct)
    build_index(settings, encoder=split, full=True)
    assert len(bulk.texts) == distinct and not fp32.texts and loads == [1]
    first = sorted(corpus.glob("*.txt"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n\n补充一句。", encoding="utf-8")
    summary = build_index(settings, encoder=split)
    assert summary.changed == 1 and len(bulk.texts) > distinct and not fp32.texts and loads == [1]


def test_a_bulk_encoder_that_fails_to_load_leaves_the_build_in_fp32(settings, fake_encoder, caplog):
    split, fp32, bulk, loads = split_with_bulk(fake_encoder, bulk_from=1, bulk_fails=True)
    summary = build_index(settings, encoder=split)
    assert summary.embedded > 0 and len(fp32.texts) > 0 and not bulk.texts
    assert "embedding in fp32: cannot load the bf16 passage model: torch is broken" in caplog.text
    build_index(settings, encoder=split, full=True)
    assert loads == [1]  # not tried again on every build


def test_a_dry_run_of_a_large_build_measures_the_encoder_that_build_would_use(settings, fake_encoder):
    split, fp32, bulk, loads = split_with_bulk(fake_encoder, bulk_from=100)
    estimate = estimate_build(settings, encoder=split)
    assert estimate.texts >= 100 and estimate.pace_from.startswith("measured now")
    assert bulk.texts and not fp32.texts and loads == [1]


def test_a_wrapper_that_forwards_every_attribute_still_embeds_its_own_way(settings, fake_encoder):
    # The bench's Milvus section wraps the encoder so that a build reuses stored vectors;
    # the inner encoder's choice of a bulk model must not bypass the wrapper.
    split, fp32, bulk, loads = split_with_bulk(fake_encoder, bulk_from=1)

    class Forwarding:
        def __init__(self, inner):
            self._inner, self.texts = inner, []

        def encode_passages(self, texts):
            self.texts += texts
            return self._inner.encode_passages(texts)

        def __getattr__(self, name):
            return getattr(self._inner, name)

    wrapper = Forwarding(split)
    build_index(settings, encoder=wrapper)
    assert wrapper.texts and len(fp32.texts) == len(wrapper.texts) and not loads


def test_a_small_builds_recorded_pace_is_not_the_estimate_of_a_large_one(settings, corpus, fake_encoder, monkeypatch):
    import qa.index.build as build

    summary = build_index(settings, encoder=fake_encoder)  # records its pace
    monkeypatch.setattr(build, "BULK_FROM_TEXTS", summary.embedded + 1)
    (corpus / "more.txt").write_text(
        "\n\n".join(path.read_text(encoding="utf-8") for path in sorted(corpus.glob("*.txt"))), encoding="utf-8"
    )
    # A full rebuild of more texts than the threshold may embed with another encoder: measured now.
    assert estimate_build(settings, encoder=fake_encoder, full=True).pace_from.startswith("measured now")
    # One small article more: the recorded pace holds.
    (corpus / "more.txt").unlink()
    (corpus / "short.txt").write_text("标题\n\n新增的一段话。", encoding="utf-8")
    assert "last build" in estimate_build(settings, encoder=fake_encoder).pace_from
