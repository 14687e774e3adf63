"""Build the index from the corpus folder, one article at a time.

An article is the unit of work: its passages, sentences, vectors and BM25 tokens are
kept per article, keyed by the sha256 of its file. A build reads every file, reuses
what the previous index holds for files whose hash is unchanged, and cleans, chunks,
tokenises and embeds only the added and changed ones; removed articles drop out.
Changing the model or the chunking settings (or this program's index format) makes
every stored unit wrong, so that, or `full=True`, rebuilds everything.

A file that cannot be indexed (empty, binary, too large, undecodable, the same text
as another article) is skipped with its reason, listed in the summary and in the
manifest (`qa status`), and never stops the build.

The build holds the index folder's lock from start to end and writes a new folder
that is swapped in whole (`qa.index.write.write_atomically`): questions keep being answered
from the old index until the swap, and a build killed at any point leaves it as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qa.embed.base import BULK_FROM_TEXTS, passage_encoder
from qa.errors import CorpusError, IndexCorruptError, QAError
from qa.index.embedding import embedding_texts, encode_in_batches, sentence_rows
from qa.index.freshness import read_with_digest
from qa.index.layout import FORMAT_VERSION, MANIFEST, SearchIndex, SentenceTable, StoredChunks
from qa.index.read import forget_cached, read_index, settings_changes
from qa.index.write import build_lock, check_index_folder, write_atomically
from qa.ingest.chunking import chunk_article
from qa.ingest.corpus import article_files, load_article, source_name
from qa.ingest.ocr import IMAGE_SUFFIXES, NEEDS_OCR
from qa.ingest.readers import TEXT_SUFFIXES
from qa.schema import Article, Chunk, Skipped
from qa.settings import Settings
from qa.stores.base import SENTENCES_KIND, kind_for
from qa.stores.bm25 import LexicalIndex
from qa.stores.factory import OpenStores, backend, kind_of
from qa.stores.term_counts import TermCounts
from qa.text.normalize import match_form
from qa.text.tokens import tokenize
from qa.tuning import DEFAULT_TUNING

# Below this many texts a build's pace is mostly model warm-up and is not recorded.
PACE_MIN_TEXTS = 64


@dataclass(frozen=True)
class BuildSummary:
    """What `build_index` did, for people and logs."""

    index_dir: str
    articles: int
    chunks: int
    model: str
    dimension: int
    seconds: float
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0  # texts (passages and sentences) embedded; one that occurs twice goes to the model once
    full: bool = True  # every article was (re)built
    skipped: tuple[Skipped, ...] = ()
    written: bool = True  # False: nothing changed, the index was left as it was
    # How the vector stores were written: "built" whole, "appended" (new vectors added
    # to the previous HNSW graphs) or "compacted" (graphs built again, dead rows dropped).
    vectors: str = ""
    # Seconds per stage (read_clean, chunk, tokenise, embed, index, write; reuse for an
    # incremental build; within index, vectors and lexical, at once for local stores):
    # where a build's time goes, for qa/bench/run.py and qa/bench/update.py.
    stages: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        counts = f"{self.added} added, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged"
        if self.written:
            head = (
                f"indexed {self.articles} articles as {self.chunks} passages ({counts}; "
                f"{'full build' if self.full else 'incremental'}), embedded {self.embedded} texts "
                f"with {self.model} in {self.seconds:.1f}s -> {self.index_dir}"
            )
        else:
            head = f"index is up to date: {self.articles} articles, {self.chunks} passages in {self.index_dir}"
        lines = [head]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s), not indexed:")
            lines += [f"  {item.source}: {item.reason}" for item in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["skipped"] = [{"source": s.source, "reason": s.reason} for s in self.skipped]
        return data


@dataclass
class Units:
    """Everything the index stores for one article, in article order."""

    article: Article
    chunks: list[Chunk]
    sentences: list[tuple[int, int, int, str]]  # (chunk within the article, start, end, match form)
    # BM25 tokens, one list per chunk; None for a reused article, whose BM25 term counts
    # are the previous index's rows `stored_rows[0]`.
    tokens: list[list[str]] | None
    chunk_vectors: np.ndarray | None = None
    sentence_vectors: np.ndarray | None = None
    # A reused article's (passage rows, sentence rows) in the previous index, which a
    # store that keeps its rows (`StoreBackend.keeps_rows`) reads its vectors by.
    stored_rows: tuple[np.ndarray, np.ndarray] | None = None


class Stopwatch:
    """Seconds spent per named stage, added up over every `timing(name)` block."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timing(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass
