"""The BM25 index (bm25s) over passages, and the vocabulary it offers question analysis.

This is the only module that imports `bm25s`; tokens come from `qa.text.tokens`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError, StaleIndexError
from qa.stores.term_counts import TermCounts
from qa.text.normalize import match_form
from qa.text.tokens import TOKENIZER_VERSION, query_terms, tokenize

__all__ = ["LexicalIndex", "top_n"]

_META_NAME = "lexical.json"
# The files bm25s writes (no corpus: passages are stored elsewhere; the default
# Lucene method writes no non-occurrence array).
_BM25_FILES = (
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
    "vocab.index.json",
    "params.index.json",
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LexicalIndex:
    """BM25 over pre-tokenised passages; documents are addressed by their position."""

    def __init__(self, bm25, num_docs: int):
        # bm25 is None when no passage has a single token (bm25s cannot index an
        # empty vocabulary); every query then scores zero.
        self._bm25 = bm25
        self._num_docs = num_docs

    def __len__(self) -> int:
        return self._num_docs

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        """Tokenise `texts` and index them; document i is `texts[i]`."""
        return cls.from_tokens([tokenize(t) for t in texts])

    @classmethod
    def from_tokens(cls, corpus_tokens: Sequence[Sequence[str]]) -> LexicalIndex:
        """Index passages already tokenised by `tokenize` (a build keeps each article's
        term counts, so an unchanged article is not segmented again); document i is row i."""
        return cls.from_counts(TermCounts.from_tokens(corpus_tokens))

    @classmethod
    def from_counts(cls, counts: TermCounts) -> LexicalIndex:
        """Index documents given by their term counts; document i is row i.

        The scores bm25s's `index` computes (Lucene variant, k1=1.5, b=0.75, the library
        defaults), in numpy over all (document, term) pairs at once: bm25s counts and
        scores each document in a Python loop, 8 s at 100,000 passages, the largest part
        of a build that adds one article.
        """
        import bm25s
        import scipy.sparse

        counts = counts.without_unused_terms()
        if not len(counts.terms):
            return cls(None, len(counts))
        bm25 = bm25s.BM25()
        k1, b = bm25.k1, bm25.b
        if bm25.method != "lucene" or bm25.idf_method != "lucene":  # pragma: no cover - a bm25s default changed
            raise RuntimeError(f"bm25s now defaults to {bm25.method}/{bm25.idf_method}; from_counts scores lucene")
        documents, vocabulary = len(counts), len(counts.vocab)
        lengths = counts.lengths
        average = lengths.mean()
        frequencies = np.bincount(counts.terms, minlength=vocabulary)
        # As bm25s: idf in float64, kept as float32; the term-frequency part in float64.
        idf = np.log(1 + (documents - frequencies + 0.5) / (frequencies + 0.5)).astype(np.float32)
        rows = np.repeat(np.arange(documents, dtype=np.int64), np.diff(counts.indptr))
        tf = counts.counts.astype(np.float32)
        tfc = tf / (k1 * ((1 - b) + b * lengths[rows] / average) + tf)
        data = (idf[counts.terms] * tfc).astype(np.float32)
        by_document = scipy.sparse.csr_matrix((data, counts.terms, counts.indptr), shape=(documents, vocabulary))
        matrix = by_document.tocsc()  # bm25s keeps one column of documents (ascending) per term
        bm25.scores = {
            "data": matrix.data,
            "indices": matrix.indices,
            "indptr": matrix.indptr.astype(np.int64),
            "num_docs": documents,
        }
        vocab = {term: i for i, term in enumerate(counts.vocab)}
        vocab.setdefault("", vocabulary)  # bm25s's empty token, with no column: see _check_consistent
        bm25.vocab_dict = vocab
        bm25.unique_token_ids_set = set(vocab.values())
        bm25.nonoccurrence_array = None
        return cls(bm25, documents)

    def _term_ids(self, terms: Sequence[str]) -> list[int]:
        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        # Distinct terms only: a word jieba repeats (say 知识 as word and as bigram)
        # should not count twice in the question.
        return [vocab[t] for t in dict.fromkeys(terms) if t in vocab]

    def known_share(self, terms: Sequence[str]) -> float:
        """Share of `terms` (weighted by length) that occur anywhere in the indexed texts.

        Near 1 for a Chinese question about these articles, near 0 for an English
        one: it says how much a lexical ranking can be trusted for this question.
        """
        vocab = getattr(self._bm25, "vocab_dict", None) or {}
        total = sum(len(term) for term in terms)
        if not total:
            return 0.0
        return sum(len(term) for term in terms if term in vocab) / total

    def contains(self, word: str) -> bool:
        """Whether `word` occurs in the indexed texts: as a token, or (for Chinese words
        jieba cut differently) as a run of indexed character bigrams."""
        vocab = getattr(self._bm25, "vocab_dict", None) or {}
        form = match_form(word)
        if form in vocab:
            return True
        if form.isascii() or len(form) < 2:
            return False
        return all(form[i : i + 2] in vocab for i in range(len(form) - 1))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for `query` (zeros where nothing matches)."""
        return self.term_scores(query_terms(query))

    def term_scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for already-tokenised `terms` (see `query_terms`).

        bm25s keeps the scores as a sparse term-by-document matrix, so this is a sum
        over the question's few term columns in numpy, not a loop over documents.
        """
        ids = self._term_ids(terms)
        if not ids:
            return np.zeros(self._num_docs, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The best `k` documents with a positive score, best first, as (index, score)."""
        ids, scores = top_n(self.scores(query), k)
        return [(int(i), float(s)) for i, s in zip(ids, scores)]

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write the index into `directory` (created if needed; meant for this index alone)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta_path = directory / _META_NAME
        # Removed first and written last: a save that dies half-way leaves no
        # metadata, so the half-written folder is reported instead of half-read.
        meta_path.unlink(missing_ok=True)
        files: dict[str, str] = {}
        if self._bm25 is not None:
            self._bm25.save(str(directory), show_progress=False)
            files = {name: _sha256(directory / name) for name in _BM25_FILES}
        meta = {
            "tokenizer_version": TOKENIZER_VERSION,
            "num_docs": self._num_docs,
            "sha256": files,  # so a damaged file is caught at load, not mid-question
        }
        meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Read an index written by `save`; raise IndexCorruptError if it is unusable."""
        import bm25s

        directory = Path(directory)

        def corrupt(why: str) -> IndexCorruptError:
            return IndexCorruptError(f"lexical index in {directory} is unusable ({why}); run `qa build` to rebuild it")

        try:
            meta = json.loads((directory / _META_NAME).read_text(encoding="utf-8"))
            num_docs = int(meta["num_docs"])
            version = int(meta["tokenizer_version"])
            checksums = dict(meta["sha256"])
        except FileNotFoundError:
            raise corrupt(f"{_META_NAME} is missing") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise corrupt(f"{_META_NAME} cannot be read: {exc}") from None
        if version != TOKENIZER_VERSION:
            raise StaleIndexError(
                f"lexical index in {directory} was built with tokenizer version {version}, "
                f"this program uses {TOKENIZER_VERSION}; run `qa build` to rebuild it"
            )
        if num_docs < 0:
            raise corrupt(f"{_META_NAME} gives a negative document count")
        if not checksums:
            return cls(None, num_docs)  # saved from a corpus without a single token
        for name in _BM25_FILES:
            path = directory / name
            if not path.is_file():
                raise corrupt(f"{name} is missing")
            try:
                ok = _sha256(path) == checksums.get(name)
            except OSError as exc:
                raise corrupt(f"{name} cannot be read: {exc}") from None
            if not ok:
                raise corrupt(f"{name} does not match the checksum written at build time")
        try:
            # Memory-mapped: the score matrix (about 8 bytes per distinct term of each
            # passage: hundreds of MB at a million passages) stays in the page cache,
            # shared by every process serving this index and not copied into each. A
            # question reads only its terms' columns. A rebuild swaps in a new folder,
            # so a mapped file is never rewritten under a reader.
            bm25 = bm25s.BM25.load(str(directory), mmap=True, show_progress=False, verbosity=0)
            _check_consistent(bm25, num_docs)
        except IndexCorruptError:
            raise
        except Exception as exc:  # numpy/json/bm25s raise many kinds on bad files
            raise corrupt(f"{type(exc).__name__}: {exc}") from None
        return cls(bm25, num_docs)

    def document_frequency(self, term: str) -> int:
        """How many documents use the already-tokenised `term` (0 for a term none uses).

        Read off the score matrix's column for the term (its stored scores, each
        document using it), not by scoring every document.
        """
        ids = self._term_ids([term])
        indptr = self._bm25.scores["indptr"] if ids else ()
        # bm25s's empty token "" is in the vocabulary without a column.
        if not ids or ids[0] + 1 >= len(indptr):
            return 0
        start, end = int(indptr[ids[0]]), int(indptr[ids[0] + 1])
        return int(np.count_nonzero(self._bm25.scores["data"][start:end]))


# Documents a block of `_blocks_floor` holds: 1,000 blocks at a million passages.
TOP_N_BLOCK = 1024


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The `n` best positive scores, best first (ties in document order), as (ids, scores).

    The n-th best score is found first (a partition, O(N), not a sort), then only the
    documents at or above it are sorted. Over many documents a cheaper floor serves:
    the n-th best of the best scores of blocks of TOP_N_BLOCK (n blocks each hold a
    document at or above it). At a million passages the bench's questions give a fifth
    of them a positive score (p50), and selecting among those took 2.4 ms a question
    (p50; p95 7.8) against 0.4 ms (0.5) with the blocks' floor, the same result as a
    full sort (300 of 300 questions).
    """
    if n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    floor = _blocks_floor(scores, n) if scores.size >= TOP_N_BLOCK * n * 4 else 0.0
    if floor > 0:
        candidates = np.flatnonzero(scores >= floor)
    else:
        candidates = np.flatnonzero(scores > 0)
        if candidates.size > n:
            values = scores[candidates]
            candidates = candidates[values >= np.partition(values, values.size - n)[values.size - n]]
    order = candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
    return order, scores[order]


