"""The Milvus store against the local one: build and query at scale, and `qa eval`.

Usage:
    .venv/bin/python scripts/bench_milvus.py scale [--passages 10000,100000] [--questions 40]
                                                   [--stores local,lite,server] [--json OUT]
    .venv/bin/python scripts/bench_milvus.py eval [SET ...] [--json OUT]

`scale` builds, per size, one index per store over a corpus of recombined real
sentences (`qa/bench/scale.py`'s generator and stand-in encoder, so the figures are
about the stores, not the model): the local store (FAISS + bm25s files), Milvus
through embedded milvus-lite (`MilvusClient(path)`: its server runs as threads of
this process) and through a `milvus-lite server` process reached by URI. It reports
the full build, an incremental build after one article changed, and per question
the whole `rank()` and each store call alone (nearest sentences, nearest passages,
BM25's best passages, the vectors of 250 candidate rows), p50/p95 in ms.

`eval` runs `qa eval`'s code (hybrid) on each set with the local store, with
Milvus, and with Milvus whose own BM25 scores replace bm25s's in fusion and the
judge (measured, not shipped): the bundled corpus with `eval/dev_questions.jsonl`, and benchmark folders
(`../shared/bench/cmrc2018-trial`, `../shared/bench/drcd-dev`). The Milvus index is
built with the vectors the local build computed (looked up by text; the model is
deterministic), which saves embedding every set twice and changes nothing else.

Benchmark indexes go to `.cache/bench_milvus/` (not the shared cache), and every
figure depends on the machine and on what else runs on it: the report records the
load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from qa.eval.checkout import ROOT
from qa.eval.timing import percentile

WORK = ROOT / ".cache" / "bench_milvus"

# Passages per generated article, measured by qa/bench/scale.py (124,365 passages for
# 10,000 articles).
PASSAGES_PER_ARTICLE = 12.4
STORES = ("local", "lite", "server")


def _scale_module():
    from qa.bench import scale

    return scale


def percentiles(values: list[float]) -> dict:
    values = np.asarray(values, dtype=np.float64) * 1000
    return {"p50_ms": round(percentile(values, 0.50), 2), "p95_ms": round(percentile(values, 0.95), 2)}


class MilvusServer:
    """`milvus-lite server` on a free local port, as a child process (a measurement here,
    the tests' `milvus_server` fixture); `uri` once it accepts connections.

    Args:
        data_dir: the server's database folder.
        log: a file for its output (else discarded), quoted when it fails to start.
    """

    def __init__(self, data_dir: Path, log: Path | None = None):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._log = open(log, "w") if log else None  # closed in stop()
        command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir)]
        self.process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    said = f": {Path(log).read_text(errors='replace')}" if log else ""
                    raise RuntimeError(f"milvus-lite server did not start{said}") from None
                time.sleep(0.2)
        self.uri = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGINT first: its graceful shutdown closes the database."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._log:
            self._log.close()


def _settings(corpus: Path, index_dir: Path, store: str, uri: str = "", model: str | None = None):
    from qa.settings import Settings

    return Settings.load(
        corpus_dir=corpus,
        index_dir=index_dir,
        embed_model=model,
        store="local" if store == "local" else "milvus",
        milvus_uri=uri,
    )


def _folder_mib(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20 if path.exists() else 0.0


def measure_store(corpus: Path, work: Path, store: str, questions: list[str], encoder) -> dict:
    """One store at one size: full build, incremental build, query timings."""
    from qa.index.build import build_index
    from qa.index.read import load_index
    from qa.search.retriever import Retriever
    from qa.stores.bm25 import top_n

    index_dir = work / f"index-{store}"
    for leftover in (index_dir, index_dir.with_name(index_dir.name + ".milvus.db"), work / "server-data"):
        shutil.rmtree(leftover, ignore_errors=True)
    server = MilvusServer(work / "server-data") if store == "server" else None
    try:
        settings = _settings(corpus, index_dir, store, server.uri if server else "", model=encoder.name)
        started = time.perf_counter()
        summary = build_index(settings, encoder=encoder)
        full_s = time.perf_counter() - started
        # One article changed: what `qa build` does after an edit.
        article = sorted(corpus.glob("*.txt"))[len(questions) % 7]
        original = article.read_bytes()
        article.write_text(original.decode("utf-8") + "\n新增的一段：本报记者补充报道了最新进展。\n", encoding="utf-8")
        try:
            started = time.perf_counter()
            incremental = build_index(settings, encoder=encoder)
            incremental_s = time.perf_counter() - started
        finally:
            article.write_bytes(original)
        index = load_index(settings)
        retriever = Retriever(index, encoder, settings)
        analysed = [retriever.analyse(q) for q in questions]
        vectors = [np.asarray(encoder.encode_queries([q])[0], dtype=np.float32) for q in questions]
        for query in analysed[:3]:
            retriever.rank(query, 5)  # warm caches and connections
        timings: dict[str, list[float]] = {
            key: [] for key in ("rank", "search_sentences", "search_passages", "bm25", "vectors")
        }
        rng = np.random.default_rng(0)
        for query, vector in zip(analysed, vectors):
            t = time.perf_counter()
            retriever.rank(query, 5)
            timings["rank"].append(time.perf_counter() - t)
            t = time.perf_counter()
            index.sentence_vectors.search(vector, 100)
            timings["search_sentences"].append(time.perf_counter() - t)
            t = time.perf_counter()
            index.vectors.search(vector, 100)
            timings["search_passages"].append(time.perf_counter() - t)
            t = time.perf_counter()
            if index.lexical_search is not None:
                index.lexical_search.search(query.lexical_query, 100)
            else:
                top_n(index.lexical.term_scores(query.terms), 100)
            timings["bm25"].append(time.perf_counter() - t)
            rows = rng.choice(len(index.chunks), size=min(250, len(index.chunks)), replace=False)
            t = time.perf_counter()
            index.vectors.vectors(rows)
            timings["vectors"].append(time.perf_counter() - t)
        milvus_path = index_dir.with_name(index_dir.name + ".milvus.db") if store == "lite" else work / "server-data"
        return {
            "store": store,
            "passages": summary.chunks,
            "sentences": int(index.manifest["sentences"]),
            "vector_index": index.manifest.get("vector_index"),
            "full_build_s": round(full_s, 1),
            "incremental_build_s": round(incremental_s, 1),
            "incremental": f"{incremental.changed} changed, {incremental.embedded} texts embedded",
            "index_folder_mib": round(_folder_mib(index_dir), 1),
            "milvus_data_mib": round(_folder_mib(milvus_path), 1) if store != "local" else 0.0,
            **{key: percentiles(values) for key, values in timings.items()},
        }
    finally:
        from qa.index.read import forget_cached

        forget_cached(index_dir)
        if server:
            server.stop()


def run_scale(sizes: list[int], stores: list[str], question_count: int) -> dict:
    scale = _scale_module()
    encoder = scale.StandIn()
    questions = scale.load_questions(question_count)
    rows = []
    for passages in sizes:
        work = WORK / f"scale-{passages}"
        corpus = work / "corpus"
        articles = max(1, round(passages / PASSAGES_PER_ARTICLE))
        if not corpus.is_dir() or len(list(corpus.glob("*.txt"))) != articles:
            shutil.rmtree(corpus, ignore_errors=True)
            scale.generate_corpus(corpus, articles, seed=0)
        for store in stores:
            print(f"[{time.strftime('%H:%M:%S')}] {passages} passages, {store} ...", file=sys.stderr, flush=True)
            row = measure_store(corpus, work, store, questions, encoder)
            row["load_average"] = os.getloadavg()
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return {"kind": "scale", "rows": rows, "cpus": os.cpu_count(), "threads": os.environ.get("OMP_NUM_THREADS")}


# ---------------------------------------------------------------- eval


class ReusedVectors:
    """The real encoder, answering passage texts from the vectors a local build already
    computed for them (same model, same text: the same vector)."""

    def __init__(self, encoder, index):
        from qa.index.embedding import context_prefix

        self._encoder = encoder
        self.name, self.dimension = encoder.name, encoder.dimension
        context = index.manifest["settings"]["embed_context"]
        passages = index.vectors.vectors(np.arange(len(index.chunks)))
        sentences = index.sentence_vectors.vectors(np.arange(len(index.sentences)))
        self._known = {context_prefix(c, context) + c.text: passages[i] for i, c in enumerate(index.chunks)}
        for s in range(len(index.sentences)):
            chunk = index.chunks[int(index.sentences.chunk[s])]
            self._known[context_prefix(chunk, context) + index.sentence_text(s)] = sentences[s]
        self.reused = 0

    def encode_passages(self, texts):
        missing = [t for t in texts if t not in self._known]
        if missing:
            for text, vector in zip(missing, self._encoder.encode_passages(missing)):
                self._known[text] = vector
        self.reused += len(texts) - len(missing)
        return np.stack([self._known[t] for t in texts])

    def encode_queries(self, texts):
        return self._encoder.encode_queries(texts)

    def __getattr__(self, name):
        return getattr(self._encoder, name)


class MilvusScoredRetriever:
    """The variant not shipped, measured for comparison: fusion and the judge read
    Milvus's own BM25 scores (0 for a passage outside its top 100) instead of the
    local bm25s statistics."""

    def __new__(cls, index, encoder, settings):
        from qa.search.retriever import Retriever

        class Variant(Retriever):
            def rank(self, query, k, mode="hybrid", where=None):
                self.index.lexical.current = query
                return super().rank(query, k, mode, where)

        class Scores:
            def __init__(self, lexical, search, rows):
                self._lexical, self._search, self._rows, self.current = lexical, search, rows, None

            def term_scores(self, terms):
                scores = np.zeros(self._rows, dtype=np.float32)
                rows, values = self._search.search(self.current.lexical_query, 100)
                scores[rows] = values
                return scores

            def __getattr__(self, name):
                return getattr(self._lexical, name)

        from dataclasses import replace

        variant_index = replace(index, lexical=Scores(index.lexical, index.lexical_search, len(index.chunks)))
        return Variant(variant_index, encoder, settings)


def run_eval(targets: list[Path], variants: list[str]) -> dict:
    from qa.embed.factory import load_encoder
    from qa.eval.evaluate import benchmark_settings, ensure_index, evaluate, load_questions
    from qa.index.build import build_index
    from qa.index.read import load_index
    from qa.search.retriever import Retriever
    from qa.settings import Settings

    base = Settings.load(cache_dir=WORK / "cache")
    encoder = load_encoder(base)
    rows = []
    for target in targets:
        if target.is_dir():
            local, questions_path = benchmark_settings(target, base)
        else:
            local = Settings.load(
                cache_dir=WORK / "cache", corpus_dir=ROOT / "corpus", index_dir=WORK / "cache" / "bundled"
            )
            questions_path = target
        print(f"[{time.strftime('%H:%M:%S')}] {target}: local index ...", file=sys.stderr, flush=True)
        ensure_index(local, encoder=encoder, log=lambda m: print(m, file=sys.stderr))
        local_index = load_index(local)
        milvus = Settings.load(
            cache_dir=local.cache_dir,
            corpus_dir=local.corpus_dir,
            index_dir=Path(str(local.index_dir) + "-milvus"),
            store="milvus",
        )
        shutil.rmtree(milvus.index_dir, ignore_errors=True)
        shutil.rmtree(milvus.milvus_target()[0], ignore_errors=True)
        print(f"[{time.strftime('%H:%M:%S')}] {target}: Milvus index ...", file=sys.stderr, flush=True)
        reuse = ReusedVectors(encoder, local_index)
        started = time.perf_counter()
        build_index(milvus, encoder=reuse)
        milvus_build_s = time.perf_counter() - started
        questions = load_questions(questions_path)
        makers = {
            "local": lambda local=local: Retriever(load_index(local), encoder, local),
            "milvus": lambda milvus=milvus: Retriever(load_index(milvus), encoder, milvus),
            "milvus-bm25": lambda milvus=milvus: MilvusScoredRetriever(load_index(milvus), encoder, milvus),
        }
        for name in variants:
            retriever = makers[name]()
            metrics, _ = evaluate(questions, retriever, "hybrid")
            rows.append(
                {
                    "set": target.name,
                    "store": name,
                    "questions": len(questions),
                    **{k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.to_dict().items()},
                    "milvus_build_s": round(milvus_build_s, 1) if name != "local" else None,
                    "vectors_reused": reuse.reused if name != "local" else None,
                    "load_average": os.getloadavg(),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return {"kind": "eval", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    scale = commands.add_parser("scale")
    scale.add_argument("--passages", default="10000,100000")
    scale.add_argument("--stores", default=",".join(STORES))
    scale.add_argument("--questions", type=int, default=40)
    scale.add_argument("--json", type=Path)
    evaluation = commands.add_parser("eval")
    evaluation.add_argument(
        "targets",
        nargs="*",
        type=Path,
        default=[
            ROOT / "eval" / "dev_questions.jsonl",
            ROOT / "eval" / "extra_questions.jsonl",
            ROOT.parent / "shared" / "bench" / "cmrc2018-trial",
            ROOT.parent / "shared" / "bench" / "drcd-dev",
        ],
    )
    evaluation.add_argument(
        "--variants",
        default="local,milvus,milvus-bm25",
        help="local, milvus, milvus-bm25 (Milvus BM25 scores in fusion and the judge)",
    )
    evaluation.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "scale":
        stores = args.stores.split(",")
        unknown = set(stores) - set(STORES)
        if unknown:
            parser.error(f"--stores takes {', '.join(STORES)}; got {', '.join(sorted(unknown))}")
        report = run_scale([int(s) for s in args.passages.split(",")], stores, args.questions)
    else:
        report = run_eval([t for t in args.targets if t.exists()], args.variants.split(","))
    report["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    text = json.dumps(report, ensure_ascii=False, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