class Plan:
    """The corpus as found, against the previous index."""

    articles: list[tuple[Article, bool]] = field(default_factory=list)  # (article, reused)
    skipped: list[tuple[Skipped, str]] = field(default_factory=list)  # (why, file hash)
    added: int = 0
    changed: int = 0
    removed: int = 0

    @property
    def unchanged(self) -> int:
        return sum(reused for _, reused in self.articles)


def build_index(
    settings: Settings | None = None,
    *,
    encoder=None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    full: bool = False,
) -> BuildSummary:
    """Bring the index up to date with the corpus folder, embedding only what changed.

    Args:
        settings: where the corpus and index are and how to chunk and embed; defaults
            to `Settings.load()`.
        encoder: an `Encoder` to use instead of loading `settings.embed_model` (tests).
        progress: show a progress bar while embedding.
        log: called with one-line status messages.
        full: rebuild every article, reusing nothing.

    Returns:
        A BuildSummary: added / changed / removed / unchanged articles, texts embedded,
        files skipped and why.

    Raises:
        CorpusError: the corpus folder is missing or holds no article file; the old index is kept.
        IndexWriteError: another build of the same folder is running, or the folder is not writable.
        ModelError: the embedding model cannot be loaded.

    Example:
        >>> from qa import build_index
        >>> print(build_index())  # doctest: +SKIP
        indexed 4 articles as 70 passages (0 added, 1 changed, ...
    """
    settings = settings or Settings.load()
    say = log or (lambda message: None)
    started = time.perf_counter()
    stopwatch = Stopwatch()
    index_dir = Path(settings.index_dir)
    check_index_folder(index_dir)
    files = article_files(settings.corpus_dir)
    with build_lock(index_dir):
        with stopwatch.timing("reuse"):
            previous, why_full = _previous_index(index_dir, settings, full)
        if why_full:
            say(why_full)
        with stopwatch.timing("read_clean"), _page_counter(progress) as on_page:
            plan = _plan(files, Path(settings.corpus_dir), previous, on_page)
        skipped = tuple(item for item, _ in plan.skipped)
        if (
            previous is not None
            and previous.manifest["format_version"] == FORMAT_VERSION
            and not (plan.added or plan.changed or plan.removed)
            and _same_skipped(previous, plan)
            and _same_vector_index(previous, settings)
        ):
            return _summary(settings, previous, plan, started, model=previous.manifest["model"], written=False)
        if not plan.articles:
            reasons = "; ".join(item.reason for item in skipped[:3])
            raise CorpusError(
                f"no article in {settings.corpus_dir} could be indexed ({reasons}); fix or remove those files"
            )

        fresh = [article for article, reused in plan.articles if not reused]
        if previous is not None and not _same_vector_index(previous, settings):
            say(
                f"vector index {previous.manifest.get('vector_index')} -> QA_VECTOR_INDEX={settings.vector_index}: "
                "re-indexing the stored vectors"
            )
        say(
            f"{len(plan.articles)} articles: {plan.added} added, {plan.changed} changed, {plan.removed} removed, "
            f"{plan.unchanged} unchanged" + (f"; {len(skipped)} file(s) skipped" if skipped else "")
        )
        units = {article.source: _units(article, settings, stopwatch) for article in fresh}
        with stopwatch.timing("embed"):
            embedded, model_name, pace = _embed(units.values(), settings, encoder, progress, say)
        if pace is None and previous is not None:
            pace = previous.manifest.get("embedding_pace")  # a few texts say little: keep the last
        if previous is not None:
            reused = {article.source for article, kept in plan.articles if kept}
            with stopwatch.timing("reuse"):
                units.update(_stored_units(previous, reused))
                for article, kept in plan.articles:
                    if kept:
                        units[article.source].article = article  # as the plan read it (an upgrade adds a subtitle)
            model_name = model_name or previous.manifest["model"]
        ordered = [units[article.source] for article, _ in plan.articles]
        with stopwatch.timing("index"):  # of which "vectors" and "lexical", which overlap
            index, after_swap, vectors = _assemble(ordered, settings, model_name, plan, previous, pace, stopwatch)
        with stopwatch.timing("write"):
            write_atomically(index_dir, index)
        if after_swap is not None:
            after_swap(say)
    forget_cached(index_dir)
    return _summary(
        settings,
        index,
        plan,
        started,
        model=model_name,
        embedded=embedded,
        full=previous is None,
        stages=stopwatch.seconds,
        vectors=vectors,
    )


