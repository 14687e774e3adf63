"""Sweep query-time tuning values on every evaluation set, one index per set; print R@1/R@5/MRR.

Used to choose the values in qa/tuning.py across all sets at once (see docs/measurements.md, "How the
parameters were chosen"). Usage:
  python scripts/sweep.py context_chars=200,300,400,500,600 [--sets dev,cmrc2018-trial,drcd-dev] [--mode hybrid]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from qa.eval.benchmarks import sets
from qa.eval.checkout import ROOT
from qa.eval.evaluate import ensure_index, evaluate, load_questions
from qa.search.retriever import Retriever
from qa.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("values", help="NAME=V1,V2,... for a field of qa.tuning.Tuning")
    parser.add_argument("--sets", default="", help="comma-separated set names (default: all)")
    parser.add_argument("--mode", default="hybrid")
    args = parser.parse_args()
    name, _, values = args.values.partition("=")
    wanted = set(filter(None, args.sets.split(",")))
    from qa.embed.factory import load_encoder

    encoder = None
    results = {}
    for set_name, settings, questions_path in sets(Settings.load()):
        if wanted and set_name.split()[0] not in wanted:
            continue
        encoder = encoder or load_encoder(settings)
        ensure_index(settings, encoder=encoder)
        retriever = Retriever.from_settings(settings, encoder=encoder)
        questions = load_questions(questions_path)
        base = retriever.tuning
        for raw in values.split(","):
            value = type(getattr(base, name))(raw)
            retriever.tuning = replace(base, **{name: value})
            metrics, _ = evaluate(questions, retriever, args.mode)
            results.setdefault(set_name, {})[raw] = metrics.to_dict()
            print(
                f"{set_name:16s} {name}={raw:6s} R@1 {metrics.recall_at_1:.3f}  R@5 {metrics.recall_at_5:.3f}  "
                f"MRR@10 {metrics.mrr_at_10:.3f}  p50 {metrics.p50_ms:.0f} ms",
                flush=True,
            )
    out = ROOT / ".cache" / "sweeps"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
