"""The bench's scale section: the product's own stores over stand-in passages at 10k,
100k and 1M passages. A passage is 2-6 real sentences: its vector the normalised sum
of theirs plus a little noise, its BM25 tokens theirs. Stores are built and queried in
child processes, so each size's memory is a fresh process's.
"""

from __future__ import annotations

import gc
import hashlib
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from qa.bench import scale
from qa.bench.generate import SHARED
from qa.bench.measure import folder_bytes, latency, lexical_candidates, load_question_records, log, rss_mib
from qa.eval.checkout import ROOT
from qa.eval.timing import timed_ms

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


# ---------------------------------------------------------------- 3. scale


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def sentence_pool(encoder, work: Path, size: int, seed: int) -> Path:
    """`size` real sentences (qa/bench/scale.py sources), their passage vectors from the
    real model and their BM25 tokens, cached in `work` by a hash of the pool and model;
    returns the .npz file (vectors, plus the tokens as JSON beside it)."""
    import numpy as np

    from qa.index.embedding import encode_in_batches
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
        encoding="utf-8",
    )
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


def run_bench_child(kind: str, arguments: dict, timeout: float | None) -> dict:
    """This script in a fresh interpreter (its own imports, memory and peak RSS); the
    last stdout line is its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "qa.bench.run", "--_child", kind, json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_scale_build(arguments: dict) -> dict:
    """Generate one size's passages, build and save both stores, and the exact top 10
    of every query (IndexFlatIP over the same vectors) to judge the store's recall by."""
    import numpy as np

    from qa.stores.base import kind_for
    from qa.stores.bm25 import LexicalIndex
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
    from qa.stores.faiss_store import FaissStore
    from qa.tuning import DEFAULT_TUNING

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
    return {
        "passages": len(index.chunks),
        "dense": latency(dense_ms),
        "lexical": latency(lexical_ms),
        "store_search": latency(both_ms),
    }


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
    for folder in sorted((SHARED / "bench").glob("*/")):
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
    return {
        "vectors": len(vectors),
        "recall_at_10": round(statistics.fmean(recalls), 4),
        "mean_pair_cosine": mean_pair_cosine(vectors),
        "first_minus_tenth_neighbour_cosine": round(float(np.mean(truth_scores[:, 0] - truth_scores[:, 9])), 4),
    }


def scale_section(
    sizes: Sequence[int],
    encoder,
    index,
    retrieve_p50_ms: float,
    work: Path,
    pool: int,
    query_count: int,
    repeat: int,
    seed: int,
    keep: bool,
    save: Callable[[], None],
    section: dict,
) -> dict:
    """Build, load and query the stores at each size, smallest first, in child processes;
    `section` is filled in as sizes finish (and saved), so a long run keeps what it did."""
    pool_path = sentence_pool(encoder, work, pool, seed)
    queries = query_set(encoder, work, query_count)
    bundled = bundled_store_search(index, queries, repeat)
    bundled["mean_pair_cosine"] = mean_pair_cosine(index.vectors.vectors(range(len(index.chunks))))
    real = real_vector_recall(queries)
    pooled = len(load_pool(pool_path)[1])
    if pooled < pool:
        log(
            f"only {pooled} real sentences for the stand-ins (asked for {pool}): without ../shared/bench beside the "
            "repository the pool is the bundled corpus alone, and the scale figures do not compare with a full run's"
        )
    section.update(
        {
            "pool_sentences": pooled,
            "queries": len(load_queries(queries)[1]),
            "noise_norm": NOISE_NORM,
            "pool_mean_pair_cosine": mean_pair_cosine(load_pool(pool_path)[0]),
            "bundled": bundled,
            "real_vectors": real,
            "note": (
                "stand-in passages: sums of real sentence vectors plus noise; only the passage store and BM25 "
                "are built (a real index also holds ~2.7 sentence vectors per passage, in a flat store read by "
                "row, never searched); retrieve() p50 at a size is an estimate: bundled retrieve() p50 + the "
                "dense search's growth + BM25's growth; memory is private memory (the BM25 matrix is memory-mapped), "
                "RSS with its mapped pages beside it; "
                f"in brackets beside R@10, the share of the store's top 10 scoring within {TIE_COSINE} of the "
                "exact 10th (near the R@10: true misses; near 1: near-ties swapped)"
            ),
            "sizes": [],
        }
    )
    for rows in sorted(sizes):
        folder = work / f"scale-{rows}"
        arguments = {
            "folder": str(folder),
            "rows": rows,
            "pool": str(pool_path),
            "queries": str(queries),
            "seed": seed,
            "repeat": repeat,
        }
        log(f"[{rows}] generating and building the stores")
        row = run_bench_child("scale-build", arguments, None)
        log(f"[{rows}] {row['kind']}: vectors {row['vector_build_s']} s, BM25 {row['lexical_build_s']} s; querying")
        row.update(run_bench_child("scale-query", arguments, None))
        row["raw_vector_bytes"] = rows * row["dimension"] * 4
        row["vector_index_bytes"] = folder_bytes(folder / "vectors.faiss")
        row["lexical_index_bytes"] = folder_bytes(folder / "lexical")
        # The goal counts private memory: the BM25 matrix is memory-mapped (page cache,
        # shared, evictable); the figure with its mapped pages is kept beside it.
        row["memory_over_raw_vectors"] = round(row["loaded_private_mib"] * 2**20 / row["raw_vector_bytes"], 3)
        row["rss_over_raw_vectors"] = round(row["loaded_rss_mib"] * 2**20 / row["raw_vector_bytes"], 3)
        row["vector_store_over_raw_vectors"] = round(row["vectors_rss_mib"] * 2**20 / row["raw_vector_bytes"], 3)
        row["lexical_share_of_memory"] = round(row["lexical_rss_mib"] / max(row["loaded_rss_mib"], 1e-9), 3)
        # A question searches the passage store and BM25; the candidates' sentences are
        # scored by row (about 500 dot products whatever the size), not searched.
        growth = (
            row["dense"]["p50_ms"]
            - bundled["dense"]["p50_ms"]
            + row["lexical"]["p50_ms"]
            - bundled["lexical"]["p50_ms"]
        )
        row["retrieve_p50_ms_estimate"] = round(retrieve_p50_ms + growth, 3)
        row["store_search_p50_over_bundled"] = round(
            row["store_search"]["p50_ms"] / bundled["store_search"]["p50_ms"], 2
        )
        section["sizes"].append(row)
        save()
        log(
            f"[{rows}] dense p50 {row['dense']['p50_ms']} ms, BM25 p50 {row['lexical']['p50_ms']} ms, "
            f"R@10 {row['recall_at_10']}, private memory {row['loaded_private_mib']} MiB ({row['memory_over_raw_vectors']}x raw), "
            f"RSS {row['loaded_rss_mib']} MiB"
        )
        if not keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    return section
