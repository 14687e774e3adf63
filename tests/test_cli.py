"""The `qa` command as a user runs it: a subprocess, settings from QA_* variables.

The error cases fail before the model loads, so they run in well under a second
each; the rest use the session's real index (conftest.py `real_index`) and load
the model once per call (about 8-15 s), so there are few of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

MEMORANDA = "知识城与新加坡签署了多少份合作备忘录？"


def qa_command() -> list[str]:
    script = Path(sys.executable).with_name("qa")
    if script.is_file():
        return [str(script)]
    found = shutil.which("qa")
    return [found] if found else [sys.executable, "-m", "qa.cli"]


def run_qa(*args: str, cwd: Path, corpus: Path, index: Path, cache: Path | None = None, timeout: int = 180):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_CORPUS_DIR=str(corpus), QA_INDEX_DIR=str(index), PYTHONIOENCODING="utf-8")
    if cache is not None:
        env["QA_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [*qa_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=timeout
    )


def run_real(real_index, tmp_path, *args: str, corpus: Path | None = None):
    return run_qa(
        *args,
        cwd=tmp_path,
        corpus=corpus or real_index.corpus_dir,
        index=real_index.index_dir,
        cache=real_index.settings.cache_dir,
    )


def assert_user_error(result, *words: str) -> str:
    """One `qa: error:` line on stderr, no traceback, exit status 2; returns the line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("qa: error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# ----------------------------------------------------------- mistakes a user can make


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("知识城与新加坡签署了81份合作备忘录。\n", encoding="utf-8")
    return corpus


def test_empty_question(tmp_path, tiny_corpus):
    for question in ("", "   "):
        result = run_qa("ask", question, cwd=tmp_path, corpus=tiny_corpus, index=tmp_path / "none")
        assert_user_error(result, "empty")


def test_question_over_the_length_limit(tmp_path, tiny_corpus):
    result = run_qa("ask", "问" * 501, cwd=tmp_path, corpus=tiny_corpus, index=tmp_path / "none")
    assert_user_error(result, "501", "500")


def test_ask_without_an_index_names_qa_build(tmp_path, tiny_corpus):
    empty = tmp_path / "no-index"
    result = run_qa("ask", MEMORANDA, cwd=tmp_path, corpus=tiny_corpus, index=empty)
    assert_user_error(result, "qa build", str(empty))


def test_an_index_path_that_is_a_file_is_one_line_for_ask_and_status(tmp_path, tiny_corpus):
    """Was a NotADirectoryError traceback (qa build already refused such a path)."""
    afile = tmp_path / "index.txt"
    afile.write_text("my notes\n", encoding="utf-8")
    result = run_qa("ask", MEMORANDA, cwd=tmp_path, corpus=tiny_corpus, index=afile)
    assert_user_error(result, "is a file, not an index folder", "QA_INDEX_DIR")
    status = run_qa("status", cwd=tmp_path, corpus=tiny_corpus, index=afile)
    assert status.returncode != 0 and "Traceback" not in status.stderr + status.stdout
    assert "is a file, not an index folder" in status.stdout + status.stderr
    assert afile.read_text(encoding="utf-8") == "my notes\n"  # left as it was


def test_build_with_a_missing_corpus(tmp_path):
    missing = tmp_path / "no-such-corpus"
    result = run_qa("build", "-q", cwd=tmp_path, corpus=missing, index=tmp_path / "index")
    assert_user_error(result, str(missing))
    assert not (tmp_path / "index").exists()


def test_eval_on_a_missing_file(tmp_path, tiny_corpus):
    missing = tmp_path / "no-questions.jsonl"
    result = run_qa("eval", str(missing), cwd=tmp_path, corpus=tiny_corpus, index=tmp_path / "none")
    assert_user_error(result, str(missing))


@pytest.mark.parametrize(
    "content, why",
    [
        (b"[1, 2, 3]\n", "a JSON object is needed, got list"),
        ('{"id": "a", "q": "问题？", "gold": [5]}\n'.encode(), "gold must be a list of answer strings"),
        # A string was read character by character: every metric silently wrong.
        ('{"id": "a", "q": "问题？", "gold": "三百"}\n'.encode(), "gold must be a list of answer strings"),
        (b'{"id": "a", "q": 7}\n', "q must be the question's text"),
        (b"\xff\xfe\x00garbage", "is not UTF-8 text"),
    ],
)
def test_eval_of_a_malformed_question_file_says_what_is_wrong(tmp_path, tiny_corpus, content, why):
    path = tmp_path / "questions.jsonl"
    path.write_bytes(content)
    result = run_qa("eval", str(path), cwd=tmp_path, corpus=tiny_corpus, index=tmp_path / "none")
    assert_user_error(result, str(path), why)


@pytest.mark.parametrize("k", ["0", "51"])
def test_k_out_of_range(tmp_path, tiny_corpus, k):
    result = run_qa("ask", MEMORANDA, "-k", k, cwd=tmp_path, corpus=tiny_corpus, index=tmp_path / "none")
    assert_user_error(result, "k", k)


# ----------------------------------------------------------------------- status


@pytest.mark.model
def test_status_ready_then_stale(real_index, tmp_path):
    result = run_real(real_index, tmp_path, "status")
    assert result.returncode == 0, result.stderr
    summary = real_index.summary
    assert "ready" in result.stdout
    assert f"{summary.articles} articles" in result.stdout
    assert f"{summary.chunks} passages" in result.stdout

    # A copy of the corpus, so the shared fixture stays as built.
    corpus = tmp_path / "corpus-copy"
    shutil.copytree(real_index.corpus_dir, corpus)
    article = corpus / "kunshan-high-tech-zone-safety.txt"
    os.utime(article)  # touched, same bytes: the index still matches
    assert run_real(real_index, tmp_path, "status", corpus=corpus).returncode == 0

    with open(article, "a", encoding="utf-8") as out:
        out.write("\n补充一句新的内容。\n")
    result = run_real(real_index, tmp_path, "status", corpus=corpus)
    assert result.returncode != 0
    assert "stale" in result.stdout
    assert "kunshan-high-tech-zone-safety.txt" in result.stdout and "qa build" in result.stdout

    as_json = json.loads(run_real(real_index, tmp_path, "status", "--json", corpus=corpus).stdout)
    assert as_json["state"] == "stale"
    assert as_json["changes"] == ["~kunshan-high-tech-zone-safety.txt"]


# -------------------------------------------------------------------------- ask


@pytest.mark.model
def test_ask_json(real_index, tmp_path):
    result = run_real(real_index, tmp_path, "ask", MEMORANDA, "--json", "-k", "3")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["found"] is True
    # The answer first: only the passages that answer (here one); --all lists all k.
    assert [p["evidence"] for p in payload["passages"]] == ["answers"]
    listed = json.loads(run_real(real_index, tmp_path, "ask", MEMORANDA, "--json", "-k", "3", "--all").stdout)
    assert len(listed["passages"]) == 3 and {p["evidence"] for p in listed["passages"]} <= {"answers", "related"}
    for passage in listed["passages"]:
        assert {"text", "score", "title", "source", "start", "end", "citation"} <= passage.keys()
        assert isinstance(passage["score"], float)
        assert passage["end"] - passage["start"] == len(passage["text"])
    first = payload["passages"][0]
    assert "81份" in first["text"]
    assert first["source"] == "knowledge-city-new-productive-forces-2024.txt"
    assert first["citation"].startswith("《") and first["source"] in first["citation"]


@pytest.mark.model
@pytest.mark.model
def test_terminal_codes_in_a_title_or_file_name_are_printed_as_text(tmp_path, real_index):
    """An article's title and file name reach the terminal in every citation: an ESC
    sequence there recoloured, retitled or cleared the user's terminal."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "x\x1b[2Jy.txt").write_text(
        "---\ntitle: 龙舟\x1b[31m红色\x1b]0;pwned\x07\n---\n南宁今天举行了龙舟比赛，共有八十支队伍参加。\n",
        encoding="utf-8",
    )
    index = tmp_path / "index"
    cache = real_index.settings.cache_dir
    built = run_qa("build", "-q", cwd=tmp_path, corpus=corpus, index=index, cache=cache)
    assert built.returncode == 0, built.stderr
    result = run_qa("ask", "龙舟比赛有多少支队伍参加？", cwd=tmp_path, corpus=corpus, index=index, cache=cache)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "龙舟\\x1b[31m红色" in result.stdout and "x\\x1b[2Jy.txt" in result.stdout
    assert "八十支队伍" in result.stdout


def test_ask_plain(real_index, tmp_path):
    result = run_real(real_index, tmp_path, "ask", MEMORANDA, "-k", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[1] 《" in out and "(answers the question)" in out and "score" not in out and "[3]" not in out
    assert "knowledge-city-new-productive-forces-2024.txt" in out and "¶" in out
    # Not a terminal: the answering sentence is wrapped in 【】.
    start = out.index("【")
    highlight = out[start + 1 : out.index("】", start)]
    assert "81份合作備忘錄" in highlight
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------- eval


@pytest.fixture
def tiny_questions(tmp_path) -> Path:
    records = [
        # Answered by the first passage (81份合作備忘錄, in traditional script).
        {"id": "t1", "lang": "zh-Hans", "q": MEMORANDA, "gold": ["81份合作备忘录"]},
        # A real question whose gold string occurs nowhere in the corpus: never matched.
        {"id": "t2", "lang": "zh-Hans", "q": "网格工作站一共发现了多少处隐患？", "gold": ["这串字不在任何文章里"]},
        {"id": "t3", "lang": "zh-Hans", "q": "今天北京的天气怎么样？", "gold": [], "unanswerable": True},
    ]
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


@pytest.mark.model
def test_eval_prints_every_mode(real_index, tmp_path, tiny_questions):
    result = run_real(real_index, tmp_path, "eval", str(tiny_questions))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 questions")
    for mode in ("hybrid", "dense", "lexical"):
        line = next(line for line in lines if line.startswith(mode))
        for label in ("R@1", "R@5", "MRR@10", "unanswerable flagged", "answerable hidden", "p50"):
            assert label in line, (label, line)
    hybrid = next(line for line in lines if line.startswith("hybrid"))
    assert "R@1 0.500" in hybrid and "R@5 0.500" in hybrid and "MRR@10 0.500" in hybrid
    assert "unanswerable flagged 1.00" in hybrid


@pytest.mark.model
def test_eval_json_numbers_by_hand(real_index, tmp_path, tiny_questions):
    result = run_real(real_index, tmp_path, "eval", str(tiny_questions), "--json", "--mode", "hybrid")
    assert result.returncode == 0, result.stderr
    (metrics,) = json.loads(result.stdout)
    # t1 answered at rank 1, t2 never: R@1 = R@5 = MRR@10 = (1 + 0) / 2.
    assert metrics["mode"] == "hybrid"
    assert metrics["answerable"] == 2 and metrics["unanswerable"] == 1
    assert metrics["recall_at_1"] == pytest.approx(0.5)
    assert metrics["recall_at_5"] == pytest.approx(0.5)
    assert metrics["mrr_at_10"] == pytest.approx(0.5)
    assert metrics["unanswerable_flagged"] == pytest.approx(1.0)  # the weather question
    assert metrics["answerable_hidden"] == pytest.approx(0.0)  # both real questions are shown
    assert metrics["p50_ms"] > 0


@pytest.mark.model
def test_eval_of_a_benchmark_folder_indexes_it_once_and_applies_the_source_rule(real_index, tmp_path):

    bench = tmp_path / "bench"
    shutil.copytree(REPO / "corpus", bench / "corpus")
    own = "knowledge-city-new-productive-forces-2024.txt"
    records = [
        {"id": "own", "q": MEMORANDA, "gold": ["81份合作备忘录"], "source": own},
        # The same question said to come from another article: its gold string occurs
        # only in `own`, so under the source rule it is never answered.
        {"id": "other", "q": MEMORANDA, "gold": ["81份合作备忘录"], "source": "luoyang-science-bureau.txt"},
    ]
    (bench / "questions.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8"
    )
    cache = tmp_path / "cache"
    shutil.copytree(real_index.settings.cache_dir / "models", cache / "models")  # the converted model, not the index

    first = run_qa(
        "eval",
        str(bench),
        "--json",
        "--mode",
        "hybrid",
        cwd=tmp_path,
        corpus=tmp_path / "x",
        index=tmp_path / "y",
        cache=cache,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr
    (metrics,) = json.loads(first.stdout)
    assert metrics["recall_at_1"] == pytest.approx(0.5) and metrics["answerable"] == 2
    assert list((cache / "bench").glob("bench-*/manifest.json")), "the benchmark is indexed in the cache"
    assert not (tmp_path / "y").exists()  # the user's own index is not touched

    again = run_qa(
        "eval", str(bench), "--mode", "hybrid", cwd=tmp_path, corpus=tmp_path / "x", index=tmp_path / "y", cache=cache
    )
    assert again.returncode == 0, again.stderr
    assert "building" not in again.stderr  # indexed once, reused while the corpus is unchanged
    assert "R@1 0.500" in again.stdout


# ----------------------------------------------------------- version, module, config file


def run_bare(*args: str, cwd: Path, env: dict | None = None, module: bool = False):
    """The command with no QA_* variable set (only those in `env`)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    clean.update(env or {}, PYTHONIOENCODING="utf-8")
    command = [sys.executable, "-m", "qa"] if module else qa_command()
    return subprocess.run(
        [*command, *args], cwd=cwd, env=clean, capture_output=True, text=True, encoding="utf-8", timeout=120
    )


def test_version_and_python_dash_m(tmp_path):
    import qa

    result = run_bare("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"qa {qa.__version__}", result
    helped = run_bare("--help", cwd=tmp_path, module=True)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: qa ")
    for command in ("build", "ask", "status", "eval", "serve"):
        assert command in helped.stdout


def _status(result) -> dict:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_a_qa_toml_beside_the_corpus_changes_settings(tmp_path):
    project = tmp_path / "archive"
    (project / "news").mkdir(parents=True)
    (project / "news" / "a.txt").write_text("知识城与新加坡签署了81份合作备忘录。\n", encoding="utf-8")
    (project / "qa.toml").write_text(
        '# beside the corpus\ncorpus_dir = "news"\nindex_dir = "built"\n\n[qa]\nmax_question_chars = 20\n',
        encoding="utf-8",
    )
    status = _status(run_bare("status", "--json", cwd=project))
    assert status["corpus_dir"] == str(project / "news")
    assert status["index_dir"] == str(project / "built")
    assert_user_error(run_bare("ask", "问" * 21, cwd=project), "21", "20")
    # From elsewhere, with --config: folders stay relative to the file, not to where qa runs.
    status = _status(run_bare("--config", str(project / "qa.toml"), "status", "--json", cwd=tmp_path))
    assert status["corpus_dir"] == str(project / "news")
    # A QA_* variable still wins over the file, and a flag over both.
    status = _status(run_bare("status", "--json", cwd=project, env={"QA_INDEX_DIR": str(tmp_path / "env-index")}))
    assert status["index_dir"] == str(tmp_path / "env-index")
    status = _status(run_bare("--index", str(tmp_path / "flag"), "status", "--json", cwd=project))
    assert status["index_dir"] == str(tmp_path / "flag")


@pytest.mark.parametrize(
    "text, words",
    [
        ("chunk_sise = 300\n", ["qa.toml", "chunk_sise"]),
        ("top_k = 99\n", ["qa.toml", "top_k", "50"]),
        ("corpus_dir = [1, 2]\n", ["qa.toml", "corpus_dir"]),
        ('corpus_dir = "unclosed\n', ["qa.toml", "TOML"]),
        ("qa = 5\n", ["qa.toml", "[qa]"]),
        ('index_dir = ""\n', ["qa.toml", "index_dir", "folder of its own"]),
        ("index_dir = 5\n", ["qa.toml", "index_dir", "text"]),
        ('corpus_dir = "~nosuchuser-qa/x"\n', ["qa.toml", "corpus_dir", "full path"]),
        ("chunk_size = inf\n", ["qa.toml", "chunk_size", "whole number"]),
        ("chunk_size = 200.5\n", ["qa.toml", "chunk_size", "whole number"]),
        ("top_k = true\n", ["qa.toml", "top_k", "whole number"]),
        ("embed_model = 5\n", ["qa.toml", "embed_model", "text"]),
        ("device = 1979-05-27\n", ["qa.toml", "device", "text"]),
        ('index_dir = "a\\u0000b"\n', ["qa.toml", "index_dir", "NUL"]),
        ("top_k = 3\n[qa]\ntop_k = 4\n", ["qa.toml", "top_k", "twice"]),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", ["qa.toml"]),
        ('port = "eighty"\n', ["qa.toml", "port", "eighty"]),
    ],
)
def test_a_bad_config_file_is_one_line_naming_it(tmp_path, text, words):
    (tmp_path / "qa.toml").write_text(text, encoding="utf-8")
    assert_user_error(run_bare("status", cwd=tmp_path), *words)


def test_a_missing_config_file_named_by_flag_is_one_line(tmp_path):
    missing = tmp_path / "nowhere.toml"
    assert_user_error(run_bare("--config", str(missing), "status", cwd=tmp_path), str(missing))


def test_a_bom_at_the_start_of_the_config_file_is_fine(tmp_path):
    (tmp_path / "qa.toml").write_bytes('\ufefftop_k = 3\nindex_dir = "built"\n'.encode())
    status = _status(run_bare("status", "--json", cwd=tmp_path))
    assert status["index_dir"] == str(tmp_path / "built")


def test_an_index_folder_that_holds_other_files_is_never_built_into(tmp_path):
    """`index_dir = "."` names the project folder itself: a build would replace it whole,
    corpus and config included. It is refused, and nothing is touched."""
    project = tmp_path / "archive"
    (project / "corpus").mkdir(parents=True)
    (project / "corpus" / "a.txt").write_text("知识城与新加坡签署了81份合作备忘录。\n", encoding="utf-8")
    (project / "notes.txt").write_text("keep me", encoding="utf-8")
    (project / "qa.toml").write_text('index_dir = "."\n', encoding="utf-8")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    assert_user_error(run_bare("build", "-q", cwd=project), str(project), "not an index")
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
    assert (project / "notes.txt").read_text(encoding="utf-8") == "keep me"
