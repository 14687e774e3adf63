"""Load an index folder for questions: read and check every file once, keep it while
its manifest is unchanged, wait out a build's swap, and refuse an index built with
other settings. The reader never imports the builder (`qa.index.build`).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError, IndexNotFoundError, StaleIndexError
from qa.index.layout import (
    ARTICLES,
    CHUNKS,
    FORMAT_VERSION,
    LEXICAL_DIR,
    MANIFEST,
    REUSABLE_FORMATS,
    SENTENCES,
    TERM_COUNTS,
    TOKENS,
    SearchIndex,
    SentenceTable,
    StoredChunks,
)
from qa.index.write import build_running, checksums, restore_interrupted_swap
from qa.schema import Article
from qa.settings import Settings
from qa.stores.bm25 import LexicalIndex
from qa.stores.factory import STORE_KINDS, backend, kind_of
from qa.stores.term_counts import TermCounts

# Loaded indexes, keyed by folder, with the manifest's (inode, mtime) when read: a
# rebuild writes a new manifest, so the next question reads the new index.
_CACHE: dict[Path, tuple[tuple[int, int], SearchIndex]] = {}
# How long a reader waits for a build that is between its two renames.
SWAP_WAIT_S = 5.0


def forget_cached(index_dir: Path) -> None:
    _CACHE.pop(Path(index_dir).resolve(), None)


def _manifest_stamp(index_dir: Path) -> tuple[int, int] | None:
    try:
        stat = (index_dir / MANIFEST).stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns)


def load_index(settings: Settings | None = None) -> SearchIndex:
    """The index named by `settings`, read once and re-read after a rebuild swaps in.

    It is returned even when the corpus changed since the build (the last good index;
    `fresh_changes` and `stale_note` say what changed), and while a build runs.

    Raises:
        IndexNotFoundError: nothing has been built yet.
        IndexCorruptError: files are missing or unreadable.
        StaleIndexError: the index was built with other index-shaping settings or by
            another version of this program; it cannot answer until rebuilt.
    """
    settings = settings or Settings.load()
    index_dir = Path(settings.index_dir)
    key = index_dir.resolve()
    deadline = time.monotonic() + SWAP_WAIT_S
    while True:
        cached = _CACHE.get(key)
        stamp = _manifest_stamp(index_dir)
        if cached and stamp == cached[0]:
            index = cached[1]
            break
        if stamp is None:
            if build_running(index_dir) and time.monotonic() < deadline:
                if cached:  # mid-swap: keep answering from what we have
                    index = cached[1]
                    break
                time.sleep(0.02)
                continue
            if index_dir.exists() and not index_dir.is_dir():
                raise IndexNotFoundError(
                    f"{index_dir} is a file, not an index folder; set QA_INDEX_DIR (index_dir) to a folder"
                )
            restore_interrupted_swap(index_dir)
            if _manifest_stamp(index_dir) is not None:
                continue
            if index_dir.exists() and any(index_dir.iterdir()):
                raise IndexCorruptError(
                    f"index folder {index_dir} has no {MANIFEST} (an unfinished build?); run `qa build`"
                )
            raise IndexNotFoundError(f"no index in {index_dir}; run `qa build` to build it from {settings.corpus_dir}")
        try:
            index = read_index(index_dir, settings=settings)
        except IndexCorruptError:
            # A swap while we read gives a mix of two folders: read again.
            if _manifest_stamp(index_dir) != stamp and time.monotonic() < deadline:
                continue
            raise
        if _manifest_stamp(index_dir) != stamp and time.monotonic() < deadline:
            continue  # swapped while we read; the files may be from both builds
        _CACHE[key] = (stamp, index)
        break
    check_settings(index.manifest, settings)
    return index


def read_index(index_dir: Path, *, with_tokens: bool = False, settings: Settings | None = None) -> SearchIndex:
    """Read and check every file of the index in `index_dir` (no caching, no waiting);
    `settings` give the Milvus URI and token of an index whose vectors live there.
    `with_tokens` (for a build): the stored BM25 term counts in `term_counts` (tokens
    in `tokens` before format 7), and no BM25 index (`lexical` is None), since the build
    makes a new one from them.

    Raises:
        IndexCorruptError: a file is missing, damaged or disagrees with the others.
        StaleIndexError: written by another version of this program.
        StoreUnavailableError: its Milvus cannot be reached.
    """

    def corrupt(why: str) -> IndexCorruptError:
        return IndexCorruptError(f"index in {index_dir} is damaged ({why}); run `qa build` to rebuild it")

    try:
        manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise corrupt(f"{MANIFEST} is not a JSON object")
        # A build reuses an older index's units (`REUSABLE_FORMATS`); questions need this format.
        if manifest.get("format_version") not in (REUSABLE_FORMATS if with_tokens else (FORMAT_VERSION,)):
            raise StaleIndexError(
                f"index in {index_dir} was built by another version of this program (format "
                f"{manifest.get('format_version')}, this one reads {FORMAT_VERSION}); run `qa build` to rebuild it"
            )
        # The checksums (about 1 GB at 100,000 passages; hashing holds no GIL) are made
        # while the tables are parsed; nothing is used before both are done.
        with ThreadPoolExecutor(max_workers=1) as pool:
            checked = pool.submit(check_files, index_dir, manifest)
            try:
                chunks, sources, sentences, articles, tokens, term_counts = _read_tables(index_dir, with_tokens)
            except Exception:
                checked.result()  # a damaged or missing file is named as such, not by how it failed to parse
                raise
            checked.result()
    except (StaleIndexError, IndexCorruptError):
        raise
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise corrupt(f"{type(error).__name__}: {error}") from error
    kind = kind_of(manifest)
    if kind not in STORE_KINDS:
        raise StaleIndexError(
            f"index in {index_dir} keeps its vectors in a store this version does not know ({kind!r}); "
            "run `qa build` to rebuild it"
        )
    stores = backend(kind).open(index_dir, settings or Settings.load())
    vectors, sentence_vectors = stores.passages, stores.sentences
    # A build (with_tokens) rebuilds BM25 from the stored tokens, so it neither loads nor
    # checksums the previous BM25 files (hundreds of MB at a million passages).
    lexical = None if with_tokens else LexicalIndex.load(index_dir / LEXICAL_DIR)
    entries = len(lexical) if lexical is not None else len(tokens) if tokens is not None else len(term_counts)
    if not (len(chunks) == len(vectors) == entries == manifest.get("chunks")):
        raise corrupt(f"{len(chunks)} passages, {len(vectors)} vectors, {entries} lexical entries")
    if not (len(sentences) == len(sentence_vectors) == manifest.get("sentences")):
        raise corrupt(f"{len(sentences)} sentences but {len(sentence_vectors)} sentence vectors")
    if len(sentences) and (sentences.chunk.min() < 0 or sentences.chunk.max() >= len(chunks)):
        raise corrupt("sentences point at passages that do not exist")
    if len(sentences.form) != len(sentences) or np.any(np.diff(sentences.chunk) < 0):
        raise corrupt("the sentence table is out of order")
    by_source = {article.source: article for article in articles}
    if not sources <= by_source.keys():
        raise corrupt("passages belong to articles the index does not hold")
    return SearchIndex(
        chunks=chunks,
        vectors=vectors,
        sentences=sentences,
        sentence_vectors=sentence_vectors,
        lexical=lexical,
        manifest=manifest,
        articles=by_source,
        directory=index_dir,
        tokens=tokens,
        term_counts=term_counts,
        lexical_search=stores.lexical_search,
    )


def _read_tables(index_dir: Path, with_tokens: bool):
    """(chunks, their sources, sentences, articles, tokens, term counts) of an index folder."""
    with open(index_dir / CHUNKS, encoding="utf-8") as lines:
        chunks = StoredChunks([line for line in lines if line.strip()])
        sources = set(chunks.sources())
    sentences = SentenceTable.from_json(json.loads((index_dir / SENTENCES).read_text(encoding="utf-8")))
    with open(index_dir / ARTICLES, encoding="utf-8") as lines:
        articles = [Article(**json.loads(line)) for line in lines if line.strip()]
    tokens = term_counts = None
    if with_tokens and (index_dir / TERM_COUNTS).exists():
        term_counts = TermCounts.load(index_dir / TERM_COUNTS)
    elif with_tokens:
        with open(index_dir / TOKENS, encoding="utf-8") as lines:
            tokens = [json.loads(line) for line in lines if line.strip()]
    return chunks, sources, sentences, articles, tokens, term_counts


def check_files(index_dir: Path, manifest: dict) -> None:
    """Raise IndexCorruptError unless every file the build wrote is there with the
    checksum it had (manifest "files"), and no other file is: damage caught at load,
    not answered from. About 0.3 s per 500 MB of index (sha256 at 1.5 GB/s)."""

    def corrupt(why: str) -> IndexCorruptError:
        return IndexCorruptError(f"index in {index_dir} is corrupt ({why}); rebuild it with `qa build`")

    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise corrupt(f"{MANIFEST} lists no file checksums")
    found = {
        path.relative_to(index_dir).as_posix()
        for path in index_dir.rglob("*")
        if path.is_file() and path.name != MANIFEST
    }
    if found != set(files):
        missing, extra = sorted(set(files) - found), sorted(found - set(files))
        raise corrupt(
            f"missing {', '.join(missing)}" if missing else f"files the build did not write: {', '.join(extra)}"
        )
    names = list(files)
    for name, found_checksum in zip(names, checksums(index_dir / name for name in names)):
        if found_checksum != files[name]:
            raise corrupt(f"{name} does not match the checksum written at build time")


def settings_changes(manifest: dict, settings: Settings) -> list[str]:
    """The index-shaping settings that differ from the build's ("chunk_size 200 -> 300")."""
    built = manifest.get("settings", {})
    shape = settings.index_shape()
    # Both ways: a Milvus index ("store" recorded) read with the local store differs too.
    names = list(shape) + [name for name in built if name not in shape]
    return [
        f"{name} {built.get(name)!r} -> {shape.get(name)!r}" for name in names if built.get(name) != shape.get(name)
    ]


def check_settings(manifest: dict, settings: Settings) -> None:
    """Raise StaleIndexError when the index was built with other index-shaping settings."""
    changed = settings_changes(manifest, settings)
    if changed:
        raise StaleIndexError(
            f"index in {settings.index_dir} was built with other settings ({'; '.join(changed)}); "
            f"run `qa build` to rebuild it"
        )
