"""Build, save and load the search index: chunk texts and metadata, vectors, BM25, manifest.

A build writes into a temporary folder beside the index and swaps it in at the
end, so an interrupted build leaves the previous index as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from qa.chunking import chunk_corpus
from qa.corpus import article_files, load_corpus
from qa.errors import CorpusError, IndexCorruptError, IndexNotFoundError, IndexWriteError, StaleIndexError
from qa.highlight import sentence_spans
from qa.lexical import LexicalIndex
from qa.normalize import match_form
from qa.schema import Article, Chunk
from qa.settings import Settings
from qa.tuning import DEFAULT_TUNING
from qa.vector_store import FaissStore, VectorStore, kind_for

FORMAT_VERSION = 3
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
CHUNK_VECTORS = "vectors.faiss"
SENTENCES = "sentences.json"
SENTENCE_VECTORS = "sentence_vectors.faiss"
ARTICLES = "articles.jsonl"
LEXICAL_DIR = "lexical"
CONTEXTS = ("none", "date", "title")


@dataclass(frozen=True)
class BuildSummary:
    """What `build_index` did, for people and logs."""

    index_dir: str
    articles: int
    chunks: int
    model: str
    dimension: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"indexed {self.articles} articles as {self.chunks} passages with {self.model} "
            f"({self.dimension} dims) in {self.seconds:.1f}s -> {self.index_dir}"
        )


@dataclass
class SentenceTable:
    """Every sentence of every passage: its passage's row, its offsets in the article, and
    its matching form (`qa.normalize.match_form`, made at build time: an OpenCC pass per
    sentence is too slow to repeat per question or per load)."""

    chunk: np.ndarray  # int32 row into SearchIndex.chunks, ascending
    start: np.ndarray  # int32
    end: np.ndarray  # int32
    form: list[str]

    def __len__(self) -> int:
        return len(self.chunk)

    def of_chunk(self, row: int) -> range:
        """The sentence rows of passage `row`: sentences are stored in passage order, so
        a binary search finds them without a per-passage list."""
        first, last = np.searchsorted(self.chunk, (row, row + 1))
        return range(int(first), int(last))

    def to_json(self) -> dict:
        return {"chunk": self.chunk.tolist(), "start": self.start.tolist(), "end": self.end.tolist(), "form": self.form}

    @classmethod
    def from_json(cls, data: dict) -> "SentenceTable":
        arrays = (np.asarray(data[key], dtype=np.int32) for key in ("chunk", "start", "end"))
        return cls(*arrays, form=list(data["form"]))


@dataclass
class SearchIndex:
    """A loaded index: the passages, their sentences, and the ways of searching them."""

    chunks: list[Chunk]
    vectors: VectorStore  # one vector per passage
    sentences: SentenceTable
    sentence_vectors: VectorStore  # one vector per sentence
    lexical: LexicalIndex
    manifest: dict
    directory: Path | None
    articles: dict[str, Article]  # by source: what a result's context is cut from
    # The last freshness check: (corpus folder, when, folder stamp, changes). Kept on the
    # index it describes, so a rebuilt index never inherits an old verdict.
    freshness: tuple | None = None

    def sentence_text(self, sentence: int) -> str:
        chunk = self.chunks[int(self.sentences.chunk[sentence])]
        return chunk.text[int(self.sentences.start[sentence]) - chunk.start : int(self.sentences.end[sentence]) - chunk.start]


def context_prefix(chunk: Chunk, context: str) -> str:
    """What goes in front of a passage or sentence for embedding.

    The date lets "in 2024" find the 2024 article; whole titles were measured to
    hurt (they are long and alike, so they pull every passage of an article
    together), see README "What the embedding sees".
    """
    if context == "date":
        return f"{chunk.date}\n" if chunk.date else ""
    if context == "title":
        return f"{chunk.title}\n"
    if context == "none":
        return ""
    raise ValueError(f"embed_context must be one of {', '.join(CONTEXTS)}, got {context!r}")


def split_sentences(chunks: list[Chunk]) -> SentenceTable:
    """Every sentence of every chunk, with article offsets (see `qa.highlight.sentence_spans`)."""
    rows, starts, ends, forms = [], [], [], []
    for row, chunk in enumerate(chunks):
        for span in sentence_spans(chunk.text, chunk.start):
            rows.append(row)
            starts.append(span.start)
            ends.append(span.end)
            forms.append(match_form(chunk.text[span.start - chunk.start : span.end - chunk.start]))
    as_array = lambda values: np.asarray(values, dtype=np.int32)  # noqa: E731
    return SentenceTable(as_array(rows), as_array(starts), as_array(ends), forms)


def build_index(
    settings: Settings | None = None,
    *,
    encoder=None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> BuildSummary:
    """(Re)build the index from the corpus folder.

    Args:
        settings: where the corpus and index are and how to chunk and embed; defaults
            to `Settings.load()`.
        encoder: an `Encoder` to use instead of loading `settings.embed_model` (tests).
        progress: show a progress bar while embedding.
        log: called with one-line status messages.

    Returns:
        A BuildSummary.

    Raises:
        CorpusError: the corpus folder or a file in it cannot be read; the old index is kept.
        ModelError: the embedding model cannot be loaded.

    Example:
        >>> from qa import build_index
        >>> print(build_index())  # doctest: +SKIP
        indexed 4 articles as 70 passages ...
    """
    settings = settings or Settings.load()
    say = log or (lambda message: None)
    started = time.perf_counter()
    articles = load_corpus(settings.corpus_dir)
    chunks = chunk_corpus(articles, settings.chunk_size, settings.chunk_overlap)
    say(f"{len(articles)} articles, {len(chunks)} passages")

    if encoder is None:
        from qa.encoder import load_encoder

        say(f"loading embedding model {settings.embed_model}")
        encoder = load_encoder(settings)
    sentences = split_sentences(chunks)
    # Passages and their sentences are both embedded: a question usually targets one
    # sentence, whose meaning a whole passage's vector averages away.
    texts = [context_prefix(chunk, settings.embed_context) + chunk.text for chunk in chunks]
    for row, start, end in zip(sentences.chunk, sentences.start, sentences.end):
        chunk = chunks[row]
        texts.append(context_prefix(chunk, settings.embed_context) + chunk.text[start - chunk.start : end - chunk.start])
    vectors = _encode_in_batches(encoder, texts, progress)

    store = FaissStore(vectors.shape[1], kind_for(len(chunks)))
    store.add(vectors[: len(chunks)])
    sentence_store = FaissStore(vectors.shape[1], kind_for(len(sentences)))
    sentence_store.add(vectors[len(chunks) :])
    lexical = LexicalIndex.build([chunk.text for chunk in chunks])
    manifest = {
        "format_version": FORMAT_VERSION,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": encoder.name,
        "dimension": int(vectors.shape[1]),
        "settings": settings.index_shape(),
        # The tuning constants as they were at build time, so a figure measured on this
        # index can be traced to them (retrieval runs with the current qa/tuning.py).
        "tuning": DEFAULT_TUNING.to_dict(),
        # Exact below qa.vector_store.EXACT_BELOW rows, HNSW above.
        "vector_index": {"passages": store.kind, "sentences": sentence_store.kind},
        "chunks": len(chunks),
        "sentences": len(sentences),
        "articles": [
            {"source": a.source, "title": a.title, "date": a.date, "sha256": a.content_hash}
            for a in articles
        ],
    }
    by_source = {article.source: article for article in articles}
    index = SearchIndex(chunks, store, sentences, sentence_store, lexical, manifest, None, by_source)
    _write_atomically(Path(settings.index_dir), index)
    _forget_cached(Path(settings.index_dir))
    return BuildSummary(
        index_dir=str(settings.index_dir),
        articles=len(articles),
        chunks=len(chunks),
        model=encoder.name,
        dimension=int(vectors.shape[1]),
        seconds=time.perf_counter() - started,
    )


def _encode_in_batches(encoder, texts: list[str], progress: bool, batch_size: int = 32) -> np.ndarray:
    """Embed `texts` in batches of similar length; rows come back in `texts` order.

    A batch is padded to its longest text, so batching sentences with 200-character
    passages wastes most of the work on padding; sorting by length first avoids it.
    """
    from tqdm.auto import tqdm

    if not texts:
        raise IndexCorruptError("nothing to index: the corpus produced no passages")
    order = np.argsort([-len(text) for text in texts], kind="stable")
    vectors: np.ndarray | None = None
    with tqdm(total=len(texts), desc="embedding passages and sentences", unit="text", disable=not progress) as bar:
        for begin in range(0, len(texts), batch_size):
            rows = order[begin : begin + batch_size]
            batch = np.asarray(encoder.encode_passages([texts[i] for i in rows]), dtype=np.float32)
            if vectors is None:
                vectors = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
            vectors[rows] = batch
            bar.update(len(rows))
    return vectors


def _write_atomically(index_dir: Path, index: SearchIndex) -> None:
    """Write `index` beside `index_dir` and swap it in; the old index survives any failure.

    Raises:
        IndexWriteError: the folder cannot be written, or another build holds it.
    """
    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        with _build_lock(index_dir):
            restore_interrupted_swap(index_dir)
            # Folders of builds that were killed half-way; none is live, we hold the lock.
            for leftover in index_dir.parent.glob(f".{index_dir.name}.building-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            staging = index_dir.with_name(f".{index_dir.name}.building-{os.getpid()}")
            try:
                _write_files(staging, index)
                retired = index_dir.with_name(f".{index_dir.name}.old-{os.getpid()}")
                if index_dir.exists():
                    os.replace(index_dir, retired)
                os.replace(staging, index_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            for old in index_dir.parent.glob(f".{index_dir.name}.old-*"):
                shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        raise IndexWriteError(
            f"cannot write the index to {index_dir}: {error.strerror or error}; "
            f"set QA_INDEX_DIR to a writable folder (the previous index, if any, is unchanged)"
        ) from error


def _write_files(staging: Path, index: SearchIndex) -> None:
    staging.mkdir()
    with open(staging / CHUNKS, "w", encoding="utf-8") as out:
        for chunk in index.chunks:
            out.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
    (staging / SENTENCES).write_text(json.dumps(index.sentences.to_json(), ensure_ascii=False), encoding="utf-8")
    with open(staging / ARTICLES, "w", encoding="utf-8") as out:
        for article in index.articles.values():
            out.write(json.dumps(asdict(article), ensure_ascii=False) + "\n")
    index.vectors.save(staging / CHUNK_VECTORS)
    index.sentence_vectors.save(staging / SENTENCE_VECTORS)
    index.lexical.save(staging / LEXICAL_DIR)
    # The manifest goes last: a folder without one was never finished.
    (staging / MANIFEST).write_text(json.dumps(index.manifest, ensure_ascii=False, indent=2), encoding="utf-8")


@contextmanager
def _build_lock(index_dir: Path):
    """One build of a folder at a time (`qa build` while `qa serve` rebuilds, say)."""
    import fcntl

    with open(index_dir.with_name(f".{index_dir.name}.lock"), "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexWriteError(
                f"another build of {index_dir} is running; wait for it to finish, then try again"
            ) from None
        yield


def restore_interrupted_swap(index_dir: Path) -> None:
    """Put the previous index back if a build was killed between its two renames."""
    if index_dir.exists():
        return
    retired = sorted(index_dir.parent.glob(f".{index_dir.name}.old-*"))
    if retired and (retired[-1] / MANIFEST).exists():
        os.replace(retired[-1], index_dir)


# Loaded indexes, keyed by folder; reloaded when the manifest changes (a rebuild).
_CACHE: dict[Path, tuple[float, SearchIndex]] = {}


def _forget_cached(index_dir: Path) -> None:
    _CACHE.pop(index_dir.resolve(), None)


def load_index(settings: Settings | None = None, *, check_corpus: bool = True) -> SearchIndex:
    """Load the index named by `settings`, checking it matches the corpus and settings.

    Raises:
        IndexNotFoundError: nothing has been built yet.
        IndexCorruptError: files are missing or unreadable.
        StaleIndexError: the corpus or the index-shaping settings changed since the build.
    """
    settings = settings or Settings.load()
    index_dir = Path(settings.index_dir)
    manifest_path = index_dir / MANIFEST
    if not manifest_path.exists():
        restore_interrupted_swap(index_dir)
    if not manifest_path.exists():
        if index_dir.exists() and any(index_dir.iterdir()):
            raise IndexCorruptError(
                f"index folder {index_dir} has no {MANIFEST} (an unfinished build?); run `qa build`"
            )
        raise IndexNotFoundError(f"no index in {index_dir}; run `qa build` to build it from {settings.corpus_dir}")
    key = index_dir.resolve()
    stamp = manifest_path.stat().st_mtime_ns
    cached = _CACHE.get(key)
    if cached and cached[0] == stamp:
        index = cached[1]
    else:
        index = _read(index_dir)
        _CACHE[key] = (stamp, index)
    check_settings(index.manifest, settings)
    if check_corpus:
        check_fresh(index, settings)
    return index


def _read(index_dir: Path) -> SearchIndex:
    def corrupt(why: str, error: Exception | None = None) -> IndexCorruptError:
        return IndexCorruptError(f"index in {index_dir} is damaged ({why}); run `qa build` to rebuild it")

    try:
        manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise StaleIndexError(
                f"index in {index_dir} was built by another version of this program (format "
                f"{manifest.get('format_version')}, this one reads {FORMAT_VERSION}); run `qa build` to rebuild it"
            )
        with open(index_dir / CHUNKS, encoding="utf-8") as lines:
            chunks = [Chunk(**json.loads(line)) for line in lines if line.strip()]
        sentences = SentenceTable.from_json(json.loads((index_dir / SENTENCES).read_text(encoding="utf-8")))
        with open(index_dir / ARTICLES, encoding="utf-8") as lines:
            articles = [Article(**json.loads(line)) for line in lines if line.strip()]
    except IndexCorruptError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise corrupt(f"{type(error).__name__}: {error}") from error
    vectors = FaissStore.load(index_dir / CHUNK_VECTORS)
    sentence_vectors = FaissStore.load(index_dir / SENTENCE_VECTORS)
    lexical = LexicalIndex.load(index_dir / LEXICAL_DIR)
    if not (len(chunks) == len(vectors) == len(lexical) == manifest.get("chunks")):
        raise corrupt(f"{len(chunks)} passages, {len(vectors)} vectors, {len(lexical)} lexical entries")
    if not (len(sentences) == len(sentence_vectors) == manifest.get("sentences")):
        raise corrupt(f"{len(sentences)} sentences but {len(sentence_vectors)} sentence vectors")
    if len(sentences) and (sentences.chunk.min() < 0 or sentences.chunk.max() >= len(chunks)):
        raise corrupt("sentences point at passages that do not exist")
    if len(sentences.form) != len(sentences) or np.any(np.diff(sentences.chunk) < 0):
        raise corrupt("the sentence table is out of order")
    by_source = {article.source: article for article in articles}
    if any(chunk.source not in by_source for chunk in chunks):
        raise corrupt("passages belong to articles the index does not hold")
    return SearchIndex(chunks, vectors, sentences, sentence_vectors, lexical, manifest, index_dir, by_source)


def check_settings(manifest: dict, settings: Settings) -> None:
    """Raise StaleIndexError when the index was built with other index-shaping settings."""
    built = manifest.get("settings", {})
    wanted = settings.index_shape()
    changed = [f"{name} {built.get(name)!r} -> {value!r}" for name, value in wanted.items() if built.get(name) != value]
    if changed:
        raise StaleIndexError(
            f"index in {settings.index_dir} was built with other settings ({'; '.join(changed)}); "
            f"run `qa build` to rebuild it"
        )


_HASHES: dict[tuple[str, int, int], str] = {}


def corpus_changes(manifest: dict, settings: Settings) -> list[str]:
    """Articles added, removed or changed since the index was built ("+a.txt", "-b.txt", "~c.txt")."""
    import hashlib

    built = {entry["source"]: entry["sha256"] for entry in manifest.get("articles", [])}
    corpus_dir = Path(settings.corpus_dir)
    try:
        files = article_files(corpus_dir)
    except CorpusError:
        files = []  # a missing or empty corpus folder: every article reads as removed
    now = {}
    for path in files:
        source = path.relative_to(corpus_dir).as_posix()
        try:
            stat = path.stat()
            # This runs on every question; a file whose size and time are unchanged
            # keeps the hash it had, so only edited files are read again.
            key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
            if key not in _HASHES:
                _HASHES[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            now[source] = _HASHES[key]
        except OSError:
            now[source] = "unreadable"
    changes = [f"+{s}" for s in sorted(now.keys() - built.keys())]
    changes += [f"-{s}" for s in sorted(built.keys() - now.keys())]
    changes += [f"~{s}" for s in sorted(now.keys() & built.keys()) if now[s] != built[s]]
    return changes


# A question checks the corpus at most this often; within it, the last verdict stands.
# Walking and stat-ing every file of a 10,000-article folder on every question was
# most of a question's time; once a second is cheap and still catches an edit before
# anyone can type the next question.
FRESHNESS_INTERVAL_S = 1.0


def corpus_stamp(corpus_dir: Path) -> int:
    """A number that changes when any article file of the folder is added, removed,
    resized or touched: one stat per file, no reading."""
    entries = []
    folders = [str(corpus_dir)]
    while folders:
        try:
            with os.scandir(folders.pop()) as scan:
                for entry in scan:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    elif entry.is_file():
                        stat = entry.stat()
                        entries.append((entry.path, stat.st_size, stat.st_mtime_ns))
        except OSError:
            continue  # a folder that vanished mid-walk: the files it held read as removed
    return hash(tuple(sorted(entries)))


def fresh_changes(index: SearchIndex, settings: Settings) -> list[str]:
    """`corpus_changes` for a loaded index, looked at no more than once per
    FRESHNESS_INTERVAL_S, and re-computed only when the folder's stamp moved."""
    corpus_dir = str(Path(settings.corpus_dir).resolve())
    now = time.monotonic()
    last = index.freshness if index.freshness and index.freshness[0] == corpus_dir else None
    if last and now - last[1] < FRESHNESS_INTERVAL_S:
        return last[3]
    stamp = corpus_stamp(Path(settings.corpus_dir))
    changes = last[3] if last and last[2] == stamp else corpus_changes(index.manifest, settings)
    index.freshness = (corpus_dir, now, stamp, changes)
    return changes


