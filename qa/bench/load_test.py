"""Load test of the web chat's JSON endpoint: one user, then many at once, then many
at once while the index is rebuilt from scratch in the same server.

    python scripts/load_test.py                     # starts app.py on a copy of corpus/ and index/
    python scripts/load_test.py --url http://127.0.0.1:7860/ --no-rebuild
    python scripts/load_test.py --via gradio        # through gradio_client's /search instead

By default the server is started here (`python app.py`, QA_RATE_LIMIT=0 because
every client comes from 127.0.0.1, one torch thread as in docs/speed.md's figures) on
copies of the corpus and index folders, so rebuilds never touch the repository's.
Every answer must be HTTP 200 with passages or a verdict and no error; anything else
counts as an error. Prints a table and, with --json, the figures as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from qa.eval.checkout import ROOT as REPO
from qa.eval.timing import percentile

QUESTION_FILES = [
    REPO / "eval" / "dev_questions.jsonl",
    REPO / "eval" / "extra_questions.jsonl",
    REPO.parent / "shared" / "eval" / "dev_questions.jsonl",
]


def load_questions() -> list[str]:
    """The dev and extra questions (answerable and not, three scripts), each once."""
    questions: list[str] = []
    for path in QUESTION_FILES:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    questions.append(json.loads(line)["q"])
    unique = list(dict.fromkeys(questions))
    if not unique:
        raise SystemExit("no question files found (eval/*.jsonl)")
    return unique


# -- clients --------------------------------------------------------------------------------


class HttpClient:
    """POST /api/ask over one kept-alive connection, as a program would."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def ask(self, question: str) -> bool:
        body = json.dumps({"question": question}).encode("utf-8")
        try:
            self.connection.request("POST", "/api/ask", body, {"Content-Type": "application/json"})
            response = self.connection.getresponse()
            data = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError):
            self.connection.close()
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            return False
        return response.status == 200 and not data.get("error") and data.get("verdict") is not None


class GradioClient:
    """gradio_client's /search endpoint (the same JSON through gradio's queue)."""

    def __init__(self, url: str):
        from gradio_client import Client

        self.client = Client(url, verbose=False)

    def ask(self, question: str) -> bool:
        try:
            data = self.client.predict(question, api_name="/search")
        except Exception:
            return False
        return not data.get("error") and data.get("verdict") is not None


def run_clients(make_client, questions: list[str], clients: int, per_client: int) -> dict:
    """`clients` threads, each asking `per_client` questions back to back (each starts at
    another place in the list, so questions in flight together differ)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)

    def work(offset: int) -> None:
        client = make_client()
        mine, failed = [], 0
        start_gate.wait()
        for i in range(per_client):
            question = questions[(offset + i) % len(questions)]
            began = time.perf_counter()
            ok = client.ask(question)
            mine.append((time.perf_counter() - began) * 1000)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=work, args=(c * len(questions) // clients,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return summarise(latencies, errors[0], elapsed)


def summarise(latencies: list[float], errors: int, elapsed: float) -> dict:
    ordered = sorted(latencies)
    return {
        "questions": len(ordered),
        "errors": errors,
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(percentile(ordered, 0.95), 1),
        "p99_ms": round(percentile(ordered, 0.99), 1),
        "max_ms": round(ordered[-1], 1),
        "questions_per_s": round(len(ordered) / elapsed, 1),
    }


# -- the server -------------------------------------------------------------------------------


def _get_json(url: str, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def start_server(
    workdir: Path, corpus: Path = REPO / "corpus", index: Path = REPO / "index"
) -> tuple[subprocess.Popen, str]:
    """app.py on copies of `corpus` and `index` (when built) in `workdir`; returns once it answers."""
    shutil.copytree(corpus, workdir / "corpus")
    if index.exists():
        shutil.copytree(index, workdir / "index")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        QA_CORPUS_DIR=str(workdir / "corpus"),
        QA_INDEX_DIR=str(workdir / "index"),
        QA_PORT=str(port),
        QA_HOST="127.0.0.1",
        QA_RATE_LIMIT="0",
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        HF_HUB_OFFLINE="1",
    )
    log = open(workdir / "server.log", "w")
    server = subprocess.Popen([sys.executable, str(REPO / "app.py")], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped; see {workdir / 'server.log'}")
        try:
            if _get_json(url, "/api/status")[0] == 200:
                return server, url
        except OSError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit("the server did not start within 300 s")


class Rebuilder(threading.Thread):
    """Rebuilds the index from scratch in the server, one after another, until stopped."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.finished = 0
        self.failed = 0
        self.seconds: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.perf_counter()
            code, _ = _get_json(self.url, "/api/rebuild", "POST", {"full": True})
            if code not in (202, 409):
                self.failed += 1
                return
            while True:
                time.sleep(0.2)
                rebuild = _get_json(self.url, "/api/status")[1].get("rebuild", {})
                if not rebuild.get("running"):
                    break
            if rebuild.get("error"):
                self.failed += 1
            else:
                self.finished += 1
                self.seconds.append(time.perf_counter() - began)


