"""How high a question this corpus cannot answer scores on it: the null distribution
the verdict reads its evidence against.

A cosine of 0.90 is a strong match on four short articles and an ordinary one on an
archive of many reports of similar events, so an absolute threshold cannot hold on
both. Each index is therefore calibrated once, on questions about its own articles
asked without them: a clause of an article (8-30 characters, as long as a question),
searched among every other article. That is how a question about a report the archive
lacks meets it: the same kind of text, the same vocabulary, maybe a report of a
related event, but not its own. The evidence of those questions' best results (their
null distribution) gives
- the scale each score is read on: standard deviations above the null's mean;
- where "found" starts: above the FOUND_NULL_LEVEL quantile of the null's
  probabilities (qa/search/judge.py).

The calibration is made at build time (`qa build`, `qa.build_index`, the web chat's
rebuilds; the benchmarks on first use) and kept in the cache folder under a key of the
index's articles, model and settings, so a loaded index finds it; an index built some
other way is calibrated on its first question. A corpus of one article, or one whose
articles yield fewer than MIN_QUESTIONS such questions, has no null of its own: the
judge then reads the scores against the fitted default.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.atomic import replace_file
from qa.errors import QAError
from qa.schema import Filter
from qa.search.evidence import ranking_evidence

# The evidence read relative to the null: the scores whose scale moves with the corpus.
RELATIVE = ("dense", "sentence_cosine", "lexical", "coverage", "passage_rare", "article_rare")
NULL_QUESTIONS = 120  # questions asked; the 90th percentile of 120 is stable to about +-3 places
NULL_DEPTH = 5  # results kept per question: the judge's margin reads the best five
CLAUSE_CHARS = (8, 30)  # a clause as long as a typed question
SEED = 16
# Fewer null questions than this and the spread is too noisy to divide by; the standard
# deviation is floored for the same reason (a corpus where every null scores alike).
MIN_QUESTIONS = 20
MIN_SCALE = {
    "dense": 0.01,
    "sentence_cosine": 0.01,
    "lexical": 0.1,
    "coverage": 0.05,
    "passage_rare": 0.05,
    "article_rare": 0.05,
}
CALIBRATION_VERSION = 3
_CLAUSE_END = re.compile(r"[。！？!?；;，,、：:\n]")


@dataclass(frozen=True)
class Calibration:
    """The null distribution of one index: per evidence name, the mean and spread of
    the best result's value, and each null question's raw evidence (best five results)."""

    means: dict[str, float]
    scales: dict[str, float]
    rows: tuple[tuple[dict[str, float], ...], ...] = ()

    @property
    def questions(self) -> int:
        return len(self.rows)

    def relative(self, raw: dict[str, float]) -> dict[str, float]:
        """`raw` evidence with each `RELATIVE` value as standard deviations above the null."""
        return {
            name: (value - self.means[name]) / self.scales[name] if name in self.means else value
            for name, value in raw.items()
        }

    def to_json(self) -> dict:
        return {
            "version": CALIBRATION_VERSION,
            "means": self.means,
            "scales": self.scales,
            "rows": [list(row) for row in self.rows],
        }

    @classmethod
    def from_json(cls, data: dict, saved: bool = True) -> Calibration:
        """A calibration from its JSON; a `saved` one must be of this version (its null
        questions are made the current way), a fitted default only of these features."""
        if (saved and data.get("version") != CALIBRATION_VERSION) or set(data.get("means", {})) != set(RELATIVE):
            raise ValueError("calibration of another version")
        return cls(
            means={k: float(v) for k, v in data["means"].items()},
            scales={k: float(v) for k, v in data["scales"].items()},
            rows=tuple(tuple(row) for row in data.get("rows", ())),
        )


def null_questions(articles, count: int = NULL_QUESTIONS, seed: int = SEED) -> list[tuple[str, str]]:
    """(source, clause) pairs: a clause of question length from `count` articles drawn
    at random (each article once while there are enough, then again)."""
    articles = sorted(articles, key=lambda a: a.source)
    if len(articles) < 2:
        return []  # asked without its only article, a corpus has nothing to search
    rng = random.Random(seed)
    drawn = rng.sample(articles, count) if len(articles) >= count else [rng.choice(articles) for _ in range(count)]
    low, high = CLAUSE_CHARS
    pairs = []
    for article in drawn:
        clauses = [c.strip() for c in _CLAUSE_END.split(article.text) if low <= len(c.strip()) <= high]
        if clauses:
            pairs.append((article.source, rng.choice(clauses)))
    # A clause drawn twice would count twice: a few short articles would then look like
    # a null of many questions, with a spread far too narrow.
    return list(dict.fromkeys(pairs))


def null_evidence(retriever, count: int = NULL_QUESTIONS) -> list[list[dict[str, float]]]:
    """Each null question's raw evidence, best result first, searched without its article."""
    sources = frozenset(retriever.index.articles)
    rows = []
    for source, clause in null_questions(retriever.index.articles.values(), count):
        try:
            query = retriever.analyse(clause)
            ranked = retriever.rank(query, NULL_DEPTH, where=Filter(sources=sources - {source}))
        except QAError:
            continue  # a clause of only function words; or nothing left to search
        if ranked:
            rows.append(ranking_evidence(retriever.index, query, ranked, [retriever.passage_text(r) for r in ranked]))
    return rows