# -- a dry run -----------------------------------------------------------------------

# Texts embedded to measure the pace when no build has recorded one: about two seconds
# with the default model on one core, a few percent error on the rate.
CALIBRATION_TEXTS = 96


@dataclass(frozen=True)
class BuildEstimate:
    """What `build_index` would do now, from `estimate_build` (nothing written)."""

    articles: int
    added: int
    changed: int
    removed: int
    unchanged: int
    skipped: int
    passages: int  # passages to embed (of added and changed articles)
    sentences: int  # sentences to embed
    full: bool
    texts_per_s: float | None = None  # None: nothing to embed, so nothing measured
    pace_from: str = ""  # where texts_per_s comes from
    seconds: float | None = None  # embedding time at that pace

    @property
    def texts(self) -> int:
        return self.passages + self.sentences

    def __str__(self) -> str:
        if not (self.added or self.changed or self.removed):
            return f"dry run: the index is up to date ({self.articles} articles); nothing to embed, nothing written"
        kind = "full build" if self.full else "incremental"
        head = (
            f"dry run ({kind}): {self.articles} articles ({self.added} added, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged"
            + (f"; {self.skipped} file(s) skipped" if self.skipped else "")
            + f"): would embed {self.texts:,} texts ({self.passages:,} passages, {self.sentences:,} sentences)"
        )
        if self.seconds is None:
            return head + "; nothing written"
        return (
            f"{head}, about {_duration(self.seconds)} at {self.texts_per_s:.1f} texts/s "
            f"({self.pace_from}); nothing written"
        )


def estimate_build(settings: Settings | None = None, *, encoder=None, full: bool = False) -> BuildEstimate:
    """How many texts `build_index(settings, full=full)` would embed and about how long
    that takes, without writing anything or taking the build lock.

    The pace is the one the last build of this index recorded (manifest
    "embedding_pace", same model, a build as large), else measured here on
    `CALIBRATION_TEXTS` of the texts to embed with the encoder the build would use
    (loading the model, or using `encoder`); the model's load is not counted. Files are read and hashed
    as a build reads them (scans that need OCR are read by OCR); only added and changed
    articles are chunked.

    Raises:
        CorpusError: the corpus folder is missing or holds no article file.
    """
    settings = settings or Settings.load()
    index_dir = Path(settings.index_dir)
    files = article_files(settings.corpus_dir)
    previous, _ = _previous_index(index_dir, settings, full)
    plan = _plan(files, Path(settings.corpus_dir), previous)
    texts: list[str] = []
    passages = sentences = 0
    for article, reused in plan.articles:
        if reused:
            continue
        chunks = chunk_article(article, settings.chunk_size, settings.chunk_overlap)
        rows = sentence_rows(chunks)
        passages += len(chunks)
        sentences += len(rows)
        texts += embedding_texts(chunks, rows, settings.embed_context)
    counts = dict(
        articles=len(plan.articles),
        added=plan.added,
        changed=plan.changed,
        removed=plan.removed,
        unchanged=plan.unchanged,
        skipped=len(plan.skipped),
        passages=passages,
        sentences=sentences,
        full=previous is None,
    )
    if not texts:
        return BuildEstimate(**counts)
    rate, source = _recorded_pace(index_dir, settings, len(texts))
    if rate is None:
        rate, source = _calibrate(texts, settings, encoder)
    return BuildEstimate(**counts, texts_per_s=rate, pace_from=source, seconds=len(texts) / rate)


def _recorded_pace(index_dir: Path, settings: Settings, texts: int) -> tuple[float | None, str]:
    """The texts/s the last build recorded, if it embedded with the model these settings
    name and as many texts as `texts` on the same side of `BULK_FROM_TEXTS` (a large
    build may embed with another encoder: bf16 passages, 1.5x the pace)."""
    try:
        manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, ""
    pace = manifest.get("embedding_pace") if isinstance(manifest, dict) else None
    if not isinstance(pace, dict) or settings_changes(manifest, settings) or not pace.get("texts_per_s"):
        return None, ""
    if (int(pace.get("texts") or 0) >= BULK_FROM_TEXTS) != (texts >= BULK_FROM_TEXTS):
        return None, ""
    when = str(pace.get("measured_at", ""))[:10]
    return float(pace["texts_per_s"]), f"the pace of the last build, {pace.get('texts')} texts on {when}"


