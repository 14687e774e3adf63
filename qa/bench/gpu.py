"""The bench's GPU section (issue 19): a build's embedding on a CUDA device against the
model's raw forward pass, on the same texts, in the same process.

The texts are those a build of the news corpus embeds (distinct, collected with stand-in
vectors, so no model runs to find them). "Build" is `encode_in_batches` with the encoder a
build on that device uses (`QA_DEVICE=cuda`: `CudaEncoder`, float16, batches of 256, two
calls at once), end to end: tokens, copies to and from the device, rows back in order.
"Raw" is the model's forward pass alone on the same length-sorted batches, tokenised and
on the device beforehand, timed between two synchronisations: what the device can do.
Their ratio is the goal (>= 0.7): how much of the device a build keeps busy.

Runs in a fresh process (`run_bench_child("gpu-build", ...)`), so torch and CUDA stay
out of the rest of the bench. Without a CUDA device the section is skipped; the tests run
it on the CPU (`device="cpu"`), which checks its workings, not its figures.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def build_texts(corpus: Path) -> list[str]:
    """The distinct texts a full build of `corpus` embeds, passages and sentences."""
    import tempfile

    from qa.bench.update import NamedStandIn
    from qa.index.build import build_index
    from qa.settings import Settings

    seen: dict[str, None] = {}

    class Recorder(NamedStandIn):
        def encode_passages(self, texts):
            seen.update(dict.fromkeys(texts))
            return super().encode_passages(texts)

    with tempfile.TemporaryDirectory(prefix="qa-bench-gpu-") as scratch:
        settings = Settings.load(corpus_dir=corpus, index_dir=Path(scratch) / "index")
        build_index(settings, encoder=Recorder(settings.vector_model, 384), full=True)
    return list(seen)


def child_gpu_build(arguments: dict) -> dict:
    """{"corpus", "device"} -> texts/s of the build's embedding and of the raw forward
    pass, and their ratio."""
    import torch

    from qa.embed.factory import load_encoder, model_folder
    from qa.embed.tokenizer import FolderTokenizer
    from qa.index.embedding import build_batch_size, encode_in_batches
    from qa.settings import Settings

    device = arguments.get("device", "cuda")
    texts = build_texts(Path(arguments["corpus"]))
    settings = Settings.load(encoder_backend="torch", device=device)
    encoder = load_encoder(settings)
    model = encoder._model  # the sentence-transformers model both timings run
    dtype = getattr(encoder, "_dtype", None)
    batch_size = build_batch_size(encoder)  # the build's batches, so the raw pass runs the same ones
    tokens = getattr(encoder, "tokens", None) or FolderTokenizer(
        model_folder(settings.embed_model, Path(settings.cache_dir))
    )

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    encode_in_batches(encoder, texts[: 2 * batch_size], progress=False)  # warm-up: kernels chosen, memory pooled
    sync()
    started = time.perf_counter()
    vectors = encode_in_batches(encoder, texts, progress=False)
    sync()
    build_s = time.perf_counter() - started

    prefixed = [tokens.passage_prefix + text for text in texts]
    batches = [
        {"input_ids": torch.from_numpy(ids).to(device), "attention_mask": torch.from_numpy(mask).to(device)}
        for _, ids, mask in tokens.batches(prefixed, batch_size)
    ]
    autocast = torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)
    with torch.inference_mode(), autocast:
        model(batches[0])  # warm-up
        sync()
        started = time.perf_counter()
        for features in batches:
            model(features)["sentence_embedding"]
        sync()
        raw_s = time.perf_counter() - started
    build_rate, raw_rate = len(texts) / build_s, len(texts) / raw_s
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "encoder": repr(encoder),
        "dtype": str(dtype).replace("torch.", "") if dtype is not None else "float32",
        "batch_size": batch_size,
        "texts": len(texts),
        "tokens": int(sum(int(features["attention_mask"].sum()) for features in batches)),
        "build_s": round(build_s, 3),
        "raw_forward_s": round(raw_s, 3),
        "build_texts_per_s": round(build_rate, 1),
        "raw_forward_texts_per_s": round(raw_rate, 1),
        "build_over_raw_forward": round(build_rate / raw_rate, 3),
        "vectors_finite": bool(np.isfinite(vectors).all()),
    }


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (False where torch is not installed)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
