"""Measure this project and its peers on every evaluation set in one run; print the table of docs/measurements.md.

Sets: the seed dev questions and our extra ones (the bundled corpus), and every
benchmark folder in ../shared/bench (cmrc2018-trial, drcd-dev, ats-news-dev: a folder
with `corpus/` and `questions.jsonl` is found, read where it lies and never copied).
For each set, `qa eval`'s code runs the
three modes (each benchmark indexed once in the cache), and qa/eval/peers.py runs the
plain LangChain recipe and bm25s+jieba on the same articles and questions. Per-question
results (with the judge's features) go to .cache/benchmarks/SET.json, which
qa/eval/fit_judge.py reads; the table and all figures to .cache/benchmarks/summary.json.

Usage: python scripts/benchmarks.py [--sets dev,extra,cmrc2018-trial,drcd-dev,ats-news-dev] [--modes hybrid,dense,lexical]
                                    [--no-peers] [--limit N] [--table]
Sets may run in separate processes (each writes its own file); `--table` prints the
table from every set's latest file without measuring anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from qa.eval.checkout import ROOT
from qa.eval.evaluate import benchmark_settings, ensure_index, evaluate, load_questions
from qa.search.retriever import Retriever
from qa.settings import Settings

SHARED = ROOT.parent / "shared"
OUT = ROOT / ".cache" / "benchmarks"


def sets(settings: Settings) -> list[tuple[str, Settings, Path]]:
    """(name, settings, questions file) for each set that is present."""
    found = []
    dev = ROOT / "eval" / "dev_questions.jsonl"
    bundled = replace(settings, corpus_dir=ROOT / "corpus", index_dir=ROOT / "index")
    if dev.exists():
        found.append(("dev (seeds)", bundled, dev))
    # Questions we wrote about the bundled articles: a check that choices carry over,
    # never used to fit anything (the judge is fitted on the shared sets only).
    found.append(("extra (ours)", bundled, ROOT / "eval" / "extra_questions.jsonl"))
    for folder in sorted((SHARED / "bench").glob("*/")):
        if (folder / "questions.jsonl").exists():
            bench_settings, questions = benchmark_settings(folder, settings)
            found.append((folder.name, bench_settings, questions))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="hybrid,dense,lexical")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--limit", type=int, default=0, help="first N questions of each set (smoke runs)")
    parser.add_argument("--sets", default="", help="comma-separated set names (default: all)")
    parser.add_argument("--table", action="store_true", help="only print the table from saved results")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.table:
        print(table(saved_summary()))
        return
    settings = Settings.load()
    wanted = set(filter(None, args.sets.split(",")))
    encoder = None
    for name, set_settings, questions_path in sets(settings):
        if wanted and name.split()[0] not in wanted:
            continue
        summary = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "sets": {}}
        questions = load_questions(questions_path)[: args.limit or None]
        if encoder is None:
            from qa.embed.factory import load_encoder

            encoder = load_encoder(set_settings)
        ensure_index(set_settings, encoder=encoder, log=lambda m: print(m, file=sys.stderr))
        retriever = Retriever.from_settings(set_settings, encoder=encoder)
        per_set = {"set": name, "questions": [], "metrics": {}}
        for mode in args.modes.split(","):
            metrics, results = evaluate(questions, retriever, mode)
            per_set["metrics"][mode] = metrics.to_dict()
            print(f"{name:16s} {metrics.line()}", flush=True)
            if mode == "hybrid":
                per_set["questions"] = [
                    {
                        "id": r.question.id,
                        "unanswerable": r.question.unanswerable,
                        "rank": r.first_answer_rank,
                        "verdict": r.verdict,
                        "probability": r.probability,
                        "features": r.features,
                    }
                    for r in results
                ]
        (OUT / f"{name.split()[0]}.json").write_text(json.dumps(per_set, ensure_ascii=False), encoding="utf-8")
        summary["sets"][name] = {"metrics": per_set["metrics"], "peers": {}}
        if not args.no_peers:
            from qa.eval.peers import PEERS, run_peer

            for peer in PEERS:
                result = run_peer(peer, Path(set_settings.corpus_dir), questions_path, limit=args.limit or None)
                summary["sets"][name]["peers"][peer] = result
                print(
                    f"{name:16s} peer {peer:12s} R@1 {result['r_at_1']:.3f}  R@5 {result['r_at_5']:.3f}  "
                    f"MRR@10 {result['mrr_at_10']:.3f}  p50 {result['p50_ms']:.0f} ms",
                    flush=True,
                )
        summary_file = OUT / f"summary-{name.split()[0]}.json"
        summary_file.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    print(table(saved_summary()))


def saved_summary() -> dict:
    """Every set's latest results, in the order `sets` lists them."""
    merged = {"sets": {}}
    order = ["dev", "extra", "cmrc2018-trial", "drcd-dev", "ats-news-dev"]
    files = sorted(OUT.glob("summary-*.json"), key=lambda p: (order + [p.stem[8:]]).index(p.stem[8:]))
    for path in files:
        merged["sets"].update(json.loads(path.read_text(encoding="utf-8"))["sets"])
    return merged


def table(summary: dict) -> str:
    lines = [
        "| set | system | R@1 | R@5 | MRR@10 | unanswerable flagged | answerable hidden | p50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, data in summary["sets"].items():
        for mode, m in data["metrics"].items():
            flagged = f"{m['unanswerable_flagged']:.2f}" if m["unanswerable"] else "-"
            lines.append(
                f"| {name} | this project, {mode} | {m['recall_at_1']:.3f} | {m['recall_at_5']:.3f} | "
                f"{m['mrr_at_10']:.3f} | {flagged} | {m['answerable_hidden']:.3f} | {m['p50_ms']:.1f} |"
            )
        for peer, p in data["peers"].items():
            lines.append(
                f"| {name} | {peer} | {p['r_at_1']:.3f} | {p['r_at_5']:.3f} | {p['mrr_at_10']:.3f} | - | - | {p['p50_ms']:.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
