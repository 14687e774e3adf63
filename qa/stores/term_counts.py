"""How often each term occurs in each BM25 document (a passage with its headline): what
a build keeps to make BM25 again without the passages' tokens.

BM25's scores depend on every document (the number of documents, their mean length,
each term's document frequency), so one article added changes them all; the counts do
not change. An incremental build takes the reused passages' rows of the previous counts
and the new passages' counts, and scores them in numpy (`LexicalIndex.from_counts`):
reading, re-counting and writing the 25 million stored tokens of 100,000 passages took
most of a build that adds one article. Numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError


@dataclass(frozen=True)
class TermCounts:
    """Documents by terms, sparse by document: document d's terms are
    `terms[indptr[d]:indptr[d + 1]]` (each once, in no promised order), occurring
    `counts[...]` times."""

    vocab: list[str]  # term id -> term
    indptr: np.ndarray  # int64, one more than the documents
    terms: np.ndarray  # int32 term ids
    counts: np.ndarray  # int32, each at least 1

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per document (int64)."""
        docs = np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr))
        return np.bincount(docs, weights=self.counts, minlength=len(self)).astype(np.int64)

    @classmethod
    def from_tokens(cls, documents: Sequence[Sequence[str]]) -> TermCounts:
        """Count the tokens of each document."""
        vocab: dict[str, int] = {}
        ids = np.fromiter(
            (vocab.setdefault(token, len(vocab)) for document in documents for token in document), dtype=np.int64
        )
        lengths = np.fromiter((len(document) for document in documents), dtype=np.int64, count=len(documents))
        docs = np.repeat(np.arange(len(documents), dtype=np.int64), lengths)
        # One key per (document, term): sorting the keys groups them by document, then term.
        keys, counts = np.unique(docs * max(len(vocab), 1) + ids, return_counts=True)
        key_docs = keys // max(len(vocab), 1)
        indptr = np.zeros(len(documents) + 1, dtype=np.int64)
        np.cumsum(np.bincount(key_docs, minlength=len(documents)), out=indptr[1:])
        terms = (keys % max(len(vocab), 1)).astype(np.int32)
        return cls(list(vocab), indptr, terms, counts.astype(np.int32))

    def take(self, rows: np.ndarray) -> TermCounts:
        """The documents `rows`, in that order (vocabulary unchanged)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, lengths = self.indptr[rows], np.diff(self.indptr)[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # Position j of the result reads starts[document of j] + (j - indptr[document of j]).
        index = np.arange(indptr[-1], dtype=np.int64) + np.repeat(starts - indptr[:-1], lengths)
        return TermCounts(self.vocab, indptr, self.terms[index], self.counts[index])

    @classmethod
    def concatenate(cls, parts: Sequence[TermCounts]) -> TermCounts:
        """The documents of `parts` one after another, in one vocabulary."""
        vocab: dict[str, int] = {}
        terms, counts, lengths = [], [], []
        for part in parts:
            if not vocab:  # the first part keeps its term ids: no pass over its 12 million entries
                vocab = dict(zip(part.vocab, range(len(part.vocab))))
                terms.append(part.terms)
                counts.append(part.counts)
                lengths.append(np.diff(part.indptr))
                continue
            # Per distinct term, not per token: a few thousand dict lookups for a new article.
            remap = np.fromiter(
                (vocab.setdefault(term, len(vocab)) for term in part.vocab), dtype=np.int64, count=len(part.vocab)
            )
            terms.append(remap[part.terms].astype(np.int32) if len(part.terms) else part.terms)
            counts.append(part.counts)
            lengths.append(np.diff(part.indptr))
        lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
        indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        joined = cls(
            list(vocab),
            indptr,
            np.concatenate(terms) if terms else np.zeros(0, np.int32),
            np.concatenate(counts) if counts else np.zeros(0, np.int32),
        )
        return joined

    def without_unused_terms(self) -> TermCounts:
        """The same counts over only the terms that occur: the terms of removed articles
        leave the vocabulary (which question analysis reads as "known words")."""
        used = np.bincount(self.terms, minlength=len(self.vocab)) > 0
        if used.all():
            return self
        new_ids = np.cumsum(used) - 1
        vocab = [term for term, keep in zip(self.vocab, used) if keep]
        return TermCounts(vocab, self.indptr, new_ids[self.terms].astype(np.int32), self.counts)

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path) -> None:
        """Write the counts to the .npz file `path`."""
        vocab = np.frombuffer(json.dumps(self.vocab, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
        with open(path, "wb") as out:
            np.savez(out, vocab=vocab, indptr=self.indptr, terms=self.terms, counts=self.counts)

    @classmethod
    def load(cls, path: Path) -> TermCounts:
        """Read a file written by `save`; IndexCorruptError if it is unusable."""
        try:
            with np.load(path) as data:
                vocab = json.loads(data["vocab"].tobytes().decode("utf-8"))
                counts = cls(vocab, data["indptr"], data["terms"], data["counts"])
        except (OSError, ValueError, KeyError) as error:
            raise IndexCorruptError(f"cannot read the term counts {path}; rebuild the index with `qa build`") from error
        terms = counts.terms
        if (
            counts.indptr[0] != 0
            or counts.indptr[-1] != len(terms)
            or len(counts.counts) != len(terms)
            or (len(terms) and (terms.min() < 0 or terms.max() >= len(vocab)))
        ):
            raise IndexCorruptError(f"the term counts {path} are inconsistent; rebuild the index with `qa build`")
        return counts
