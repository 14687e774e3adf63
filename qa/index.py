"""Build, save and load the search index: chunk texts and metadata, vectors, BM25, manifest.

A build (`qa.build`) writes into a temporary folder beside the index and swaps it
in at the end, so an interrupted build leaves the previous index as it was, and
questions are answered from the previous index until the swap.

While the corpus and the index disagree (articles added, changed or removed since
the build), questions are still answered from the index as built, with a note
naming what changed (`stale_note`): a stale index is the last good one, not an
error.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.corpus import MAX_FILE_BYTES, article_files
from qa.errors import (
    CorpusError,
    IndexCorruptError,
    IndexNotFoundError,
    IndexWriteError,
    SettingsError,
    StaleIndexError,
    StoreUnavailableError,
)
from qa.lexical import LexicalIndex, LexicalSearch
from qa.schema import Article, Chunk, Filter
from qa.settings import Settings
from qa.vector_store import FaissStore, VectorStore

if TYPE_CHECKING:
    from qa.build import BuildSummary

# 4: per-article BM25 tokens (tokens.jsonl) and skipped files in the manifest, for
# incremental builds.
FORMAT_VERSION = 4
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
CHUNK_VECTORS = "vectors.faiss"
SENTENCES = "sentences.json"
SENTENCE_VECTORS = "sentence_vectors.faiss"
# With QA_STORE=milvus the vectors live in Milvus; these files map rows to its keys.
MILVUS_FILES = ("vectors.milvus.npz", "sentence_vectors.milvus.npz")
ARTICLES = "articles.jsonl"
LEXICAL_DIR = "lexical"
UNREADABLE = "unreadable"  # the digest recorded for a file that could not be read
TOKENS = "tokens.jsonl"  # BM25 tokens per passage: read by builds only, never by questions


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
    # Each passage's BM25 tokens; loaded for a build (to reuse unchanged articles'), not
    # for questions.
    tokens: list[list[str]] | None = None
    # BM25's best passages from the store itself (Milvus); None: ranked here with bm25s.
    lexical_search: LexicalSearch | None = None
    _article_codes: np.ndarray | None = None  # per passage, its article's position in `articles`

    def passage_mask(self, where: Filter) -> np.ndarray:
        """Which passages belong to the articles `where` allows (bool, one per passage)."""
        if self._article_codes is None:
            position = {source: code for code, source in enumerate(self.articles)}
            self._article_codes = np.fromiter((position[c.source] for c in self.chunks), dtype=np.int32, count=len(self.chunks))
        allowed = [code for code, article in enumerate(self.articles.values()) if where.allows(article)]
        return np.isin(self._article_codes, allowed)

    def sentence_text(self, sentence: int) -> str:
        chunk = self.chunks[int(self.sentences.chunk[sentence])]
        return chunk.text[int(self.sentences.start[sentence]) - chunk.start : int(self.sentences.end[sentence]) - chunk.start]


def build_index(settings: Settings | None = None, **options) -> "BuildSummary":
    """Bring the index up to date with the corpus; see `qa.build.build_index` (kept
    importable from here, where callers have always found it)."""
    from qa.build import build_index as build

    return build(settings, **options)


def write_atomically(index_dir: Path, index: SearchIndex) -> None:
    """Write `index` beside `index_dir` and swap it in; the old index survives any failure.
    The caller holds `build_lock(index_dir)`.

    Raises:
        IndexWriteError: the folder cannot be written.
    """
    try:
        restore_interrupted_swap(index_dir, locked=True)
        # Folders of builds that were killed half-way; none is live, we hold the lock.
        for leftover in index_dir.parent.glob(f".{index_dir.name}.building-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        staging = index_dir.with_name(f".{index_dir.name}.building-{os.getpid()}")
        try:
            _write_files(staging, index)
            retired = index_dir.with_name(f".{index_dir.name}.old-{os.getpid()}")
            # Between these two renames there is no index folder; a reader that looks
            # then waits for the lock's holder (see `load_index`) rather than failing.
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
    with open(staging / TOKENS, "w", encoding="utf-8") as out:
        for tokens in index.tokens or []:
            out.write(json.dumps(tokens, ensure_ascii=False) + "\n")
    passage_file, sentence_file = _store_files(index.manifest)
    index.vectors.save(staging / passage_file)
    index.sentence_vectors.save(staging / sentence_file)
    index.lexical.save(staging / LEXICAL_DIR)
    # The manifest goes last: a folder without one was never finished.
    (staging / MANIFEST).write_text(json.dumps(index.manifest, ensure_ascii=False, indent=2), encoding="utf-8")


def store_kind(manifest: dict) -> str:
    """"local" (FAISS files) or "milvus": where the index's vectors live."""
    return manifest.get("store", {}).get("kind", "local")


