"""How long an article change takes to reach the index, against a full build.

Copies a corpus (default: the drcd-dev benchmark's, 900 paragraphs as articles) to
a temporary folder, builds it in full with the real model, then adds one article,
changes one and removes one, building after each, and prints the seconds and texts
embedded for each build, with the ratio to the full build.

    .venv/bin/python scripts/bench_update.py [--corpus ../shared/bench/drcd-dev/corpus] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from qa.eval.checkout import ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "bench" / "drcd-dev" / "corpus"))
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    from qa.embed.factory import load_encoder
    from qa.index.build import build_index
    from qa.settings import Settings

    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "corpus"
        shutil.copytree(args.corpus, corpus)
        settings = Settings.load(corpus_dir=corpus, index_dir=Path(work) / "index")
        encoder = load_encoder(settings)  # loaded once, outside every timing
        files = sorted(p for p in corpus.rglob("*") if p.is_file())
        rows = []

        def timed(step: str, **options) -> None:
            started = time.perf_counter()
            summary = build_index(settings, encoder=encoder, **options)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "step": step,
                    "seconds": round(seconds, 2),
                    "embedded": summary.embedded,
                    "articles": summary.articles,
                    "passages": summary.chunks,
                }
            )
            print(
                f"{step:<28} {seconds:8.1f} s  {summary.embedded:6d} texts embedded  ({summary.articles} articles)",
                flush=True,
            )

        timed("full build", full=True)
        added = corpus / "zz-added-article.txt"
        added.write_text(files[0].read_text(encoding="utf-8") + "\n這是新增的一篇文章的補充段落。\n", encoding="utf-8")
        timed("one article added")
        with open(files[1], "a", encoding="utf-8") as out:
            out.write("\n這是修改後新增的一句話。\n")
        timed("one article changed")
        files[2].unlink()
        timed("one article removed")
        timed("nothing changed")

    full = rows[0]["seconds"]
    for row in rows:
        row["ratio_to_full"] = round(row["seconds"] / full, 4)
    print("\n| build | seconds | texts embedded | × full build |\n| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['step']} | {row['seconds']:.1f} | {row['embedded']} | {row['ratio_to_full']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"corpus": args.corpus, "builds": rows}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
