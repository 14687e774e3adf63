"""The `Encoder` over an ONNX export of a sentence-transformers folder, run by onnxruntime.

The only module that imports onnxruntime; no torch is imported, so a question costs
less and a process starts faster than with `qa.embed.sentence_transformer`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.embed.base import core_workers, model_threads
from qa.embed.base import first_line as _first_line
from qa.embed.tokenizer import FolderTokenizer, TokenizedEncoder
from qa.errors import ModelError


class OnnxEncoder(TokenizedEncoder):
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
        except ImportError as e:
            raise ModelError(
                f"the ONNX encoder backends need onnxruntime ({e.name} is missing); "
                "run `pip install -e .`, or set QA_ENCODER_BACKEND=torch"
            ) from e
        self.name = name
        self.device = "cpu"
        self.batch_size = batch_size
        options = onnxruntime.SessionOptions()
        threads = model_threads() if threads is None else threads
        options.intra_op_num_threads = threads
        # Runs hold no GIL: a build embeds this many batches at once, one per core.
        self.concurrency = core_workers(threads)
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
            self.tokens = FolderTokenizer(model_dir)
        except Exception as e:  # onnxruntime, tokenizers and OS errors all mean the same thing here
            raise ModelError(
                f"cannot load the ONNX embedding model {onnx_file}: {_first_line(e)}; delete "
                f"{Path(onnx_file).parent} so it is exported again, or set QA_ENCODER_BACKEND=torch"
            ) from e
        dim = self._session.get_outputs()[0].shape[-1]
        self.dimension = int(dim) if isinstance(dim, int) else int(self._encode(["dimension probe"]).shape[1])

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def __repr__(self) -> str:
        return f"OnnxEncoder({self.name!r})"
