"""Measure the retrieval a user would build instead (plain LangChain + FAISS, bm25s + jieba) on the same question sets."""

# Usage: .venv/bin/python scripts/peers.py [--set NAME=CORPUS_DIR:QUESTIONS_FILE ...]
#        [--peer langchain|bm25s-jieba|all] [--json OUT.json] [--limit N]
# Every peer reads the articles with the project's own loader (qa.ingest.corpus) and is
# scored with the project's matching rule (qa.eval.evaluate.answers plus the question's
# `source` file), so its numbers compare directly with `qa eval` on the same set.

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.eval.checkout import ROOT
from qa.eval.timing import percentile

# The embedding model is the local converted folder; this keeps the hub client from
# trying the network for anything (the machines have none).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PEERS = ("langchain", "bm25s-jieba")
DEPTH = 10  # MRR@10 and the k both peers retrieve
DEFAULT_SETS = (
    ("dev", "corpus", "eval/dev_questions.jsonl"),
    ("extra", "corpus", "eval/extra_questions.jsonl"),
    ("cmrc2018-trial", "../shared/bench/cmrc2018-trial/corpus", "../shared/bench/cmrc2018-trial/questions.jsonl"),
    ("drcd-dev", "../shared/bench/drcd-dev/corpus", "../shared/bench/drcd-dev/questions.jsonl"),
    ("ats-news-dev", "../shared/bench/ats-news-dev/corpus", "../shared/bench/ats-news-dev/questions.jsonl"),
)
_INSTALL_HINT = "pip install -e '.[bench]'"


@dataclass(frozen=True)
class Chunk:
    text: str
    source: str  # Article.source of the article it was cut from


# A built peer: build seconds, chunk count, and a search function returning the top chunks.
Search = Callable[[str], list[Chunk]]


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"the peers benchmark needs {module}: run `{_INSTALL_HINT}` ({error})") from error


# --------------------------------------------------------------------- peers


def langchain_embeddings():
    """The recipe's embedding model: HuggingFaceEmbeddings over the bundled model's folder
    (loading it is the recipe's model load, which qa/bench/run.py times apart from its build)."""
    try:
        # langchain_huggingface is the current home and is used where installed, but
        # the bench extra leaves it out: its releases cap huggingface_hub below 2 and
        # would downgrade the project's. The community class is the same
        # SentenceTransformer wrapper.
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError:
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "langchain-community is being sunset" on import
                from langchain_community.embeddings import HuggingFaceEmbeddings
        except ImportError as error:
            raise ImportError(
                f"the langchain peer needs langchain-community: run `{_INSTALL_HINT}` ({error})"
            ) from error

    from qa.embed.convert import ensure_bundled_model
    from qa.settings import Settings

    model_dir = ensure_bundled_model(Settings.load().cache_dir)
    # Plain recipe on purpose: no E5 "query: "/"passage: " prefixes and no extra
    # encode options, because that is what a user following the LangChain docs gets.
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar per set would break the table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the community class warns that it is deprecated
        return HuggingFaceEmbeddings(model_name=str(model_dir))


def build_langchain(articles, embeddings=None) -> tuple[list[Chunk], Search]:
    """The LangChain quick-start recipe: 500/50 recursive splits, HuggingFaceEmbeddings, FAISS.

    `embeddings` is a loaded `langchain_embeddings()`; None loads it here."""
    splitters = _require("langchain_text_splitters")
    vectorstores = _require("langchain_community.vectorstores")
    documents_module = _require("langchain_core.documents")

    embeddings = embeddings if embeddings is not None else langchain_embeddings()
    splitter = splitters.RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)
    documents = splitter.split_documents(
        [documents_module.Document(page_content=a.text, metadata={"source": a.source}) for a in articles]
    )
    store = vectorstores.FAISS.from_documents(documents, embeddings)
    chunks = [Chunk(d.page_content, d.metadata["source"]) for d in documents]

    def search(question: str) -> list[Chunk]:
        hits = store.similarity_search(question, k=DEPTH)
        return [Chunk(d.page_content, d.metadata["source"]) for d in hits]

    return chunks, search


def _jieba_tokens(text: str) -> list[str]:
    import jieba

    return [t.lower() for t in jieba.lcut_for_search(text) if not _is_blank_or_punct(t)]


def _is_blank_or_punct(token: str) -> bool:
    # Whitespace and punctuation tokens would otherwise match every chunk.
    return all(ch.isspace() or unicodedata.category(ch)[0] in "PZC" for ch in token)


