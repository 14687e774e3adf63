"""Is the index as new as the corpus? File digests, the articles added, changed or
removed since the build, a once-a-second check for questions, and `qa status`.

While the corpus and the index disagree, questions are still answered from the index
as built, with a note naming what changed (`stale_note`): a stale index is the last
good one, not an error.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from qa.errors import CorpusError, IndexCorruptError, IndexNotFoundError, StaleIndexError, StoreUnavailableError
from qa.index.layout import UNREADABLE, SearchIndex
from qa.index.read import load_index
from qa.index.write import build_running
from qa.ingest.corpus import MAX_FILE_BYTES, article_files, source_name
from qa.settings import Settings

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
    now = {source_name(path, corpus_dir): file_digest(path) for path in files}
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
