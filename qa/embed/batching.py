"""Micro-batching for question embeddings: questions that arrive together share one
model call, as inference servers batch requests.

Embedding the question is almost all of a question's time (docs/speed.md), and on
CPU one batch of 20 short questions costs about 60% of 20 single calls (measured:
241 ms against 394 ms, one torch thread). The default 4-bit ONNX question model
gains nothing from a batch on a CPU without wide int8 kernels, so several workers
run the model at once, one per core. Passages (index builds) go straight to the
wrapped encoder: they come in batches already.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.embed.base import core_workers, passage_encoder


@dataclass
class _Request:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    vectors: np.ndarray | None = None
    error: BaseException | None = None


class BatchingEncoder:
    """An Encoder (see qa/embed/factory.py) whose `encode_queries` gathers the questions of
    concurrent callers into one call of the wrapped encoder.

    Worker threads (one per core, `qa.embed.base.core_workers`) run the model for questions. A
    worker waits for a first request, then `window_s` more for others to join, takes
    its share of what waits (up to `max_batch` texts), embeds them together and hands
    each caller its rows. While batches are being embedded the next ones gather, so
    under load batches form without any waiting; a lone question pays only the window.

    Example:
        >>> encoder = BatchingEncoder(load_encoder(settings))  # doctest: +SKIP
        >>> Retriever(load_index(settings), encoder, settings)  # doctest: +SKIP
    """

    def __init__(self, encoder, window_s: float = 0.002, max_batch: int = 32, workers: int | None = None):
        workers = core_workers() if workers is None else workers
        if window_s < 0 or max_batch < 1 or workers < 1:
            raise ValueError(
                f"window_s must be >= 0, max_batch and workers >= 1, got {window_s!r}, {max_batch!r}, {workers!r}"
            )
        self.encoder = encoder
        self.workers = workers
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.window_s = window_s
        self.max_batch = max_batch
        self.batches = 0  # model calls made for questions (for the load script and tests)
        self.questions = 0  # questions embedded
        self._pending: list[_Request] = []
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []

    # -- the Encoder interface -------------------------------------------------------

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dimension), L2-normalised: the same rows the wrapped encoder gives."""
        request = _Request(list(texts))
        if not request.texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._ready:
            self._pending.append(request)
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._serve, name="qa-query-batcher", daemon=True)
                thread.start()
                self._threads.append(thread)
            self._ready.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.vectors

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode_passages(texts)

    def for_texts(self, count: int):
        return passage_encoder(self.encoder, count)

    def token_count(self, text: str) -> int:
        return self.encoder.token_count(text)

    # -- the worker ------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._pending:
                    self._ready.wait()
            if self.window_s:
                time.sleep(self.window_s)  # let questions arriving together join this batch
            with self._ready:
                # With several workers each takes its share of what waits, so the model
                # runs on every core instead of one worker taking the whole queue.
                share = -(-len(self._pending) // self.workers)
                batch, size = [], 0
                while self._pending and (
                    not batch or (len(batch) < share and size + len(self._pending[0].texts) <= self.max_batch)
                ):
                    request = self._pending.pop(0)
                    batch.append(request)
                    size += len(request.texts)
            if batch:  # another worker may have taken everything
                self._embed(batch)

    def _embed(self, batch: list[_Request]) -> None:
        # The same question asked by several users at once is embedded once.
        unique = list(dict.fromkeys(text for request in batch for text in request.texts))
        try:
            vectors = np.asarray(self.encoder.encode_queries(unique), dtype=np.float32)
            row = {text: i for i, text in enumerate(unique)}
            for request in batch:
                request.vectors = vectors[[row[text] for text in request.texts]]
        except BaseException as error:  # every caller of the batch gets the model's error
            for request in batch:
                request.error = error
        self.batches += 1
        self.questions += len(unique)
        for request in batch:
            request.done.set()