def _calibrate(texts: list[str], settings: Settings, encoder) -> tuple[float, str]:
    """Texts/s measured on a sample of `texts`, through the build's own batching."""
    if encoder is None:
        from qa.embed.factory import load_encoder

        encoder = load_encoder(settings)
    encoder = passage_encoder(encoder, len(set(texts)))  # what the build itself would embed with
    step = max(1, len(texts) // CALIBRATION_TEXTS)
    sample = texts[::step][:CALIBRATION_TEXTS]  # spread over the corpus: lengths vary by article
    encoder.encode_passages(sample[:1])  # the first call pays one-off set-up
    started = time.perf_counter()
    encode_in_batches(encoder, sample, progress=False)
    seconds = max(time.perf_counter() - started, 1e-9)
    return len(sample) / seconds, f"measured now on {len(sample)} of the texts"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


@contextmanager
def _page_counter(progress: bool):
    """A callback for each scanned page read by OCR, counting them on a progress bar
    that appears with the first one: OCR takes seconds a page, before any embedding."""
    bar = None

    def on_page(_name: str) -> None:
        nonlocal bar
        if not progress:
            return
        if bar is None:
            from tqdm.auto import tqdm

            bar = tqdm(desc="reading scanned pages (OCR)", unit="page")
        bar.update(1)

    try:
        yield on_page
    finally:
        if bar is not None:
            bar.close()


# -- what to reuse -------------------------------------------------------------------


def _same_vector_index(previous: SearchIndex, settings: Settings) -> bool:
    """Whether the FAISS files are of the kinds the settings ask for (QA_VECTOR_INDEX);
    if not, the build reassembles them from the stored vectors, embedding nothing."""
    if settings.store != "local":
        return True
    kinds = previous.manifest.get("vector_index", {})
    return (
        kinds.get("passages") == kind_for(previous.manifest["chunks"], settings.vector_index)
        and kinds.get("sentences") == SENTENCES_KIND
    )


def _previous_index(index_dir: Path, settings: Settings, full: bool) -> tuple[SearchIndex | None, str]:
    """The index to reuse units from, or None and why everything is rebuilt."""
    if full:
        return None, "full build requested: rebuilding every article"
    if not (index_dir / MANIFEST).exists():
        return None, ""  # a first build needs no explanation
    try:
        previous = read_index(index_dir, with_tokens=True, settings=settings)
    except QAError as error:  # damaged, or written by another version
        return None, f"the previous index cannot be reused ({error}); rebuilding every article".replace(
            "; run `qa build` to rebuild it", ""
        )
    changed = settings_changes(previous.manifest, settings)
    if changed:
        return None, f"index settings changed ({'; '.join(changed)}): rebuilding every article"
    return previous, ""


def _plan(files: list[Path], corpus_dir: Path, previous: SearchIndex | None, on_page=None) -> Plan:
    """Which files are new, changed, unchanged or unusable; unchanged ones are not parsed."""
    plan = Plan()
    known = previous.articles if previous is not None else {}
    # Format 5 kept no subtitle: an unchanged text file is read again for it (front
    # matter is the only place one comes from), its passages and vectors still reused.
    upgrading = previous is not None and previous.manifest["format_version"] < 6
    # A scan OCR could not read is not read again while its bytes are the same: OCR
    # takes seconds a page. Unless the engine was missing, which installing it mends.
    failed_scans = {
        (item["source"], item["sha256"]): item["reason"]
        for item in (previous.manifest.get("skipped", []) if previous is not None else [])
        if Path(item["source"]).suffix.lower() in (*IMAGE_SUFFIXES, ".pdf") and NEEDS_OCR not in item["reason"]
    }
    found: list[tuple[str, Path, str, Article, bool]] = []
    for path in files:
        source = source_name(path, corpus_dir)
        data, digest = read_with_digest(path)
        old = known.get(source)
        if old is not None and old.content_hash == digest:
            if upgrading and path.suffix.lower() in TEXT_SUFFIXES:
                old = replace(old, subtitle=load_article(path, corpus_dir, data=data).subtitle)
            found.append((source, path, digest, old, True))
            continue
        if (source, digest) in failed_scans:
            plan.skipped.append((Skipped(source, failed_scans[source, digest]), digest))
            continue
        try:
            # The bytes just hashed, when there are any; otherwise load_article reads the
            # file itself and says why it cannot (too large, unreadable).
            found.append((source, path, digest, load_article(path, corpus_dir, data=data, on_page=on_page), False))
        except CorpusError as error:
            plan.skipped.append((Skipped(source, str(error)), digest))
    # Two files with the same text: the one already indexed keeps it, else the first.
    # Keyed by the text itself: a str caches its own hash, so no digest is computed.
    owner: dict[str, str] = {}
    for source, _, _, article, _reused in sorted(found, key=lambda item: not item[4]):
        owner.setdefault(article.text, source)
    for source, path, digest, article, reused in found:
        first = owner[article.text]
        if first != source:
            reason = f"{path}: has the same text as {first}; remove one of them"
            plan.skipped.append((Skipped(source, reason), digest))
            continue
        plan.articles.append((article, reused))
        if not reused:
            plan.added += source not in known
            plan.changed += source in known
    plan.skipped.sort(key=lambda item: item[0].source)
    # Removed: indexed before, not indexed now (deleted, or now skipped).
    indexed = {article.source for article, _ in plan.articles}
    plan.removed = sum(1 for source in known if source not in indexed)
    return plan


def _same_skipped(previous: SearchIndex, plan: Plan) -> bool:
    before = {(item["source"], item["sha256"]) for item in previous.manifest.get("skipped", [])}
    return before == {(item.source, digest) for item, digest in plan.skipped}


# -- units of one article ------------------------------------------------------------


def _units(article: Article, settings: Settings, stopwatch: Stopwatch) -> Units:
    """Chunk, split into sentences and tokenise one article (no embedding yet)."""
    with stopwatch.timing("chunk"):
        chunks = chunk_article(article, settings.chunk_size, settings.chunk_overlap)
        sentences = [
            (
                position,
                start,
                end,
                match_form(chunks[position].text[start - chunks[position].start : end - chunks[position].start]),
            )
            for position, start, end in sentence_rows(chunks)
        ]
    with stopwatch.timing("tokenise"):
        tokens = [tokenize(chunk.text) for chunk in chunks]
    return Units(article, chunks, sentences, tokens)


def _stored_units(previous: SearchIndex, sources: set[str]) -> dict[str, Units]:
    """The units of `sources` as the previous index holds them, vectors included."""
    rows: dict[str, list[int]] = {}
    stored = previous.chunks if isinstance(previous.chunks, StoredChunks) else StoredChunks.join([previous.chunks])
    for row, source in enumerate(stored.sources()):  # no passage parsed
        if source in sources:
            rows.setdefault(source, []).append(row)
    # A store that keeps its rows across builds (Milvus: an incremental build writes
    # only added and changed articles) is not asked for their vectors.
    kept = backend(kind_of(previous.manifest)).keeps_rows
    if not kept:  # pragma: no cover - every backend keeps its rows now; kept for one that does not
        chunk_vectors = previous.vectors.vectors(np.arange(len(previous.chunks)))
        sentence_vectors = previous.sentence_vectors.vectors(np.arange(len(previous.sentences)))
    table = previous.sentences
    # Python ints once for the whole table: reading numpy scalars one by one cost more.
    positions, starts, ends = table.chunk.tolist(), table.start.tolist(), table.end.tolist()
    units = {}
    for source, chunk_rows in rows.items():
        sentence_rows = np.arange(table.of_chunk(chunk_rows[0]).start, table.of_chunk(chunk_rows[-1]).stop)
        first = chunk_rows[0]
        units[source] = Units(
            article=previous.articles[source],
            chunks=stored.take(chunk_rows),
            sentences=[(positions[s] - first, starts[s], ends[s], table.form[s]) for s in sentence_rows.tolist()],
            # An index before format 7 kept tokens, not counts: they are counted once here.
            tokens=None if previous.term_counts is not None else [previous.tokens[row] for row in chunk_rows],
            chunk_vectors=None if kept else chunk_vectors[chunk_rows],
            sentence_vectors=None if kept else sentence_vectors[sentence_rows],
            stored_rows=(np.asarray(chunk_rows, dtype=np.int64), sentence_rows.astype(np.int64)),
        )
    return units


def _embed(units, settings: Settings, encoder, progress: bool, say) -> tuple[int, str, dict | None]:
    """Embed every passage and sentence of `units` in place; (texts embedded, model
    name, the measured pace for the manifest or None when too few texts to tell)."""
    units = list(units)
    texts: list[str] = []
    for unit in units:
        texts += embedding_texts(unit.chunks, unit.sentences, settings.embed_context)
    if not texts:
        return 0, "", None  # only removals: no model needed
    if encoder is None:
        from qa.embed.factory import load_encoder

        say(f"loading embedding model {settings.embed_model}")
        encoder = load_encoder(settings)
    started = time.perf_counter()
    vectors = encode_in_batches(encoder, texts, progress, articles=len(units))
    seconds = time.perf_counter() - started
    pace = None
    if len(texts) >= PACE_MIN_TEXTS and seconds > 0:
        pace = {
            "model": encoder.name,
            "texts": len(texts),
            "articles": len(units),
            "seconds": round(seconds, 3),
            "texts_per_s": round(len(texts) / seconds, 2),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    offset = 0
    for unit in units:
        unit.chunk_vectors = vectors[offset : offset + len(unit.chunks)]
        offset += len(unit.chunks)
        unit.sentence_vectors = vectors[offset : offset + len(unit.sentences)]
        offset += len(unit.sentences)
    return len(texts), encoder.name, pace


# -- the whole index -----------------------------------------------------------------


def _assemble(
    units: list[Units],
    settings: Settings,
    model: str,
    plan: Plan,
    previous: SearchIndex | None,
    pace: dict | None = None,
    stopwatch: Stopwatch | None = None,
):
    """The new index, what the store asks to run once the folder is in place (Milvus
    deletes the rows this build retired) or None, and how the vectors were written."""
    stopwatch = stopwatch or Stopwatch()
    rows, starts, ends, forms = [], [], [], []
    first = 0
    for unit in units:
        for position, start, end, form in unit.sentences:
            rows.append(first + position)
            starts.append(start)
            ends.append(end)
            forms.append(form)
        first += len(unit.chunks)
    chunks = StoredChunks.join([unit.chunks for unit in units])
    if not chunks:
        raise IndexCorruptError("nothing to index: the corpus produced no passages")
    as_array = lambda values: np.asarray(values, dtype=np.int32)  # noqa: E731
    sentences = SentenceTable(as_array(rows), as_array(starts), as_array(ends), forms)
    fresh = [unit for unit in units if unit.chunk_vectors is not None]
    dimension = int(fresh[0].chunk_vectors.shape[1]) if fresh else int(previous.manifest["dimension"])
    same_store = previous is not None and kind_of(previous.manifest) == settings.store

    def write_vectors():
        with stopwatch.timing("vectors"):
            return backend(settings.store).write(
                units,
                settings,
                dimension,
                previous=OpenStores(previous.vectors, previous.sentence_vectors) if same_store else None,
                live_block=lambda: live_store_block(Path(settings.index_dir)),
            )

    # The FAISS files are read, grown and written while BM25 is made: faiss and numpy
    # hold no GIL in their loops, so on 2 cores the two overlap (their stages then add
    # up to more than the build took). Milvus writes stay in this thread.
    if settings.store == "local":
        with ThreadPoolExecutor(max_workers=1) as pool:
            vectors_done = pool.submit(write_vectors)
            term_counts, lexical = _lexical(units, previous, stopwatch)
            written = vectors_done.result()
    else:
        written = write_vectors()
        term_counts, lexical = _lexical(units, previous, stopwatch)
    store, sentence_store = written.passages, written.sentences
    articles = [unit.article for unit in units]
    manifest = {
        "format_version": FORMAT_VERSION,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": model,
        "dimension": dimension,
        "settings": settings.index_shape(),
        # The tuning constants as they were at build time, so a figure measured on this
        # index can be traced to them (retrieval runs with the current qa/tuning.py).
        "tuning": DEFAULT_TUNING.to_dict(),
        # Exact below qa.stores.faiss_store.EXACT_BELOW rows, HNSW above, unless QA_VECTOR_INDEX says.
        "vector_index": {"passages": store.kind, "sentences": sentence_store.kind},
        # Rows of removed and changed articles left in the HNSW graphs by appending
        # builds, never returned; a build compacts past qa.stores.base.DEAD_ROWS_MAX.
        "dead_rows": {
            "passages": int(getattr(store, "dead_rows", 0)),
            "sentences": int(getattr(sentence_store, "dead_rows", 0)),
        },
        "chunks": len(chunks),
        "sentences": len(sentences),
        "articles": [
            {"source": a.source, "title": a.title, "date": a.date, "sha256": a.content_hash} for a in articles
        ],
        # Files left out and why; a file whose hash is unchanged stays skipped without
        # making the index look stale.
        "skipped": [{"source": s.source, "sha256": digest, "reason": s.reason} for s, digest in plan.skipped],
    }
    if pace is not None:
        # How fast this machine embedded (texts/s): `qa build --dry-run` estimates from it.
        manifest["embedding_pace"] = pace
    if written.manifest_block is not None:
        # Where the vectors live: URI (no credentials), collections, generation.
        manifest["store"] = written.manifest_block
    by_source = {article.source: article for article in articles}
    index = SearchIndex(
        chunks=chunks,
        vectors=store,
        sentences=sentences,
        sentence_vectors=sentence_store,
        lexical=lexical,
        manifest=manifest,
        articles=by_source,
        term_counts=term_counts,
    )
    return index, written.after_swap, written.update


def _lexical(units: list[Units], previous: SearchIndex | None, stopwatch: Stopwatch):
    """(term counts, BM25 index) of the new index."""
    with stopwatch.timing("lexical"):
        term_counts = passage_term_counts(units, previous.term_counts if previous is not None else None)
        return term_counts, LexicalIndex.from_counts(term_counts)


def passage_term_counts(units: list[Units], previous: TermCounts | None) -> TermCounts:
    """The BM25 term counts of every passage, each with its article's headline (title
    and subtitle) in front: reused articles' rows of `previous`, the others counted.

    A news question often names its event by words that only the headline holds (the
    place, the kind of event), so each passage is found by them too. An article's
    headline changes only with its file, and a changed file is counted again.
    """
    before, fresh = [], []
    for unit in units:
        if unit.tokens is None:
            before.append(unit.stored_rows[0])
            continue
        headline = tokenize(unit.article.headline)
        fresh += [headline + own for own in unit.tokens]
        before.append(np.full(len(unit.tokens), -1, dtype=np.int64))
    before = np.concatenate(before) if before else np.zeros(0, dtype=np.int64)
    counted = TermCounts.from_tokens(fresh)
    if previous is None:
        assert not (before >= 0).any(), "reused rows without the previous counts"
        return counted
    # The previous documents, then the new ones; each row of the index picks one.
    pool = TermCounts.concatenate([previous, counted])
    rows = before.copy()
    rows[before < 0] = len(previous) + np.arange(len(fresh))
    return pool.take(rows).without_unused_terms()


def live_store_block(index_dir: Path) -> dict | None:
    """The "store" block of the index now in `index_dir`, read even when that index
    cannot be reused, so a full build can drop the collections it replaces."""
    try:
        return json.loads((index_dir / MANIFEST).read_text(encoding="utf-8")).get("store")
    except (OSError, ValueError, AttributeError):
        return None


def _summary(
    settings,
    index: SearchIndex,
    plan: Plan,
    started: float,
    *,
    model: str,
    embedded=0,
    full=False,
    written=True,
    stages=None,
    vectors="",
):
    return BuildSummary(
        index_dir=str(settings.index_dir),
        articles=len(index.articles),
        chunks=len(index.chunks),
        model=model,
        dimension=int(index.manifest["dimension"]),
        seconds=time.perf_counter() - started,
        added=plan.added,
        changed=plan.changed,
        removed=plan.removed,
        unchanged=plan.unchanged,
        embedded=embedded,
        full=full,
        skipped=tuple(item for item, _ in plan.skipped),
        written=written,
        stages={name: round(seconds, 4) for name, seconds in (stages or {}).items()},
        vectors=vectors,
    )


__all__ = ["BuildEstimate", "BuildSummary", "build_index", "estimate_build"]
