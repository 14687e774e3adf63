"""The `Encoder` over an ONNX export of a sentence-transformers folder, run by onnxruntime.

The only module that imports onnxruntime; no torch is imported, so a question costs
less and a process starts faster than with `qa.embed.sentence_transformer`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.embed.base import PASSAGE_PROMPT, QUERY_PROMPT, core_workers, model_threads
from qa.embed.base import first_line as _first_line
from qa.errors import ModelError


class OnnxEncoder:
    """An Encoder running an ONNX export of a sentence-transformers folder with onnxruntime.

    The graph holds the model, mean pooling and normalisation (qa/embed/onnx_export.py); the
    tokenizer is the folder's own `tokenizer.json`, prompts from its sentence-transformers
    config, so the vectors are those of `SentenceTransformer(folder)` with the same weights.
    """

    def __init__(
        self, model_dir: Path, onnx_file: Path, name: str, batch_size: int = 8, threads: int | None = None
    ) -> None:
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
        threads = model_threads() if threads is None else threads
        options.intra_op_num_threads = threads
        # Runs hold no GIL: a build embeds this many batches at once, one per core.
        self.concurrency = core_workers(threads)
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
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


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
