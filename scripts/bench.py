"""Benchmark: index build time, model load, question latency per mode, and memory.

Usage: .venv/bin/python scripts/bench.py [--questions FILE] [--repeat N] [--json]

All figures come from one run, so they can be compared as ratios. Nothing here is
a test: timings depend on the machine (2 CPU cores in CI and development).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", default=str(ROOT / "eval" / "dev_questions.jsonl"))
    parser.add_argument("--repeat", type=int, default=3, help="passes over the questions per mode")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from qa.answer import answer
    from qa.evaluate import load_questions
    from qa.settings import Settings

    figures: dict[str, float | int | str] = {}
    started = time.perf_counter()
    import qa.encoder  # noqa: F401  (import cost of torch + sentence-transformers)
    from qa.encoder import load_encoder

    settings = Settings.load()
    encoder = load_encoder(settings)
    figures["model_load_s"] = round(time.perf_counter() - started, 2)
    figures["device"] = getattr(encoder, "device", "cpu")
    figures["rss_after_model_mib"] = round(peak_rss_mib(), 1)

    from qa.index import build_index
    from qa.retrieve import Retriever

    with tempfile.TemporaryDirectory() as scratch:
        bench_settings = replace(settings, index_dir=Path(scratch) / "index")
        summary = build_index(bench_settings, encoder=encoder)
        figures["build_s"] = round(summary.seconds, 2)
        figures["passages"] = summary.chunks
        figures["articles"] = summary.articles
        figures["build_passages_per_s"] = round(summary.chunks / summary.seconds, 1)

        retriever = Retriever.from_settings(bench_settings, encoder=encoder)
        questions = [q.question for q in load_questions(Path(args.questions))]
        answer(questions[0], retriever=retriever)  # warm caches (jieba, OpenCC)
        for mode in ("lexical", "dense", "hybrid"):
            times = []
            for _ in range(args.repeat):
                for question in questions:
                    t0 = time.perf_counter()
                    retriever.rank(retriever.analyse(question), 5, mode)
                    times.append((time.perf_counter() - t0) * 1000)
            figures[f"rank_{mode}_p50_ms"] = round(statistics.median(times), 2)
            figures[f"rank_{mode}_p95_ms"] = round(percentile(times, 0.95), 2)
        times = []
        for _ in range(args.repeat):
            for question in questions:
                t0 = time.perf_counter()
                answer(question, 5, retriever=retriever)
                times.append((time.perf_counter() - t0) * 1000)
        figures["answer_p50_ms"] = round(statistics.median(times), 2)
        figures["answer_p95_ms"] = round(percentile(times, 0.95), 2)
        figures["peak_rss_mib"] = round(peak_rss_mib(), 1)
        index_bytes = sum(p.stat().st_size for p in (Path(scratch) / "index").rglob("*") if p.is_file())
        figures["index_mib"] = round(index_bytes / 2**20, 3)

    figures["dense_vs_lexical_p50"] = round(figures["rank_dense_p50_ms"] / figures["rank_lexical_p50_ms"], 1)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            print(f"{key:{width}s}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
