"""What a build embeds and how: each passage and each of its sentences, with the
configured context (the article's date) in front, in batches of similar length.

Passages and their sentences are both embedded: a question usually targets one
sentence, whose meaning a whole passage's vector averages away.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from qa.embed.base import concurrency_of, passage_encoder
from qa.schema import Chunk
from qa.settings import CONTEXTS
from qa.text.sentences import sentence_spans

T = TypeVar("T")
R = TypeVar("R")


def sentence_rows(chunks: Sequence[Chunk]) -> list[tuple[int, int, int]]:
    """Every sentence of `chunks` as (passage position, start, end), article offsets,
    in passage order: the order the index stores and embeds them in."""
    return [
        (position, span.start, span.end)
        for position, chunk in enumerate(chunks)
        for span in sentence_spans(chunk.text, chunk.start)
    ]


def embedding_texts(chunks: Sequence[Chunk], sentences: Sequence[tuple], context: str) -> list[str]:
    """The texts one article's passages, then its sentences (`sentence_rows`, extra
    fields ignored), are embedded as."""
    texts = [context_prefix(chunk, context) + chunk.text for chunk in chunks]
    for position, start, end, *_ in sentences:
        chunk = chunks[position]
        texts.append(context_prefix(chunk, context) + chunk.text[start - chunk.start : end - chunk.start])
    return texts


def context_prefix(chunk: Chunk, context: str) -> str:
    """What goes in front of a passage or sentence for embedding.

    The date lets "in 2024" find the 2024 article; whole titles were measured to
    hurt (they are long and alike, so they pull every passage of an article
    together), see docs/measurements.md, "What the embedding sees".
    """
    if context == "date":
        return f"{chunk.date}\n" if chunk.date else ""
    if context == "title":
        return f"{chunk.title}\n"
    if context == "none":
        return ""
    raise ValueError(f"embed_context must be one of {', '.join(CONTEXTS)}, got {context!r}")


def encode_in_batches(
    encoder, texts: list[str], progress: bool, batch_size: int = 32, articles: int | None = None
) -> np.ndarray:
    """Embed `texts` in batches of similar length; rows come back in `texts` order.
    Batches run on as many threads as the encoder allows (`Encoder.concurrency`: one
    per core for the ONNX and bf16 encoders); each batch is the same as run alone, so
    are its vectors. The encoder may pick another for a large build (`for_texts`).

    A batch is padded to its longest text, so batching sentences with 200-character
    passages wastes most of the work on padding; sorting by length first avoids it.
    The progress bar shows texts per second and the time left; with `articles` (how
    many articles the texts come from) also the pace in articles per second.
    """
    from tqdm.auto import tqdm

    # A passage of one sentence is embedded as that sentence too, in the same words:
    # each distinct text goes to the model once (12 of the bundled corpus's 260).
    distinct = {}
    rows_of = np.fromiter(
        (distinct.setdefault(text, len(distinct)) for text in texts), dtype=np.int64, count=len(texts)
    )
    if len(distinct) < len(texts):
        return encode_in_batches(encoder, list(distinct), progress, batch_size, articles)[rows_of]

    # A large build may go to another encoder (bf16 passages, `SplitEncoder.for_texts`).
    encoder = passage_encoder(encoder, len(texts))
    batch_size = build_batch_size(encoder, batch_size)
    order = np.argsort([-len(text) for text in texts], kind="stable")
    batches = [order[begin : begin + batch_size] for begin in range(0, len(texts), batch_size)]

    def embed(rows: np.ndarray) -> np.ndarray:
        return np.asarray(encoder.encode_passages([texts[i] for i in rows]), dtype=np.float32)

    vectors: np.ndarray | None = None
    desc = f"embedding {len(texts):,} texts" + (f" of {articles:,} articles" if articles else "")
    started = time.perf_counter()
    done = 0
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar:
        for rows, batch in zip(batches, in_order(embed, batches, concurrency_of(encoder)), strict=True):
            if vectors is None:
                vectors = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
            vectors[rows] = batch
            done += len(rows)
            if articles and progress:
                # Texts are embedded longest first, not article by article, so the
                # article pace is the text pace times articles per text.
                pace = done / len(texts) * articles / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix_str(f"{pace:.2f} articles/s", refresh=False)
            bar.update(len(rows))
    return vectors


def build_batch_size(encoder: object, batch_size: int = 32) -> int:
    """Texts a call of `encoder.encode_passages` gets in a build: `batch_size`, or the
    encoder's own when it is made for larger ones (a GPU's: `CudaEncoder`, 256)."""
    return max(batch_size, int(getattr(encoder, "batch_size", 0) or 0))


def in_order(work: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """`work` of each item, in order, with up to `workers` of them running at once.

    A build embeds on every core this way (one batch a core: `Encoder.concurrency`).
    At most two items a worker are in flight, so an error or Ctrl-C stops the build
    after the batches already running instead of after every batch queued.
    """
    if workers <= 1:
        yield from map(work, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="qa-embed")
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
