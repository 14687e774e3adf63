"""A sentence-transformers folder's own tokenizer, prompts and padding, as batches of ids,
and `TokenizedEncoder`, the Encoder methods of the encoders that run on such batches.

Shared by the encoders that run the model outside sentence-transformers' `encode`
(onnxruntime's fp32 and 4-bit graphs, torch in bf16), so every one of them sees the
same tokens for a text. It reads `tokenizer.json` with the `tokenizers` library, not
transformers: a `tokenizers.Tokenizer` set up once is only read afterwards, so several
threads may encode with it at once (a build embeds a batch per core).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from qa.embed.base import PASSAGE_PROMPT, QUERY_PROMPT


class FolderTokenizer:
    """Token ids of texts for the model in `model_dir`, with its prompts in front.

    Raises (from the constructor) whatever reading the folder raises: OSError, ValueError,
    or the tokenizers library's Exception; each encoder turns it into its ModelError.
    """

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        config = _read_json(model_dir / "config_sentence_transformers.json")
        limit = int(_read_json(model_dir / "sentence_bert_config.json").get("max_seq_length", 512))
        pad = _read_json(model_dir / "tokenizer_config.json").get("pad_token")
        prompts = config.get("prompts") or {}
        self.query_prefix = prompts.get(QUERY_PROMPT, "")
        self.passage_prefix = prompts.get(PASSAGE_PROMPT, "")
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

    def token_count(self, text: str) -> int:
        """Tokens the model sees for `text` as a passage, never truncated."""
        return len(self._counter.encode(self.passage_prefix + text).ids)

    def batches(self, texts: Sequence[str], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(rows of `texts`, input ids, attention mask) per batch, int64, each batch of
        texts of similar length: a batch is padded to its longest text."""
        encodings = self._tokenizer.encode_batch(list(texts))
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        for begin in range(0, len(texts), batch_size):
            rows = order[begin : begin + batch_size]
            width = len(encodings[rows[0]].ids)
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                tokens = encodings[row].ids
                ids[i, : len(tokens)] = tokens
                mask[i, : len(tokens)] = 1
            yield rows, ids, mask


class TokenizedEncoder:
    """The Encoder methods over a `FolderTokenizer`: prompts, token counts, texts in
    length-sorted batches, rows back in order. A subclass sets `tokens`, `batch_size`
    and `dimension`, and runs one batch of ids (`_run`: float32 rows, L2-normalised)."""

    tokens: FolderTokenizer
    batch_size: int

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.tokens.passage_prefix + text for text in texts])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.tokens.query_prefix + text for text in texts])

    def token_count(self, text: str) -> int:
        return self.tokens.token_count(text)

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        out: np.ndarray | None = None
        for rows, ids, mask in self.tokens.batches(texts, self.batch_size):
            vectors = self._run(ids, mask)
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
