"""Shared fixtures: a fake encoder for fast tests, the real model once per session, seed paths."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from qa.normalize import match_form

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEEDS = SHARED / "seeds"
EVAL_FILE = SHARED / "eval" / "dev_questions.jsonl"


class FakeEncoder:
    """Deterministic stand-in for the embedding model.

    Each character bigram of the matching form gets a fixed random vector seeded by
    its hash; a text is the L2-normalised sum. Texts sharing words are close, so
    retrieval behaves sensibly, and no model is loaded.
    """

    name = "fake-bigram-hash"
    dimension = 64

    def _vector(self, text: str) -> np.ndarray:
        form = "".join(ch for ch in match_form(text) if ch.isalnum())
        grams = [form[i : i + 2] for i in range(len(form) - 1)] or [form or " "]
        total = np.zeros(self.dimension, dtype=np.float32)
        for gram in grams:
            seed = int.from_bytes(hashlib.sha256(gram.encode()).digest()[:8], "little")
            total += np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)
        return total / (np.linalg.norm(total) or 1.0)

    def encode_passages(self, texts):
        return np.stack([self._vector(t) for t in texts]) if len(texts) else np.zeros((0, self.dimension), np.float32)

    def encode_queries(self, texts):
        return self.encode_passages(texts)

    def token_count(self, text: str) -> int:
        return len(text) + 2


@pytest.fixture(scope="session")
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    if not SEEDS.is_dir():
        pytest.skip(f"seed files not found at {SEEDS} (shared/ must sit beside the repo)")
    return SEEDS