def check_fresh(index: SearchIndex, settings: Settings) -> None:
    """Raise StaleIndexError when articles were added, removed or changed since the build."""
    changes = fresh_changes(index, settings)
    if changes:
        shown = ", ".join(changes[:3]) + (" ..." if len(changes) > 3 else "")
        raise StaleIndexError(
            f"index is out of date with {settings.corpus_dir} ({shown}); run `qa build` to update it"
        )


def index_status(settings: Settings | None = None) -> dict:
    """A summary of the index for `qa status`: built or not, fresh or stale, sizes."""
    settings = settings or Settings.load()
    status = {"index_dir": str(settings.index_dir), "corpus_dir": str(settings.corpus_dir)}
    try:
        index = load_index(settings, check_corpus=False)
    except (IndexNotFoundError, IndexCorruptError, StaleIndexError) as error:
        status.update(state="missing" if isinstance(error, IndexNotFoundError) else "unusable", problem=str(error))
        return status
    manifest = index.manifest
    changes = corpus_changes(manifest, settings)
    status.update(
        state="stale" if changes else "ready",
        changes=changes,
        built_at=manifest.get("built_at"),
        model=manifest.get("model"),
        dimension=manifest.get("dimension"),
        articles=len(manifest.get("articles", [])),
        passages=manifest.get("chunks"),
        settings=manifest.get("settings"),
    )
    return status
