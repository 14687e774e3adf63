"""Build, save and load the search index: chunk texts and metadata, vectors, BM25, manifest.

A build writes into a temporary folder beside the index and swaps it in at the
end, so an interrupted build leaves the previous index as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from qa.chunking import chunk_corpus
from qa.corpus import article_files, load_corpus
from qa.errors import IndexCorruptError, IndexNotFoundError, StaleIndexError
from qa.lexical import LexicalIndex
from qa.schema import Chunk
from qa.settings import Settings
from qa.vector_store import VectorStore

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
LEXICAL_DIR = "lexical"


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
class SearchIndex:
    """A loaded index: the passages and the two ways of searching them."""

    chunks: list[Chunk]
    vectors: VectorStore
    lexical: LexicalIndex
    manifest: dict
    directory: Path


def embedding_text(chunk: Chunk, with_title: bool) -> str:
    """What the encoder sees for a chunk: the title in front gives a passage its topic."""
    if not with_title:
        return chunk.text
    return f"{chunk.title}\n{chunk.text}"


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
        indexed 4 articles as 61 passages ...
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
    texts = [embedding_text(chunk, settings.embed_title) for chunk in chunks]
    vectors = _encode_in_batches(encoder, texts, progress)

    store = VectorStore(vectors.shape[1])
    store.add(vectors)
    lexical = LexicalIndex.build([chunk.text for chunk in chunks])
    manifest = {
        "format_version": FORMAT_VERSION,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": encoder.name,
        "dimension": int(vectors.shape[1]),
        "settings": settings.index_shape(),
        "chunks": len(chunks),
        "articles": [
            {"source": a.source, "title": a.title, "date": a.date, "sha256": a.content_hash}
            for a in articles
        ],
    }
    _write_atomically(Path(settings.index_dir), chunks, store, lexical, manifest)
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
    from tqdm.auto import tqdm

    batches = []
    with tqdm(total=len(texts), desc="embedding passages", unit="passage", disable=not progress) as bar:
        for begin in range(0, len(texts), batch_size):
            batch = texts[begin : begin + batch_size]
            batches.append(np.asarray(encoder.encode_passages(batch), dtype=np.float32))
            bar.update(len(batch))
    if not batches:
        raise IndexCorruptError("nothing to index: the corpus produced no passages")
    return np.vstack(batches)


def _write_atomically(index_dir: Path, chunks, store, lexical, manifest) -> None:
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = index_dir.with_name(f".{index_dir.name}.building-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    with open(staging / CHUNKS, "w", encoding="utf-8") as out:
        for chunk in chunks:
            out.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
    store.save(staging)
    lexical.save(staging / LEXICAL_DIR)
    # The manifest goes last: a folder without one was never finished.
    (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")

    retired = index_dir.with_name(f".{index_dir.name}.old-{os.getpid()}")
    if index_dir.exists():
        os.replace(index_dir, retired)
    os.replace(staging, index_dir)
    shutil.rmtree(retired, ignore_errors=True)
    # Folders left by builds that were killed half-way.
    for leftover in index_dir.parent.glob(f".{index_dir.name}.building-*"):
        shutil.rmtree(leftover, ignore_errors=True)


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
        check_fresh(index.manifest, settings)
    return index


def _read(index_dir: Path) -> SearchIndex:
    def corrupt(why: str, error: Exception | None = None) -> IndexCorruptError:
        return IndexCorruptError(f"index in {index_dir} is damaged ({why}); run `qa build` to rebuild it")

    try:
        manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise corrupt(f"format {manifest.get('format_version')}, expected {FORMAT_VERSION}")
        with open(index_dir / CHUNKS, encoding="utf-8") as lines:
            chunks = [Chunk(**json.loads(line)) for line in lines if line.strip()]
    except IndexCorruptError:
        raise
    except (OSError, ValueError, TypeError) as error:
        raise corrupt(f"{type(error).__name__}: {error}") from error
    vectors = VectorStore.load(index_dir)
    lexical = LexicalIndex.load(index_dir / LEXICAL_DIR)
    if not (len(chunks) == len(vectors) == len(lexical) == manifest.get("chunks")):
        raise corrupt(
            f"{len(chunks)} passages, {len(vectors)} vectors, {len(lexical)} lexical entries"
        )
    return SearchIndex(chunks=chunks, vectors=vectors, lexical=lexical, manifest=manifest, directory=index_dir)


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


def corpus_changes(manifest: dict, settings: Settings) -> list[str]:
    """Articles added, removed or changed since the index was built ("+a.txt", "-b.txt", "~c.txt")."""
    import hashlib

    built = {entry["source"]: entry["sha256"] for entry in manifest.get("articles", [])}
    corpus_dir = Path(settings.corpus_dir)
    try:
        files = article_files(corpus_dir)
    except Exception:
        files = []
    now = {}
    for path in files:
        try:
            now[path.relative_to(corpus_dir).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            now[path.relative_to(corpus_dir).as_posix()] = "unreadable"
    changes = [f"+{s}" for s in sorted(now.keys() - built.keys())]
    changes += [f"-{s}" for s in sorted(built.keys() - now.keys())]
    changes += [f"~{s}" for s in sorted(now.keys() & built.keys()) if now[s] != built[s]]
    return changes


def check_fresh(manifest: dict, settings: Settings) -> None:
    changes = corpus_changes(manifest, settings)
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