# -- the bench's section ------------------------------------------------------------------------


def measure_users(users: int, per_user: int, corpus: Path, index: Path) -> dict:
    """Issue 19's many-users goals from one server (app.py on copies of `corpus` and
    `index`): one user asking `per_user` questions back to back, then `users` users at
    once asking as many each; their throughputs' ratio, the errors, and the p95 against
    the queueing bound (users / throughput: how long a question waits when every user
    always has one in flight). scripts/bench.py's "users" section."""
    questions = load_questions()
    workdir = Path(tempfile.mkdtemp(prefix="qa-bench-users-"))
    try:
        server, url = start_server(workdir, corpus, index)
        try:
            run_clients(lambda: HttpClient(url), questions, 1, 20)  # warm-up: every path loaded
            single = run_clients(lambda: HttpClient(url), questions, 1, per_user)
            many = run_clients(lambda: HttpClient(url), questions, users, per_user)
            batching = _get_json(url, "/api/status")[1].get("batching")
        finally:
            server.terminate()
            server.wait(30)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    bound_ms = users / many["questions_per_s"] * 1000
    return {
        "users": users,
        "questions_per_user": per_user,
        "distinct_questions": len(questions),
        "single": single,
        "concurrent": many,
        "batching": batching,
        "throughput_over_single": round(many["questions_per_s"] / single["questions_per_s"], 3),
        "errors": single["errors"] + many["errors"],
        "queueing_bound_ms": round(bound_ms, 1),
        "p95_over_queueing_bound": round(many["p95_ms"] / bound_ms, 3),
    }


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start app.py on copies of corpus/ and index/)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=50, help="questions per client")
    parser.add_argument("--via", choices=("http", "gradio"), default="http")
    parser.add_argument("--no-rebuild", action="store_true", help="skip the run during a rebuild")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    questions = load_questions()
    make = (lambda: HttpClient(url)) if args.via == "http" else (lambda: GradioClient(url))
    server, workdir = None, None
    if args.url:
        url = args.url
    else:
        workdir = Path(tempfile.mkdtemp(prefix="qa-load-"))
        server, url = start_server(workdir)
    try:
        run_clients(make, questions, 1, 20)  # warm-up: every code path loaded, caches filled
        figures = {"via": args.via, "distinct_questions": len(questions), "cpus": os.cpu_count()}
        figures["single"] = run_clients(make, questions, 1, args.questions)
        figures["concurrent"] = run_clients(make, questions, args.clients, args.questions)
        if not args.no_rebuild:
            rebuilder = Rebuilder(url)
            rebuilder.start()
            time.sleep(1.0)  # the rebuild is under way before the first question
            figures["during_rebuild"] = run_clients(make, questions, args.clients, args.questions)
            rebuilder.stop.set()
            rebuilder.join(600)
            figures["during_rebuild"].update(
                rebuilds_finished=rebuilder.finished,
                rebuilds_failed=rebuilder.failed,
                rebuild_s=round(statistics.median(rebuilder.seconds), 1) if rebuilder.seconds else None,
            )
        figures["batching"] = _get_json(url, "/api/status")[1].get("batching")
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
            shutil.rmtree(workdir, ignore_errors=True)

    single_p50 = figures["single"]["p50_ms"]
    for name in ("concurrent", "during_rebuild"):
        if name in figures:
            figures[name]["p95_over_single_p50"] = round(figures[name]["p95_ms"] / single_p50, 2)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=2))
    else:
        print(
            f"{'run':<16} {'questions':>9} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'q/s':>6} {'p95/single p50':>15}"
        )
        for name in ("single", "concurrent", "during_rebuild"):
            if name in figures:
                f = figures[name]
                ratio = f.get("p95_over_single_p50", "")
                print(
                    f"{name:<16} {f['questions']:>9} {f['errors']:>6} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['p99_ms']:>8} "
                    f"{f['questions_per_s']:>6} {ratio:>15}"
                )
        if "during_rebuild" in figures:
            f = figures["during_rebuild"]
            print(
                f"rebuilds during the run: {f['rebuilds_finished']} finished, {f['rebuilds_failed']} failed, median {f['rebuild_s']} s"
            )
        if figures.get("batching"):
            print(f"micro-batches: {figures['batching']}")
    failed = sum(figures[name]["errors"] for name in ("single", "concurrent", "during_rebuild") if name in figures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