def build_bm25s_jieba(articles) -> tuple[list[Chunk], Search]:
    """bm25s over 200-character chunks tokenised with jieba's search mode."""
    splitters = _require("langchain_text_splitters")
    bm25s = _require("bm25s")
    jieba = _require("jieba")
    import logging

    jieba.setLogLevel(logging.WARNING)  # "Building prefix dict..." on first use
    splitter = splitters.RecursiveCharacterTextSplitter(chunk_size=200, chunk_overlap=0)
    chunks = [Chunk(piece, a.source) for a in articles for piece in splitter.split_text(a.text)]
    retriever = bm25s.BM25()
    retriever.index([_jieba_tokens(c.text) for c in chunks], show_progress=False)
    k = min(DEPTH, len(chunks))  # bm25s refuses a k above the number of chunks

    def search(question: str) -> list[Chunk]:
        ids, _scores = retriever.retrieve([_jieba_tokens(question)], k=k, show_progress=False)
        return [chunks[int(i)] for i in ids[0]]

    return chunks, search


_BUILDERS = {"langchain": build_langchain, "bm25s-jieba": build_bm25s_jieba}


# ------------------------------------------------------------------- scoring


def first_answer_rank(hits: list[Chunk], question) -> int | None:
    """The project's rule (`qa.eval.evaluate.first_answer_rank`): gold string, and the question's own article."""
    from qa.eval.evaluate import first_answer_rank as rank_of

    return rank_of([(chunk.source, chunk.text) for chunk in hits], question)


def run_peer(name: str, corpus_dir: Path, questions_path: Path, limit: int | None = None, set_name: str = "") -> dict:
    """Build peer `name` over `corpus_dir` and score it on the answerable questions of `questions_path`."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
    from qa.ingest.corpus import load_corpus

    articles = load_corpus(Path(corpus_dir))
    from qa.eval.evaluate import load_questions

    questions = load_questions(Path(questions_path))[:limit]
    # Peers have no "nothing found" answer, so unanswerable questions say nothing about them.
    answerable = [q for q in questions if not q.unanswerable and q.gold]

    started = time.perf_counter()
    chunks, search = _BUILDERS[name](articles)
    build_s = time.perf_counter() - started

    if answerable:
        search(answerable[0].question)  # warm-up: first-call costs (lazy loads, allocations) are not latency
    ranks, latencies = [], []
    for question in answerable:
        started = time.perf_counter()
        hits = search(question.question)
        latencies.append((time.perf_counter() - started) * 1000)
        ranks.append(first_answer_rank(hits, question))

    count = len(answerable)
    return {
        "peer": name,
        "set": set_name or Path(questions_path).stem,
        "questions": count,
        "r_at_1": sum(1 for r in ranks if r == 1) / count if count else 0.0,
        "r_at_5": sum(1 for r in ranks if r is not None and r <= 5) / count if count else 0.0,
        "mrr_at_10": sum(1.0 / r for r in ranks if r) / count if count else 0.0,
        "build_s": round(build_s, 2),
        "chunks": len(chunks),
        "p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
        "p95_ms": round(percentile(latencies, 0.95), 2) if latencies else 0.0,
    }


# ----------------------------------------------------------------------- CLI


def parse_set(spec: str) -> tuple[str, Path, Path]:
    name, sep, paths = spec.partition("=")
    corpus, sep2, questions = paths.rpartition(":")
    if not (sep and sep2 and name and corpus and questions):
        raise argparse.ArgumentTypeError(f"--set wants NAME=CORPUS_DIR:QUESTIONS_FILE, got {spec!r}")
    return name, Path(corpus), Path(questions)


def line(result: dict) -> str:
    return (
        f"{result['peer']:12s} {result['set']:15s} n={result['questions']:<5d} "
        f"R@1 {result['r_at_1']:.3f}  R@5 {result['r_at_5']:.3f}  MRR@10 {result['mrr_at_10']:.3f}  "
        f"build {result['build_s']:7.1f} s  chunks {result['chunks']:5d}  "
        f"p50 {result['p50_ms']:7.1f} ms  p95 {result['p95_ms']:7.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="sets", action="append", type=parse_set, metavar="NAME=CORPUS_DIR:QUESTIONS_FILE")
    parser.add_argument("--peer", choices=(*PEERS, "all"), default="all")
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="also write all results as a JSON list")
    parser.add_argument("--limit", type=int, help="only the first N questions of each set (smoke runs)")
    args = parser.parse_args(argv)

    sets = args.sets or [(name, ROOT / corpus, ROOT / questions) for name, corpus, questions in DEFAULT_SETS]
    peers = PEERS if args.peer == "all" else (args.peer,)
    results = []
    for set_name, corpus, questions in sets:
        if not corpus.is_dir() or not questions.is_file():
            print(
                f"skipping set {set_name}: {corpus if not corpus.is_dir() else questions} is missing", file=sys.stderr
            )
            continue
        for peer in peers:
            result = run_peer(peer, corpus, questions, limit=args.limit, set_name=set_name)
            results.append(result)
            print(line(result), flush=True)
            if args.json:
                # Rewritten after every result: a full run takes many minutes, and an
                # interrupted one should still leave what it measured.
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
