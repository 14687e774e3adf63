"""Micro-batching: concurrent questions share model calls and each caller gets its own rows."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from qa.embed.batching import BatchingEncoder


class RecordingEncoder:
    """The conftest fake encoder, recording the batches it is given; slow enough
    (a gate the test opens) that callers pile up behind the first batch."""

    name = "recording"

    def __init__(self, inner, gate: threading.Event | None = None):
        self.inner = inner
        self.dimension = inner.dimension
        self.calls: list[list[str]] = []
        self.gate = gate

    def encode_queries(self, texts):
        self.calls.append(list(texts))
        if self.gate is not None:
            self.gate.wait(10)
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts):
        return self.inner.encode_passages(texts)

    def token_count(self, text):
        return self.inner.token_count(text)


QUESTIONS = [f"知识城第{i}个问题：与新加坡签署了多少份备忘录？" for i in range(20)]


def test_concurrent_questions_share_model_calls_and_get_their_own_vectors(fake_encoder):
    gate = threading.Event()
    recording = RecordingEncoder(fake_encoder, gate)
    batching = BatchingEncoder(recording, window_s=0.001)
    results: dict[int, np.ndarray] = {}

    def ask(i):
        results[i] = batching.encode_queries([QUESTIONS[i]])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    # The first batch holds the model until every caller is queued behind it.
    while sum(len(call) for call in recording.calls) + len(batching._pending) < 20:
        threading.Event().wait(0.005)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(results) == 20
    for i, vectors in results.items():
        assert vectors.shape == (1, fake_encoder.dimension)
        np.testing.assert_allclose(vectors[0], fake_encoder.encode_queries([QUESTIONS[i]])[0], rtol=1e-6)
    assert len(recording.calls) < 20  # questions waiting together went in as one batch
    assert max(len(call) for call in recording.calls) > 1


@pytest.mark.parametrize("workers", [1, 2])
def test_each_worker_runs_the_model_at_once(fake_encoder, workers):
    # The 4-bit question model gains nothing from batches on a CPU, so throughput under
    # load comes from the model running on every core: with two workers a second
    # question is embedded while the first is still in the model; with one it waits.
    gate = threading.Event()
    recording = RecordingEncoder(fake_encoder, gate)
    batching = BatchingEncoder(recording, window_s=0, workers=workers)
    threads = [threading.Thread(target=batching.encode_queries, args=([q],)) for q in QUESTIONS[:2]]
    threads[0].start()
    while not recording.calls:
        threading.Event().wait(0.005)
    threads[1].start()
    deadline = time.monotonic() + (5 if workers > 1 else 0.2)
    while len(recording.calls) < 2 and time.monotonic() < deadline:
        threading.Event().wait(0.005)
    in_model_together = len(recording.calls)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert in_model_together == workers
    assert [len(call) for call in recording.calls] == [1, 1]


def test_the_same_question_asked_together_is_embedded_once(fake_encoder):
    recording = RecordingEncoder(fake_encoder)
    batching = BatchingEncoder(recording, window_s=0.05)
    out = []
    threads = [threading.Thread(target=lambda: out.append(batching.encode_queries(["洛阳人才计划"]))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(out) == 5 and all(np.array_equal(o, out[0]) for o in out)
    assert sum(len(call) for call in recording.calls) < 5


def test_a_model_error_reaches_the_caller_and_the_next_question_still_works(fake_encoder):
    class Failing(RecordingEncoder):
        def encode_queries(self, texts):
            if any("boom" in t for t in texts):
                raise RuntimeError("model failed")
            return super().encode_queries(texts)

    batching = BatchingEncoder(Failing(fake_encoder), window_s=0)
    with pytest.raises(RuntimeError, match="model failed"):
        batching.encode_queries(["boom"])
    assert batching.encode_queries(["知识城"]).shape == (1, fake_encoder.dimension)


def test_passages_and_token_counts_go_straight_to_the_model(fake_encoder):
    recording = RecordingEncoder(fake_encoder)
    batching = BatchingEncoder(recording)
    assert batching.encode_passages(["一段", "两段"]).shape == (2, fake_encoder.dimension)
    assert batching.token_count("一段") == fake_encoder.token_count("一段")
    assert recording.calls == []  # no query batching for builds
    assert batching.encode_queries([]).shape == (0, fake_encoder.dimension)