def fit_null(rows: list[list[dict[str, float]]]) -> Calibration | None:
    """The null distribution of `rows` (each a question's raw evidence, best first), or
    None when too few to trust."""
    if len(rows) < MIN_QUESTIONS:
        return None
    means, scales = {}, {}
    for name in RELATIVE:
        values = np.array([row[0][name] for row in rows], dtype=np.float64)
        means[name] = float(values.mean())
        scales[name] = max(float(values.std()), MIN_SCALE[name])
    return Calibration(means, scales, tuple(tuple(row) for row in rows))


def calibrate(retriever) -> Calibration | None:
    """The null distribution of `retriever`'s corpus, or None when it yields too few."""
    return fit_null(null_evidence(retriever))


def _key(retriever) -> str:
    """What a calibration depends on: the articles, the model, the index's settings and
    the retrieval constants."""
    manifest = retriever.index.manifest
    parts = {
        "articles": sorted((a.get("source"), a.get("sha256")) for a in manifest.get("articles", [])),
        "model": manifest.get("model"),
        "settings": manifest.get("settings"),
        "tuning": retriever.tuning.to_dict(),
        "null": [NULL_QUESTIONS, NULL_DEPTH, CLAUSE_CHARS, SEED],
        "version": CALIBRATION_VERSION,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


_CACHE: dict[tuple[int, str], tuple[weakref.ref, Calibration | None]] = {}  # (index id, tuning)
_LOCK = threading.Lock()


def calibration_path(retriever) -> Path:
    return Path(retriever.settings.cache_dir) / "calibration" / f"{_key(retriever)}.json"


def calibration_for(retriever) -> Calibration | None:
    """The calibration of `retriever`'s index: from memory, the cache folder, or made
    now (and saved). None when the corpus is too small to have a null of its own."""
    # Asked on every question, so the memo is found by the loaded index itself (the file's
    # key sorts and hashes every article's digest: milliseconds at 10,000 articles); the
    # weak reference tells a new index from a freed one that had the same id.
    memo = (id(retriever.index), json.dumps(retriever.tuning.to_dict(), sort_keys=True, default=str))
    held = _CACHE.get(memo)
    if held is not None and held[0]() is retriever.index:
        return held[1]
    with _LOCK:
        held = _CACHE.get(memo)
        if held is not None and held[0]() is retriever.index:
            return held[1]
        path = calibration_path(retriever)
        calibration = _saved(path)
        if calibration is None:
            calibration = calibrate(retriever)
            if calibration is not None:
                text = json.dumps(calibration.to_json())
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    replace_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
                except OSError:
                    pass  # a read-only cache costs a calibration per process, nothing worse
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[memo] = (weakref.ref(retriever.index), calibration)
        return calibration


def calibrate_index(settings, encoder=None) -> Calibration | None:
    """Calibrate the index `settings` name, as a build's last step (a no-op, without
    loading the model, when the cache already holds its calibration)."""
    from qa.index.read import load_index
    from qa.search.retriever import Retriever

    retriever = Retriever(load_index(settings), encoder, settings)
    if encoder is None and _saved(calibration_path(retriever)) is None:
        from qa.embed.factory import load_encoder

        retriever.encoder = load_encoder(settings)
    return calibration_for(retriever)


def _saved(path: Path) -> Calibration | None:
    try:
        return Calibration.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
