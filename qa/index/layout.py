"""What an index folder holds: its file names and format version, and the loaded
`SearchIndex` (passages, sentences, their stores, BM25) that retrieval reads.

A build (`qa.index.build`) writes these files into a temporary folder and swaps it
in whole (`qa.index.write`); the reader (`qa.index.read`) checks every file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError
from qa.schema import Article, Chunk, Filter
from qa.stores.base import LexicalSearch, VectorStore
from qa.stores.bm25 import LexicalIndex
from qa.stores.factory import LocalStores, MilvusStores
from qa.stores.term_counts import TermCounts

# 4: per-article BM25 tokens (tokens.jsonl) and skipped files in the manifest, for
# incremental builds. 5: every file's sha256 in the manifest ("files"), checked at load.
# 6: BM25 with the article's headline (title and subtitle) in front of each passage.
# 7: HNSW stores that incremental builds appended to hold dead rows, and a row map
# beside each (vectors.rows.npy); a reader that knew no map would answer from them.
# BM25 documents' term counts (term_counts.npz) in place of their tokens (tokens.jsonl).
FORMAT_VERSION = 7
# Formats whose passages, sentences, vectors and tokens a build still reuses: only what
# every build makes again from them (BM25) changed since, or what is optional (row maps).
REUSABLE_FORMATS = (5, 6, FORMAT_VERSION)
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
SENTENCES = "sentences.json"
# The vector files are the store backend's (`qa.stores.factory`): FAISS indexes, or
# with QA_STORE=milvus the maps from rows to Milvus keys.
CHUNK_VECTORS, SENTENCE_VECTORS = LocalStores.files
MILVUS_FILES = MilvusStores.files
ARTICLES = "articles.jsonl"
LEXICAL_DIR = "lexical"
UNREADABLE = "unreadable"  # the digest recorded for a file that could not be read
TOKENS = "tokens.jsonl"  # BM25 tokens per passage, up to format 6: read by builds only
# Each passage's BM25 term counts (with its headline's), from format 7: read by builds only.
TERM_COUNTS = "term_counts.npz"


class StoredChunks(Sequence[Chunk]):
    """The passages of chunks.jsonl, each parsed on first use.

    A question reads a few dozen passages; parsing all 124,000 of 10,000 articles
    (`json.loads` and a `Chunk` each) took 1-2 s of every cold start. Their articles
    are checked at load all the same (`sources`). Thread-safe: two threads parsing one
    line at once store equal values.
    """

    def __init__(self, lines: list[str], parsed: list[Chunk | None] | None = None):
        self._lines = lines
        self._parsed: list[Chunk | None] = parsed if parsed is not None else [None] * len(lines)
        self._sources: list[str] | None = None

    @classmethod
    def join(cls, parts: Sequence[Sequence[Chunk]]) -> StoredChunks:
        """`parts` one after another, as stored lines: a part read from an index keeps its
        lines as they were (a build that adds one article to 100,000 passages neither
        parses nor serialises the others), a list of chunks is serialised."""
        lines: list[str] = []
        parsed: list[Chunk | None] = []
        for part in parts:
            if isinstance(part, StoredChunks):
                lines += part._lines
                parsed += part._parsed
            else:
                lines += [json.dumps(asdict(chunk), ensure_ascii=False) + "\n" for chunk in part]
                parsed += part
        return cls(lines, parsed)

    def take(self, rows: Sequence[int]) -> StoredChunks:
        """The passages `rows`, unparsed ones left unparsed."""
        return StoredChunks([self._lines[row] for row in rows], [self._parsed[row] for row in rows])

    @property
    def lines(self) -> list[str]:
        """The stored lines, each a JSON object ending in a newline."""
        return self._lines

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        chunk = self._parsed[row]
        if chunk is None:
            try:
                chunk = self._parsed[row] = Chunk(**json.loads(self._lines[row]))
            except (ValueError, TypeError) as error:
                raise IndexCorruptError(
                    f"passage {row} of the index is damaged ({error}); run `qa build --full` to rebuild it"
                ) from error
        return chunk

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def sources(self) -> list[str]:
        """Each passage's article, in row order, without parsing whole lines: the writer
        puts "source" first, so it is decoded alone; a line written otherwise is parsed
        whole. Made once: the load checks them, and a filter maps them to articles."""
        if self._sources is None:
            decode = _DECODER.raw_decode
            self._sources = [
                decode(line, len(_SOURCE_KEY))[0] if line.startswith(_SOURCE_KEY) else json.loads(line)["source"]
                for line in self._lines
            ]
        return self._sources


_DECODER = json.JSONDecoder()
_SOURCE_KEY = '{"source": '


@dataclass
class SentenceTable:
    """Every sentence of every passage: its passage's row, its offsets in the article, and
    its matching form (`qa.text.normalize.match_form`, made at build time: an OpenCC pass per
    sentence is too slow to repeat per question or per load)."""

    chunk: np.ndarray  # int32 row into SearchIndex.chunks, ascending
    start: np.ndarray  # int32
    end: np.ndarray  # int32
    form: list[str]
    # bounds[r]:bounds[r + 1] are passage r's sentence rows; made on first use, in one
    # vectorised pass. A binary search per passage cost 60 us a call at 400,000
    # sentences (numpy converts the whole int32 array to search it for a Python int),
    # 18 ms of a question's ~300 candidate passages (issue 19's profile).
    _bounds: np.ndarray | None = field(default=None, init=False, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.chunk)

    @property
    def bounds(self) -> np.ndarray:
        """int64, one more than the passages the table covers: sentences are stored in
        passage order, so passage r's are rows bounds[r] to bounds[r + 1]."""
        if self._bounds is None:
            passages = int(self.chunk[-1]) + 1 if len(self.chunk) else 0
            self._bounds = np.searchsorted(self.chunk, np.arange(passages + 1, dtype=self.chunk.dtype)).astype(np.int64)
        return self._bounds

    def spans(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first, stop) sentence rows of each passage in `rows`, as int64 arrays."""
        bounds = self.bounds
        rows = np.minimum(np.asarray(rows, dtype=np.int64), len(bounds) - 1)  # no sentences past the last
        stops = bounds[np.minimum(rows + 1, len(bounds) - 1)]
        return bounds[rows], stops

    def of_chunk(self, row: int) -> range:
        """The sentence rows of passage `row`."""
        first, stop = self.spans(np.array([row]))
        return range(int(first[0]), int(stop[0]))

    def to_json(self) -> dict:
        return {"chunk": self.chunk.tolist(), "start": self.start.tolist(), "end": self.end.tolist(), "form": self.form}

    @classmethod
    def from_json(cls, data: dict) -> SentenceTable:
        arrays = (np.asarray(data[key], dtype=np.int32) for key in ("chunk", "start", "end"))
        return cls(*arrays, form=list(data["form"]))


@dataclass
class SearchIndex:
    """A loaded index: the passages, their sentences, and the ways of searching them."""

    chunks: Sequence[Chunk]  # a list, or StoredChunks when read from disk
    vectors: VectorStore  # one vector per passage
    sentences: SentenceTable
    sentence_vectors: VectorStore  # one vector per sentence
    lexical: LexicalIndex | None  # None only for a build's read of the previous index
    manifest: dict
    articles: dict[str, Article]  # by source: what a result's context is cut from
    directory: Path | None = None  # None for an index not yet written
    # Each passage's BM25 tokens (formats 5 and 6) or term counts (format 7); loaded for
    # a build (to reuse unchanged articles'), not for questions. A build writes counts.
    tokens: list[list[str]] | None = None
    term_counts: TermCounts | None = None
    # BM25's best passages from the store itself (Milvus); None: ranked here with bm25s.
    lexical_search: LexicalSearch | None = None
    # The last freshness check: (corpus folder, when, folder stamp, changes). Kept on the
    # index it describes, so a rebuilt index never inherits an old verdict.
    freshness: tuple | None = field(default=None, compare=False)
    # Per passage, its article's position in `articles`; made on the first filter.
    _article_codes: np.ndarray | None = field(default=None, compare=False, repr=False)

    def passage_mask(self, where: Filter) -> np.ndarray:
        """Which passages belong to the articles `where` allows (bool, one per passage)."""
        if self._article_codes is None:
            position = {source: code for code, source in enumerate(self.articles)}
            # Stored passages give their articles without parsing every line.
            sources = (
                self.chunks.sources() if isinstance(self.chunks, StoredChunks) else [c.source for c in self.chunks]
            )
            self._article_codes = np.fromiter((position[s] for s in sources), dtype=np.int32, count=len(sources))
        allowed = [code for code, article in enumerate(self.articles.values()) if where.allows(article)]
        return np.isin(self._article_codes, allowed)

    def sentence_text(self, sentence: int) -> str:
        chunk = self.chunks[int(self.sentences.chunk[sentence])]
        return chunk.text[
            int(self.sentences.start[sentence]) - chunk.start : int(self.sentences.end[sentence]) - chunk.start
        ]
