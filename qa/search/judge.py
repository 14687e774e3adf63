"""Decide whether a ranking answers its question: found, unsure, or nothing found.

A logistic model over a few features of the question and its best result. Its
parameters are fitted by `qa/eval/fit_judge.py` on the answerable and unanswerable
questions of every shared set together, and loaded from `judge.json` beside this
file, which also records what they were fitted on. Two thresholds on its
probability give three verdicts: "found" (passages shown), "unsure" (passages shown
under a "these may not answer it" line: hiding an answer that exists is the worst
outcome for a reader) and "not_found" (a short message; passages on request).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from qa.search.query import Query
from qa.text.normalize import match_form
from qa.text.sentences import term_coverage

Verdict = Literal["found", "unsure", "not_found"]
PARAMS_FILE = Path(__file__).with_name("judge.json")

# Each feature is a number a person can check by hand on one question.
FEATURES = (
    "dense",  # the best result's dense score: mean of its passage cosine and max(passage, best sentence)
    "sentence_cosine",  # its answering sentence's cosine with the question
    "coverage",  # share of the question's terms (by length) in the best result's text
    "known_share",  # share of the question's terms that occur anywhere in the articles
    "unknown_share",  # share of its content words the articles never use
    "lexical",  # log(1 + BM25) of the best result
    "english",  # 1 for an English question (its terms are translations)
)


@dataclass(frozen=True)
class JudgeParams:
    weights: dict[str, float]
    bias: float
    means: dict[str, float]  # features are standardised before weighting
    scales: dict[str, float]
    found_above: float  # probability at or above which the passages count as an answer
    unsure_above: float  # between the two: shown, marked "may not answer"
    fitted_on: dict  # sets, counts and the rule the thresholds were chosen by

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(
            self.weights[name] * (features[name] - self.means[name]) / self.scales[name] for name in FEATURES
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def verdict(self, probability: float) -> Verdict:
        if probability >= self.found_above:
            return "found"
        if probability >= self.unsure_above:
            return "unsure"
        return "not_found"

    def to_json(self) -> dict:
        return {
            "features": list(FEATURES),
            "weights": self.weights,
            "bias": self.bias,
            "means": self.means,
            "scales": self.scales,
            "found_above": self.found_above,
            "unsure_above": self.unsure_above,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_json(cls, data: dict) -> JudgeParams:
        missing = [name for name in FEATURES if name not in data.get("weights", {})]
        if missing or list(data.get("features", [])) != list(FEATURES):
            raise ValueError(f"judge parameters do not match the features {FEATURES} (missing {missing})")
        return cls(
            weights={k: float(v) for k, v in data["weights"].items()},
            bias=float(data["bias"]),
            means={k: float(v) for k, v in data["means"].items()},
            scales={k: float(v) or 1.0 for k, v in data["scales"].items()},
            found_above=float(data["found_above"]),
            unsure_above=float(data["unsure_above"]),
            fitted_on=dict(data.get("fitted_on", {})),
        )


@lru_cache(maxsize=4)
def load_params(path: Path = PARAMS_FILE) -> JudgeParams:
    """The fitted parameters (see qa/eval/fit_judge.py)."""
    return JudgeParams.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def features(query: Query, best, best_text: str) -> dict[str, float]:
    """The judge's features for `query` and its best result (`qa.search.retriever.Ranked`)."""
    return {
        "dense": best.dense,
        "sentence_cosine": best.sentence_cosine,
        "coverage": term_coverage(list(query.terms), best_text, match_form(best_text)),
        "known_share": query.known_share,
        "unknown_share": query.unknown_share,
        "lexical": math.log1p(max(0.0, best.lexical)),
        "english": 1.0 if query.is_english else 0.0,
    }


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    probability: float
    features: dict[str, float]


def judge(query: Query, ranked: list, best_text: str, params: JudgeParams | None = None) -> Judgement:
    """The verdict on a ranking: nothing ranked is always "not_found"."""
    if not ranked:
        return Judgement("not_found", 0.0, {})
    params = params or load_params()
    values = features(query, ranked[0], best_text)
    probability = params.probability(values)
    return Judgement(params.verdict(probability), probability, values)
