"""The web chat and its JSON API against what a hostile client sends (issue 17): a real
server (uvicorn, FastAPI, gradio) on a free local port, spoken to over real sockets.
Every refusal is a clear one-line answer; nothing is lost.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from test_web import QUESTION, TopicEncoder, _corpus_copy, _free_port, tiny  # noqa: F401 - tiny is a fixture

from qa.errors import QuestionError, SettingsError
from qa.index.build import build_index

web = pytest.importorskip("qa.serve.web")
import qa.serve.limits  # noqa: E402
from qa.serve.limits import LOGIN_FREE_FAILURES, LOGIN_MAX_FAILURES, RateLimiter, WebSettings  # noqa: E402
from qa.serve.service import ChatService  # noqa: E402

AUTH = ("reader", "s3cret")


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def request(port, path, body: bytes | None = None, headers=None, method=None, timeout=30):
    """(status, headers, body text) of one request; error statuses are answers too."""
    call = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
        method=method,
    )
    try:
        with urllib.request.urlopen(call, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8")


def ask(port, body, headers=None):
    status, _, text = request(port, "/api/ask", json.dumps(body).encode(), headers)
    return status, json.loads(text)


def read_answer(connection: socket.socket) -> bytes:
    """What the server sends until it closes the connection (or goes quiet for 5 s)."""
    connection.settimeout(5)
    answer = b""
    try:
        while chunk := connection.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


def one_line_error(text: str) -> str:
    data = json.loads(text)
    assert isinstance(data["error"], str) and data["error"] and "\n" not in data["error"], text
    assert "Traceback" not in text and "detail" not in data
    return data["error"]


def _start(settings, web_settings):
    settings = replace(settings, port=_free_port())
    app = web.serve(settings, encoder=TopicEncoder(), web_settings=web_settings, block=False)
    return app, settings.port


@pytest.fixture(scope="module")
def open_server(tiny):  # noqa: F811 - the fixture imported above
    settings, _ = tiny
    app, port = _start(settings, WebSettings(rate_limit=0))
    yield port
    app.close()


@pytest.fixture(scope="module")
def locked_server(tiny):  # noqa: F811
    """A server with a login, a 1 MiB upload limit and a 1 s request deadline."""
    settings, _ = tiny
    app, port = _start(
        settings, WebSettings(auth=AUTH, rate_limit=0, max_upload_bytes=1024 * 1024, request_timeout_s=1.0)
    )
    yield port
    app.close()


# -- malformed requests: 400 and one line, never 422 or 500 (cases 9, 12, 13, 15) ------------


@pytest.mark.parametrize(
    "body, why",
    [
        (b'{"question": "\\ud800"}', "not valid Unicode"),  # a lone surrogate: was a 500 in plain text
        (b'{"question": "ok", "sources": ["\\udcff"]}', "not valid Unicode"),
        (b"{not json", "not valid JSON"),  # was FastAPI's 422 {"detail": [...]}
        (b'{"question": "\xff\xfe"}', "not valid JSON"),  # bytes that are not UTF-8
        (b"[1, 2]", "JSON object"),
        (b"", "JSON object"),
        (b'"just a string"', "JSON object"),
        (json.dumps({"question": QUESTION, "sources": 5}).encode(), "sources must be a list"),  # was 500
        (json.dumps({"question": QUESTION, "date_from": 5}).encode(), "date_from must be a date"),  # was 500
        (json.dumps({"question": QUESTION, "date_to": ["2024"]}).encode(), "date_to must be a date"),
        (json.dumps({"question": QUESTION, "date_from": "2024-13-45"}).encode(), "2024-13-45"),
        (json.dumps({"question": QUESTION, "date_from": "0000-00-00"}).encode(), "0000-00-00"),
        (json.dumps({"question": QUESTION, "date_to": "2024-02-30"}).encode(), "2024-02-30"),
        (json.dumps({"question": "？？！!...,，。"}).encode(), "only punctuation"),  # was "found" x5
        (b'{"question": 42}', "question must be text, got int"),  # was "Please type a question"
        (b'{"question": ["a"]}', "question must be text, got list"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # was a RecursionError, 500 in plain text
        (b'{"question": "ok", "history": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", "nested too deeply"),
    ],
)
def test_a_malformed_request_gets_400_and_one_line(open_server, body, why):
    status, _, text = request(open_server, "/api/ask", body)
    assert status == 400, text
    assert why in one_line_error(text)


@pytest.mark.parametrize(
    "body, why",
    [
        (b'{"full": "false"}', "full must be true or false"),  # a non-empty string: was a full rebuild
        (b'{"full": 0}', "full must be true or false"),
        (b'{"ful": true}', "unknown field 'ful'"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_a_malformed_rebuild_request_gets_400_and_starts_nothing(open_server, body, why):
    status, _, text = request(open_server, "/api/rebuild", body)
    assert status == 400, text
    assert why in one_line_error(text)
    status, _, text = request(open_server, "/api/status", method="GET")
    assert status == 200 and not json.loads(text)["rebuild"].get("running")


def gradio_search(port, raw_arguments: bytes) -> dict:
    """gradio's /search called over its plain HTTP protocol (POST, then the event's
    stream), with the arguments as raw JSON: gradio_client cannot send a lone surrogate."""
    status, _, text = request(port, "/gradio_api/call/search", b'{"data": ' + raw_arguments + b"}")
    assert status == 200, text
    event = json.loads(text)["event_id"]
    status, _, stream = request(port, f"/gradio_api/call/search/{event}", method="GET")
    events = stream.split("event: ")
    complete = next(part for part in events if part.startswith("complete"))
    return json.loads(complete.split("data: ", 1)[1])[0]


def test_a_malformed_gradio_search_gets_the_same_answer(open_server):
    rest = b', 5, "hybrid", null, "", "", null]'
    assert "not valid Unicode" in gradio_search(open_server, b'["\\ud800"' + rest)["error"]  # was gradio's own error
    assert "only punctuation" in gradio_search(open_server, '["？？！!..."'.encode() + rest)["error"]
    wrong = b'["x", 5, "hybrid", 5, "", "", null]'
    assert "sources must be a list" in gradio_search(open_server, wrong)["error"]


def test_a_question_of_only_punctuation_is_refused_in_the_chat_and_the_cli(tiny, tmp_path):  # noqa: F811
    from test_cli import assert_user_error, run_qa

    settings, retriever = tiny
    reply = web.respond("？？！!...,，。", [], settings=settings, retriever=retriever)
    assert "only punctuation" in reply and "《" not in reply
    result = run_qa("ask", "？？！!...,，。", cwd=tmp_path, corpus=settings.corpus_dir, index=settings.index_dir)
    assert_user_error(result, "only punctuation")


def test_bytes_that_are_not_utf8_on_the_command_line_are_one_line(tmp_path):
    import subprocess
    import sys

    from test_cli import assert_user_error, qa_command

    command = [os.fsencode(part) for part in qa_command()] + [b"ask", b"\xff\xfe?"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=120)
    text = subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode("utf-8")
    )
    assert_user_error(text, "argument 2", "not valid UTF-8")
    assert sys.executable  # the same interpreter's qa


# -- sizes: refused before they are read, never echoed (case 14) -------------------------------


def test_a_huge_body_is_refused_by_its_length_before_the_login_and_unread(locked_server):
    with socket.create_connection(("127.0.0.1", locked_server), timeout=10) as connection:
        started = time.monotonic()
        connection.sendall(
            b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n" + b"{" * 1000
        )
        head = read_answer(connection).decode("utf-8", "replace")
        assert time.monotonic() - started < 5  # answered without waiting for 50 MB
    assert head.startswith("HTTP/1.1 413") and "limit for a JSON request" in head


def test_a_body_streamed_past_the_limit_is_cut_off(locked_server):
    with socket.create_connection(("127.0.0.1", locked_server), timeout=10) as connection:
        connection.sendall(
            b"POST /api/ask HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + b"Authorization: "
            b"Basic " + base64.b64encode(b"reader:s3cret") + b"\r\n\r\n"
        )
        chunk = b"x" * 65536
        head = b""
        try:
            for _ in range(40):  # 2.5 MiB, past the 1 MiB limit
                connection.sendall(b"10000\r\n" + chunk + b"\r\n")
        except OSError:
            pass  # the server stopped reading and closed: that is the point
        head = read_answer(connection)
    assert head.startswith(b"HTTP/1.1 413") and b"limit for a JSON request" in head, head[:300]


def test_a_refused_question_is_not_echoed_whole(open_server):
    status, data = ask(open_server, {"question": "问" * 5000})
    assert status == 400 and "limit is 500" in data["error"]
    assert len(data["question"]) <= 101 and len(data["resolved_question"]) <= 101


# -- logins: slowed, then refused, per address (case 6) ----------------------------------------


def test_repeated_wrong_api_passwords_are_slowed_then_refused(locked_server):
    times = []
    for _ in range(LOGIN_MAX_FAILURES):
        started = time.monotonic()
        status, _ = ask(locked_server, {"question": QUESTION}, _basic("reader", "guess"))
        times.append(time.monotonic() - started)
        assert status == 401
    assert max(times[:LOGIN_FREE_FAILURES]) < 0.4  # a typo or two costs nothing
    assert times[-1] >= 1.5 and times[-1] > times[LOGIN_FREE_FAILURES]  # then each guess waits longer
    # Refused now, even with the right password, until the window passes.
    status, headers, text = request(
        locked_server, "/api/ask", json.dumps({"question": QUESTION}).encode(), _basic(*AUTH)
    )
    assert status == 429 and int(headers["retry-after"]) > 60
    assert "too many failed logins" in one_line_error(text)
    # Without credentials it is the usual 401, not a locked door for others' pages.
    assert ask(locked_server, {"question": QUESTION})[0] == 401


def test_repeated_wrong_page_logins_are_refused(tiny, monkeypatch):  # noqa: F811
    monkeypatch.setattr(qa.serve.limits, "LOGIN_DELAY_S", 0.01)
    settings, _ = tiny
    app, port = _start(settings, WebSettings(auth=AUTH, rate_limit=0))
    try:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for _ in range(LOGIN_MAX_FAILURES):
            status, _, _ = request(port, "/login", b"username=reader&password=guess", form)
            assert status == 400  # gradio's "Incorrect credentials"
        status, headers, text = request(port, "/login", b"username=reader&password=s3cret", form)
        assert status == 429 and "retry-after" in {name.lower() for name in headers}
    finally:
        app.close()


# -- who a client is: its address, not what it says (cases 7, 8) -------------------------------


def test_the_rate_limit_holds_across_gradio_sessions_and_forged_forwarded_for(tiny):  # noqa: F811
    gradio_client = pytest.importorskip("gradio_client")
    settings, _ = tiny
    app, port = _start(settings, WebSettings(rate_limit=2))
    try:
        answers = [
            gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False).predict(QUESTION, api_name="/search")
            for _ in range(3)  # a new session each time: it was a new limit each time
        ]
        assert answers[0]["error"] == "" and "wait a few seconds" in answers[2]["error"]
        forged = [ask(port, {"question": QUESTION}, {"X-Forwarded-For": f"10.0.0.{n}"})[0] for n in range(2)]
        assert forged == [429, 429]  # the same address, whatever the header says
    finally:
        app.close()


def test_a_named_proxy_may_say_who_the_client_is(tiny):  # noqa: F811
    settings, _ = tiny
    app, port = _start(settings, WebSettings(rate_limit=1, trusted_proxies=("127.0.0.1",)))
    try:
        statuses = [ask(port, {"question": QUESTION}, {"X-Forwarded-For": f"10.0.0.{n}"})[0] for n in range(3)]
        assert statuses == [200, 200, 200]  # three clients behind the proxy
        assert ask(port, {"question": QUESTION}, {"X-Forwarded-For": "10.0.0.1"})[0] == 429
    finally:
        app.close()


def test_trusted_proxies_must_be_addresses(monkeypatch):
    monkeypatch.setenv("QA_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16")
    assert WebSettings.load().trusted_proxies == ("10.0.0.1", "192.168.0.0/16")
    monkeypatch.setenv("QA_TRUSTED_PROXIES", "my-proxy")
    with pytest.raises(SettingsError, match="QA_TRUSTED_PROXIES must list IP addresses"):
        WebSettings.load()
    monkeypatch.delenv("QA_TRUSTED_PROXIES")
    assert WebSettings.load().trusted_proxies == ()


def test_the_rate_limiter_remembers_a_bounded_number_of_clients_quickly():
    limiter = RateLimiter(per_minute=1, max_clients=1000)
    started = time.perf_counter()
    for number in range(50_000):
        limiter.allow(f"client-{number}")
    assert len(limiter._asked) <= 1000
    assert time.perf_counter() - started < 5  # no walk over every client on each call
    assert not limiter.allow("client-49999")  # the recent ones are still limited


# -- schema pages, start-up, addresses (cases 16, 18, 19) -------------------------------------


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/gradio_api/openapi.json"])
def test_no_schema_or_docs_page_without_the_login(locked_server, path):
    status, _, text = request(locked_server, path, method="GET")
    assert status in (401, 404) and '"paths"' not in text


def test_the_api_answers_from_the_first_request_the_server_accepts(tiny):  # noqa: F811
    settings, _ = tiny
    port = _free_port()
    seen: list[int] = []
    stop = threading.Event()

    def knock():
        while not stop.is_set() and len(seen) < 30:
            try:
                seen.append(request(port, "/api/status", method="GET", timeout=5)[0])
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.002)  # not listening yet

    knocker = threading.Thread(target=knock)
    knocker.start()
    app = web.serve(
        replace(settings, port=port), encoder=TopicEncoder(), web_settings=WebSettings(rate_limit=0), block=False
    )
    try:
        knocker.join(30)
        stop.set()
        assert seen and set(seen) == {200}, seen  # never the 404 of routes not yet added
    finally:
        stop.set()
        app.close()


def test_a_host_that_does_not_resolve_is_named_as_such(tiny):  # noqa: F811
    settings, retriever = tiny
    with pytest.raises(SettingsError, match="host 'no-such-host.invalid' does not resolve.*QA_HOST"):
        web.serve(
            replace(settings, host="no-such-host.invalid", port=_free_port()),
            encoder=retriever.encoder,
            web_settings=WebSettings(rate_limit=0),
            block=False,
        )


# -- slow clients (case 20) ----------------------------------------------------------------------


def test_half_sent_requests_are_closed_within_the_deadline(locked_server):
    halves = [
        b"POST /api/ask HTTP/1.1\r\nHost: x\r\n",  # headers never finished
        b"GET / HTTP/1.1\r\nHo",
        b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",  # a body that stops
    ] * 7
    connections = [socket.create_connection(("127.0.0.1", locked_server), timeout=10) for _ in halves]
    started = time.monotonic()
    for connection, half in zip(connections, halves):
        connection.sendall(half)
    closed_after = []
    for connection in connections:
        with connection:
            answer = b""
            while chunk := connection.recv(4096):  # until the server closes it
                answer += chunk
            closed_after.append(time.monotonic() - started)
            assert answer == b"" or answer.startswith((b"HTTP/1.1 408", b"HTTP/1.1 401", b"HTTP/1.1 400"))
    assert max(closed_after) < 4, closed_after  # the deadline is 1 s here; uvicorn alone: never


def test_the_default_deadline_is_seconds():
    assert 1 <= WebSettings().request_timeout_s <= 30


# -- uploads (cases 3, 4, 5) -----------------------------------------------------------------------


def test_an_upload_never_replaces_an_article(tmp_path):
    settings = _corpus_copy(tmp_path)
    build_index(settings, encoder=TopicEncoder())
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=TopicEncoder())
    target = Path(settings.corpus_dir) / "luoyang.txt"
    before = target.read_bytes()
    with pytest.raises(QuestionError, match="already in the corpus and is kept; rename the file.*luoyang-2.txt"):
        service.add_article("luoyang.txt", "---\ntitle: 冒名\n---\n洛阳的文章被替换了。\n".encode())
    with pytest.raises(QuestionError, match="already in the corpus, unchanged"):
        service.add_article("luoyang.txt", before)
    assert target.read_bytes() == before
    assert "luoyang-2.txt added" in service.add_article("luoyang-2.txt", "---\ntitle: 新\n---\n洛阳新文章。\n".encode())
    service.wait_for_rebuild(60)


def test_an_upload_named_like_a_link_out_of_the_corpus_writes_nothing_through_it(tmp_path):
    settings = _corpus_copy(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("私人文件。\n", encoding="utf-8")
    (Path(settings.corpus_dir) / "link.txt").symlink_to(outside)
    (Path(settings.corpus_dir) / "dangling.txt").symlink_to(tmp_path / "nothing-here.txt")
    service = ChatService(settings, WebSettings(rate_limit=0), encoder=TopicEncoder())
    service.start_rebuild = lambda full=False: False
    for name in ("link.txt", "dangling.txt"):
        with pytest.raises(QuestionError, match="already in the corpus"):
            service.add_article(name, "---\ntitle: 坏\n---\n写穿链接。\n".encode())
    assert "outside.txt added" in service.add_article("../outside.txt", "---\ntitle: 内\n---\n放进语料。\n".encode())
    assert (Path(settings.corpus_dir) / "outside.txt").is_file()  # inside the corpus, by its name alone
    assert outside.read_text(encoding="utf-8") == "私人文件。\n"
    assert not (tmp_path / "nothing-here.txt").exists()


def test_an_upload_over_the_limit_is_refused_before_gradio_stores_it(locked_server):
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder())
    before = {path for path in folder.rglob("*")} if folder.exists() else set()
    boundary = "qa-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    size = len(head) + 3 * 1024 * 1024 + len(f"\r\n--{boundary}--\r\n")
    with socket.create_connection(("127.0.0.1", locked_server), timeout=10) as connection:
        connection.sendall(
            f"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
            + head
            + b"x" * 65536
        )
        answer = read_answer(connection).decode("utf-8", "replace")
    assert answer.startswith("HTTP/1.1 413") and "limit for an upload" in answer
    after = {path for path in folder.rglob("*")} if folder.exists() else set()
    assert not [path for path in after - before if path.name == "big.txt"]


def test_gradio_itself_refuses_a_file_over_the_limit_inside_a_body_that_fits(tiny):  # noqa: F811
    # Two files in one body: the body is under the limit plus overhead, the file is not.
    boundary = "qa-test-boundary"
    part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        + b"x" * (1024 * 1024 + 10)
        + b"\r\n"
    )
    body = part + f"--{boundary}--\r\n".encode()
    app, port = _start(tiny[0], WebSettings(rate_limit=0, max_upload_bytes=1024 * 1024))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            try:
                connection.sendall(
                    f"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
                    + body
                )
            except OSError:
                pass  # refused part-way: the answer is already there
            answer = read_answer(connection)
    finally:
        app.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]


def test_an_uploaded_article_leaves_no_copy_in_gradios_folder(tmp_path):
    """The Index tab's upload as the page sends it: the file to gradio's /upload, then
    the upload event through the queue; gradio's stored copy is gone afterwards."""
    from gradio.utils import get_upload_folder

    settings = _corpus_copy(tmp_path)
    build_index(settings, encoder=TopicEncoder())
    app, port = _start(settings, WebSettings(rate_limit=0))
    try:
        boundary = "qa-test-boundary"
        article = "---\ntitle: 成都人才公寓\n---\n成都今年建设人才公寓三千套。\n".encode()
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="chengdu.txt"\r\n'
                "Content-Type: text/plain\r\n\r\n"
            ).encode()
            + article
            + f"\r\n--{boundary}--\r\n".encode()
        )
        status, _, text = request(
            port, "/gradio_api/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        assert status == 200, text
        stored = Path(json.loads(text)[0])
        assert stored.is_file() and stored.resolve().is_relative_to(Path(get_upload_folder()).resolve())
        index, event = next((i, fn) for i, fn in app.fns.items() if fn.name == "upload")
        file_data = {"path": str(stored), "orig_name": "chengdu.txt", "meta": {"_type": "gradio.FileData"}}
        join = {"data": [file_data], "fn_index": index, "session_hash": "qa-upload-test", "event_data": None}
        join["trigger_id"] = event.targets[0][0]
        status, _, text = request(port, "/gradio_api/queue/join", json.dumps(join).encode())
        assert status == 200, text
        status, _, stream = request(port, "/gradio_api/queue/data?session_hash=qa-upload-test", method="GET")
        assert "process_completed" in stream and '"success": true' in stream.replace(
            '"success":true', '"success": true'
        )
        assert (Path(settings.corpus_dir) / "chengdu.txt").read_bytes() == article
        assert not stored.exists()  # gradio kept every upload before
        app.qa_service.wait_for_rebuild(60)
    finally:
        app.close()
