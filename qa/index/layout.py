"""What an index folder holds: its file names and format version, and the loaded
`SearchIndex` (passages, sentences, their stores, BM25) that retrieval reads.

A build (`qa.index.build`) writes these files into a temporary folder and swaps it
in whole (`qa.index.write`); the reader (`qa.index.read`) checks every file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.schema import Article, Chunk, Filter
from qa.stores.base import LexicalSearch, VectorStore
from qa.stores.bm25 import LexicalIndex
from qa.stores.factory import LocalStores, MilvusStores

# 4: per-article BM25 tokens (tokens.jsonl) and skipped files in the manifest, for
# incremental builds. 5: every file's sha256 in the manifest ("files"), checked at load.
FORMAT_VERSION = 5
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
TOKENS = "tokens.jsonl"  # BM25 tokens per passage: read by builds only, never by questions


@dataclass
class SentenceTable:
    """Every sentence of every passage: its passage's row, its offsets in the article, and
    its matching form (`qa.text.normalize.match_form`, made at build time: an OpenCC pass per
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
    def from_json(cls, data: dict) -> SentenceTable:
        arrays = (np.asarray(data[key], dtype=np.int32) for key in ("chunk", "start", "end"))
        return cls(*arrays, form=list(data["form"]))


@dataclass
class SearchIndex:
    """A loaded index: the passages, their sentences, and the ways of searching them."""

    chunks: list[Chunk]
    vectors: VectorStore  # one vector per passage
    sentences: SentenceTable
    sentence_vectors: VectorStore  # one vector per sentence
    lexical: LexicalIndex | None  # None only for a build's read of the previous index
    manifest: dict
    articles: dict[str, Article]  # by source: what a result's context is cut from
    directory: Path | None = None  # None for an index not yet written
    # Each passage's BM25 tokens; loaded for a build (to reuse unchanged articles'), not
    # for questions.
    tokens: list[list[str]] | None = None
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
            self._article_codes = np.fromiter(
                (position[c.source] for c in self.chunks), dtype=np.int32, count=len(self.chunks)
            )
        allowed = [code for code, article in enumerate(self.articles.values()) if where.allows(article)]
        return np.isin(self._article_codes, allowed)

    def sentence_text(self, sentence: int) -> str:
        chunk = self.chunks[int(self.sentences.chunk[sentence])]
        return chunk.text[
            int(self.sentences.start[sentence]) - chunk.start : int(self.sentences.end[sentence]) - chunk.start
        ]
