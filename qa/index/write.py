"""Write an index folder safely: one build at a time (a file lock), files written
beside the live folder and swapped in with two renames, and a swap cut short by a
crash put back. Questions read the old folder until the swap.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from qa.errors import IndexWriteError
from qa.index.layout import (
    ARTICLES,
    CHUNKS,
    LEXICAL_DIR,
    MANIFEST,
    SENTENCES,
    TERM_COUNTS,
    TOKENS,
    SearchIndex,
    StoredChunks,
)
from qa.stores.factory import LocalStores, MilvusStores, backend, kind_of

# Everything an index folder may hold. A build replaces the folder whole, so one that
# holds anything else (the corpus, notes, a project folder named by mistake) is refused.
INDEX_ENTRIES = frozenset(
    {
        MANIFEST,
        CHUNKS,
        SENTENCES,
        ARTICLES,
        TOKENS,
        TERM_COUNTS,
        LEXICAL_DIR,
        *LocalStores.files,
        *LocalStores.row_maps,
        *MilvusStores.files,
    }
)


def check_index_folder(index_dir: Path) -> None:
    """Refuse to build into a folder that holds anything but an index: the swap that
    puts a new index in place deletes the old folder with all it holds.

    Raises:
        IndexWriteError: `index_dir` is a file, or a folder with other entries.
    """
    if not index_dir.exists() and not index_dir.is_symlink():
        return
    if not index_dir.is_dir():
        raise IndexWriteError(f"{index_dir} is a file, not an index folder; set QA_INDEX_DIR (index_dir) to a folder")
    try:
        others = sorted(entry for entry in os.listdir(index_dir) if entry not in INDEX_ENTRIES)
    except OSError as error:
        raise IndexWriteError(f"cannot read the index folder {index_dir}: {error.strerror or error}") from error
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise IndexWriteError(
            f"{index_dir} holds files that are not an index's ({shown}); a build replaces that folder whole, "
            "so set QA_INDEX_DIR (index_dir) to a new or empty folder"
        )


def write_atomically(index_dir: Path, index: SearchIndex) -> None:
    """Write `index` beside `index_dir` and swap it in; the old index survives any failure.
    The caller holds `build_lock(index_dir)`.

    Raises:
        IndexWriteError: the folder cannot be written.
    """
    check_index_folder(index_dir)
    if index_dir.is_symlink():
        # Swapped at the link's target: a link replaced by a new folder left the folder
        # it pointed at (perhaps on another disk) orphaned with the old index, and the
        # retired link behind forever (rmtree does not remove a link).
        index_dir = index_dir.resolve()
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
        cause = error.strerror or str(error)
        fix = (
            "free space on that disk, or set QA_INDEX_DIR to a folder on another"
            if error.errno == errno.ENOSPC or "No space left" in cause
            else "set QA_INDEX_DIR to a writable folder"
        )
        raise IndexWriteError(
            f"cannot write the index to {index_dir}: {cause}; {fix} (the previous index, if any, is unchanged)"
        ) from error


def _write_files(staging: Path, index: SearchIndex) -> None:
    staging.mkdir()
    with open(staging / CHUNKS, "w", encoding="utf-8") as out:
        if isinstance(index.chunks, StoredChunks):
            out.writelines(index.chunks.lines)  # reused passages as they were read
        else:
            for chunk in index.chunks:
                out.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
    (staging / SENTENCES).write_text(json.dumps(index.sentences.to_json(), ensure_ascii=False), encoding="utf-8")
    with open(staging / ARTICLES, "w", encoding="utf-8") as out:
        for article in index.articles.values():
            out.write(json.dumps(asdict(article), ensure_ascii=False) + "\n")
    if index.term_counts is not None:
        index.term_counts.save(staging / TERM_COUNTS)
    else:  # an index assembled without counts (none is, since format 7), written as format 6 was
        with open(staging / TOKENS, "w", encoding="utf-8") as out:
            for tokens in index.tokens or []:
                out.write(json.dumps(tokens, ensure_ascii=False) + "\n")
    passage_file, sentence_file = backend(kind_of(index.manifest)).files
    index.vectors.save(staging / passage_file)
    index.sentence_vectors.save(staging / sentence_file)
    index.lexical.save(staging / LEXICAL_DIR)
    # Every file's checksum, checked at load (qa.index.read): a flipped byte in a FAISS
    # file still loads, and answers from wrong vectors.
    paths = [path for path in sorted(staging.rglob("*")) if path.is_file() and path.name != MANIFEST]
    index.manifest["files"] = {
        path.relative_to(staging).as_posix(): checksum for path, checksum in zip(paths, checksums(paths))
    }
    # The manifest goes last: a folder without one was never finished.
    (staging / MANIFEST).write_text(json.dumps(index.manifest, ensure_ascii=False, indent=2), encoding="utf-8")


def checksums(paths) -> list[str]:
    """`file_checksum` of each of `paths`, two files at a time: hashing holds no GIL,
    and an index of 100,000 passages is about 1 GB to hash on every build and load."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(file_checksum, paths))


def file_checksum(path: Path) -> str:
    """sha256 of a file (the fastest hashlib offers where the CPU has SHA instructions:
    1.5 GB/s here, blake2b half that).

    The file is mapped and hashed in one call, which holds no GIL from start to end: a
    cold start checks the index while another thread loads the model (a loop of 1 MiB
    blocks needed the GIL between blocks, and onnxruntime holds it while it loads)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size:  # an empty file cannot be mapped
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                digest.update(mapped)
    return digest.hexdigest()


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
