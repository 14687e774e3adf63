"""qa/eval/peers.py scores a peer with the project's rule: gold string in the chunk, from the question's article."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ARTICLES = {
    "east-lake.txt": (
        "东湖科技园去年成绩单",
        "东湖科技园2019年新引进企业一百二十家，园区总产值达到八百亿元。园区负责人表示，明年将继续扩大招商规模。",
    ),
    "west-hill-port.txt": (
        "西山港口吞吐量创新高",
        "西山港口2019年完成集装箱吞吐量三百万标箱，同比增长百分之十二。港口集团计划新建两个深水泊位。",
    ),
    "south-lake-park.txt": (
        "南湖公园改造完工",
        "南湖公园改造工程于今年五月完工，新增绿地面积五万平方米，市民可免费入园游览。",
    ),
}


def _peers():
    from qa.eval import peers

    return peers


def _write_questions(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_bm25s_jieba_peer_ranks_the_right_article_and_checks_source(tmp_path):
    pytest.importorskip("bm25s")
    pytest.importorskip("jieba")
    peers = _peers()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, (title, text) in ARTICLES.items():
        (corpus / name).write_text(f"---\ntitle: {title}\ndate: 2020-01-15\n---\n{text}\n", encoding="utf-8")

    questions = _write_questions(
        tmp_path / "q.jsonl",
        [
            {"id": "a", "q": "东湖科技园新引进了多少家企业？", "gold": ["一百二十家"], "source": "east-lake.txt"},
            {"id": "b", "q": "西山港口集装箱吞吐量是多少？", "gold": ["三百万标箱"], "source": "west-hill-port.txt"},
            # Skipped for recall: peers have no "nothing found" answer.
            {"id": "c", "q": "北海机场有几条跑道？", "gold": [], "unanswerable": True},
        ],
    )
    result = peers.run_peer("bm25s-jieba", corpus, questions)
    assert result["peer"] == "bm25s-jieba"
    assert result["questions"] == 2
    assert result["chunks"] == 3
    assert result["r_at_1"] == 1.0
    assert result["mrr_at_10"] == 1.0

    # "2019年" is in the top chunk (west-hill-port), but the question names an
    # article that does not hold it, so no chunk counts.
    wrong_source = _write_questions(
        tmp_path / "wrong.jsonl",
        [
            {
                "id": "d",
                "q": "西山港口哪一年完成集装箱吞吐量三百万标箱？",
                "gold": ["2019年"],
                "source": "south-lake-park.txt",
            },
        ],
    )
    result = peers.run_peer("bm25s-jieba", corpus, wrong_source)
    assert result["r_at_1"] == 0.0
    assert result["r_at_5"] == 0.0
    assert result["mrr_at_10"] == 0.0


@pytest.mark.model
def test_the_benchmarks_script_measures_every_bench_folder_beside_both_peers(tmp_path, monkeypatch, capsys):
    """A news folder dropped into shared/bench is measured in the same run as the
    project, by both peers, on the same questions (the script had stopped importing
    its peers)."""
    pytest.importorskip("langchain_community")
    from dataclasses import replace

    from qa.eval import benchmarks

    folder = tmp_path / "shared" / "bench" / "city-news"
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    for name, (title, text) in ARTICLES.items():
        (corpus / name).write_text(f"---\ntitle: {title}\ndate: 2020-01-15\n---\n{text}\n", encoding="utf-8")
    _write_questions(
        folder / "questions.jsonl",
        [
            {"id": "a", "q": "东湖科技园新引进了多少家企业？", "gold": ["一百二十家"], "source": "east-lake.txt"},
            {"id": "b", "q": "西山港口集装箱吞吐量是多少？", "gold": ["三百万标箱"], "source": "west-hill-port.txt"},
            {"id": "c", "q": "北海机场有几条跑道？", "gold": [], "unanswerable": True},
        ],
    )
    measured = benchmarks.benchmark_settings
    # The set's index in tmp_path; the model still comes from the usual cache.
    monkeypatch.setattr(
        benchmarks,
        "benchmark_settings",
        lambda f, s: (replace(measured(f, s)[0], index_dir=tmp_path / "index"), measured(f, s)[1]),
    )
    monkeypatch.setattr(benchmarks, "SHARED", tmp_path / "shared")
    monkeypatch.setattr(benchmarks, "OUT", tmp_path / "out")

    benchmarks.main(["--sets", "city-news", "--modes", "hybrid"])

    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| city-news |")]
    systems = [row.split("|")[2].strip() for row in rows]
    assert systems == ["this project, hybrid", "langchain", "bm25s-jieba"], rows
    hybrid = rows[0].split("|")
    assert hybrid[3].strip() == "1.000"  # R@1: both answerable questions answered first
    assert hybrid[6].strip() == "1.00"  # the unanswerable one is flagged
    saved = json.loads((tmp_path / "out" / "city-news.json").read_text(encoding="utf-8"))
    assert {q["id"] for q in saved["questions"]} == {"a", "b", "c"}