def _blocks_floor(scores: np.ndarray, n: int) -> float:
    """The n-th best of the best scores of blocks of TOP_N_BLOCK documents: no more than
    the n-th best score, so every one of the best n is at or above it (0 or below when
    fewer than n blocks score at all)."""
    whole = scores.size - scores.size % TOP_N_BLOCK
    best = scores[:whole].reshape(-1, TOP_N_BLOCK).max(axis=1)
    if whole < scores.size:
        best = np.append(best, scores[whole:].max())
    return float(np.partition(best, best.size - n)[best.size - n])


def _check_consistent(bm25, num_docs: int) -> None:
    """Cheap structural checks so a damaged file fails at load, not mid-question."""
    scores = bm25.scores
    data, indices, indptr = scores["data"], scores["indices"], scores["indptr"]
    vocab = bm25.vocab_dict
    if scores.get("num_docs") != num_docs:
        raise ValueError(f"index holds {scores.get('num_docs')} documents, expected {num_docs}")
    if not isinstance(vocab, dict):
        raise ValueError("vocabulary is not a mapping")
    # bm25s adds an empty token "" to the vocabulary without a matrix column; every
    # real token must have a column, or a question using it would index past the end.
    term_ids = [v for k, v in vocab.items() if k]
    if term_ids and (max(term_ids) >= len(indptr) - 1 or min(term_ids) < 0):
        raise ValueError("vocabulary and score matrix disagree in size")
    if len(data) != len(indices) or int(indptr[-1]) != len(data) or int(indptr[0]) != 0:
        raise ValueError("score matrix arrays disagree in size")
    if len(indices) and (int(indices.max()) >= num_docs or int(indices.min()) < 0):
        raise ValueError("score matrix points at documents that do not exist")
    if np.any(np.diff(indptr) < 0) or not np.all(np.isfinite(data)):
        raise ValueError("score matrix is malformed")