def milvus_module():
    """qa.milvus_store, or SettingsError naming what to install (pymilvus is optional)."""
    try:
        import qa.milvus_store
    except ImportError as error:
        raise SettingsError(f"QA_STORE=milvus needs Milvus's client: {error}") from error
    return qa.milvus_store


def _store_files(manifest: dict) -> tuple[str, str]:
    return MILVUS_FILES if store_kind(manifest) == "milvus" else (CHUNK_VECTORS, SENTENCE_VECTORS)


def _lock_path(index_dir: Path) -> Path:
    return index_dir.with_name(f".{index_dir.name}.lock")


@contextmanager
def build_lock(index_dir: Path):
    """One build of a folder at a time (`qa build` while the web chat rebuilds, say),
    held from the first file read to the swap.

    Raises:
        IndexWriteError: another build holds it, or the folder cannot be created.
    """
    import fcntl

    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        handle = open(_lock_path(index_dir), "w")
    except OSError as error:
        raise IndexWriteError(
            f"cannot write the index to {index_dir}: {error.strerror or error}; set QA_INDEX_DIR to a writable folder"
        ) from error
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexWriteError(
                f"another build of {index_dir} is running; wait for it to finish, then try again"
            ) from None
        yield


def build_running(index_dir: Path) -> bool:
    """Whether some process (this one included) holds `build_lock(index_dir)` now."""
    import fcntl

    try:
        with open(_lock_path(index_dir), "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False  # closing the file releases the shared lock just taken
    except OSError:
        return False


def restore_interrupted_swap(index_dir: Path, *, locked: bool = False) -> None:
    """Put the previous index back if a build was killed between its two renames.

    Only when no build is running (`locked`: the caller holds the lock): a live build
    is between its renames for a moment, and must not find its old index put back.
    """
    if index_dir.exists() or (not locked and build_running(index_dir)):
        return
    retired = sorted(index_dir.parent.glob(f".{index_dir.name}.old-*"))
    if retired and (retired[-1] / MANIFEST).exists():
        os.replace(retired[-1], index_dir)


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
    `with_tokens` (for a build): the stored BM25 tokens in `tokens`, and no BM25 index
    (`lexical` is None), since the build makes a new one from the tokens.

    Raises:
        IndexCorruptError: a file is missing, damaged or disagrees with the others.
        StaleIndexError: written by another version of this program.
        StoreUnavailableError: its Milvus cannot be reached.
    """

    def corrupt(why: str) -> IndexCorruptError:
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
        tokens = None
        if with_tokens:
            with open(index_dir / TOKENS, encoding="utf-8") as lines:
                tokens = [json.loads(line) for line in lines if line.strip()]
    except StaleIndexError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise corrupt(f"{type(error).__name__}: {error}") from error
    lexical_search = None
    if store_kind(manifest) == "milvus":
        milvus_store = milvus_module()
        settings = settings or Settings.load()
        # The settings' URI carries credentials the saved one lacks; settings for another
        # store are refused by `check_settings` after this read, from the saved URI.
        uri = settings.milvus_target()[0] if settings.store == "milvus" else None
        token = settings.milvus_token
        vectors, sentence_vectors = (milvus_store.MilvusStore.load(index_dir / name, uri, token) for name in MILVUS_FILES)
        lexical_search = milvus_store.MilvusLexical(vectors)
    else:
        vectors = FaissStore.load(index_dir / CHUNK_VECTORS)
        sentence_vectors = FaissStore.load(index_dir / SENTENCE_VECTORS)
    # A build (with_tokens) rebuilds BM25 from the stored tokens, so it neither loads nor
    # checksums the previous BM25 files (hundreds of MB at a million passages).
    lexical = None if with_tokens else LexicalIndex.load(index_dir / LEXICAL_DIR)
    entries = len(tokens) if lexical is None else len(lexical)
    if not (len(chunks) == len(vectors) == entries == manifest.get("chunks")):
        raise corrupt(f"{len(chunks)} passages, {len(vectors)} vectors, {entries} lexical entries")
    if not (len(sentences) == len(sentence_vectors) == manifest.get("sentences")):
        raise corrupt(f"{len(sentences)} sentences but {len(sentence_vectors)} sentence vectors")
    if len(sentences) and (sentences.chunk.min() < 0 or sentences.chunk.max() >= len(chunks)):
        raise corrupt("sentences point at passages that do not exist")
    if len(sentences.form) != len(sentences) or np.any(np.diff(sentences.chunk) < 0):
        raise corrupt("the sentence table is out of order")
    by_source = {article.source: article for article in articles}
    if any(chunk.source not in by_source for chunk in chunks):
        raise corrupt("passages belong to articles the index does not hold")
    index = SearchIndex(chunks, vectors, sentences, sentence_vectors, lexical, manifest, index_dir, by_source)
    index.tokens = tokens
    index.lexical_search = lexical_search
    return index


def settings_changes(manifest: dict, settings: Settings) -> list[str]:
    """The index-shaping settings that differ from the build's ("chunk_size 200 -> 300")."""
    built = manifest.get("settings", {})
    shape = settings.index_shape()
    # Both ways: a Milvus index ("store" recorded) read with the local store differs too.
    names = list(shape) + [name for name in built if name not in shape]
    return [f"{name} {built.get(name)!r} -> {shape.get(name)!r}" for name in names if built.get(name) != shape.get(name)]


def check_settings(manifest: dict, settings: Settings) -> None:
    """Raise StaleIndexError when the index was built with other index-shaping settings."""
    changed = settings_changes(manifest, settings)
    if changed:
        raise StaleIndexError(
            f"index in {settings.index_dir} was built with other settings ({'; '.join(changed)}); "
            f"run `qa build` to rebuild it"
        )


_HASHES: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, the key an article is stored under; "unreadable" or
    "too-large:<bytes>" for a file a build cannot take (such files are not read).

    Cached by (path, size, mtime): this runs for every file on a freshness check, and
    only edited files are read again.
    """
    return read_with_digest(path)[1]


def read_with_digest(path: Path) -> tuple[bytes | None, str]:
    """`file_digest(path)` and, when the file had to be read for it, its bytes (None
    when the digest came from the cache or the file cannot be taken): a build that
    parses a new or changed file then reads it once, not once to hash and once to parse."""
    import hashlib

    try:
        stat = path.stat()
        if stat.st_size > MAX_FILE_BYTES:
            return None, f"too-large:{stat.st_size}"
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key in _HASHES:
            return None, _HASHES[key]
        data = path.read_bytes()
    except OSError:
        return None, UNREADABLE
    _HASHES[key] = hashlib.sha256(data).hexdigest()
    return data, _HASHES[key]


def corpus_changes(manifest: dict, settings: Settings) -> list[str]:
    """Articles added, removed or changed since the index was built ("+a.txt", "-b.txt",
    "~c.txt"). A file the build skipped counts as unchanged while its bytes are."""
    built = {entry["source"]: entry["sha256"] for entry in manifest.get("articles", [])}
    skipped = {entry["source"]: entry["sha256"] for entry in manifest.get("skipped", [])}
    corpus_dir = Path(settings.corpus_dir)
    try:
        files = article_files(corpus_dir)
    except CorpusError:
        files = []  # a missing or empty corpus folder: every article reads as removed
    now = {path.relative_to(corpus_dir).as_posix(): file_digest(path) for path in files}
    now = {source: digest for source, digest in now.items() if skipped.get(source) != digest}
    changes = [f"+{s}" for s in sorted(now.keys() - built.keys())]
    changes += [f"-{s}" for s in sorted(built.keys() - now.keys() - skipped.keys())]
    changes += [f"~{s}" for s in sorted(now.keys() & built.keys()) if now[s] != built[s]]
    return changes


def stale_note(changes: list[str], settings: Settings) -> str:
    """One line for a reader: the answers come from an index older than the corpus."""
    if not changes:
        return ""
    shown = ", ".join(changes[:3]) + (f" and {len(changes) - 3} more" if len(changes) > 3 else "")
    return (
        f"the index is older than {settings.corpus_dir} ({shown}); answers come from the last build "
        f"until `qa build` runs"
    )


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


def index_status(settings: Settings | None = None) -> dict:
    """A summary of the index for `qa status`: built or not, fresh or stale, sizes."""
    settings = settings or Settings.load()
    status = {"index_dir": str(settings.index_dir), "corpus_dir": str(settings.corpus_dir)}
    try:
        index = load_index(settings)
    except (IndexNotFoundError, IndexCorruptError, StaleIndexError, StoreUnavailableError) as error:
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
        skipped=[{"source": item["source"], "reason": item["reason"]} for item in manifest.get("skipped", [])],
        building=build_running(Path(settings.index_dir)),
        store=manifest.get("store", {"kind": "local"}),
        note=stale_note(changes, settings),
    )
    return status
