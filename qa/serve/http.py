"""The chat's JSON API over plain HTTP: `POST /api/ask`, `GET /api/status`,
`POST /api/rebuild`, with HTTP basic auth when a login is set; the checks every JSON
face (these routes and gradio's `/search`) makes of a request before asking; and the
guard in front of every route (body sizes, failed logins).

FastAPI routes on the app the server runs; gradio (`qa.serve.web`) is mounted on it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import sys
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from qa.errors import SettingsError
from qa.limits import MAX_K
from qa.serve.limits import MAX_JSON_BODY_BYTES, UPLOAD_OVERHEAD_BYTES, LoginGuard
from qa.serve.service import ERROR_MESSAGE, ChatService
from qa.serve.views import Reply, parse_filter

ASK_FIELDS = {"question", "k", "mode", "sources", "date_from", "date_to", "history"}
NOT_UNICODE = "the request holds text that is not valid Unicode (a lone surrogate such as \\ud800); send UTF-8 text"
NOT_AN_OBJECT = 'send a JSON object such as {"question": "…"}'


def client_of(request) -> str:
    """Who is asking, for the rate limit: the peer's address, which a client cannot
    choose (a proxy's X-Forwarded-For counts only when QA_TRUSTED_PROXIES names it)."""
    if request is None:
        return ""
    client = getattr(request, "client", None)
    return f"address:{getattr(client, 'host', '')}"


def has_lone_surrogate(value) -> bool:
    """Whether a string anywhere in `value` (lists and dicts looked into) holds a lone
    surrogate: JSON's "\\ud800" parses to one, and no reply holding it can be encoded."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(key) or has_lone_surrogate(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_lone_surrogate(item) for item in value)
    return False


def ask_json(
    service: ChatService,
    question,
    k=None,
    mode="hybrid",
    sources=None,
    date_from="",
    date_to="",
    history=None,
    client="",
) -> tuple[dict, int]:
    """The JSON reply and its HTTP status, for both API faces."""
    if has_lone_surrogate([question, mode, sources, date_from, date_to, history]):
        reply = Reply("", error=NOT_UNICODE, status=400)
        return reply.to_dict(), reply.status
    try:
        where = parse_filter(sources, date_from, date_to)
        if k is not None and (isinstance(k, bool) or not isinstance(k, int)):
            raise SettingsError(f"k must be a whole number between 1 and {MAX_K}, got {k!r}")
        if history is not None and not (isinstance(history, list) and all(isinstance(q, str) for q in history)):
            raise SettingsError("history must be a list of the earlier questions (strings), oldest first")
    except SettingsError as error:
        reply = Reply(question if isinstance(question, str) else "", error=str(error), status=400)
    else:
        reply = service.ask(question, k=k, mode=mode, where=where, history=history, client=client)
    return reply.to_dict(), reply.status


def _error(message: str, status: int, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def read_json(request: Request, *, required: bool = True) -> tuple[object, JSONResponse | None]:
    """The request's JSON body, or the 400 that says why it is not usable. FastAPI's own
    parsing answers 422 with a list of details; the API promises one line."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        return None, _error("the request body did not arrive whole", 400)
    if not raw.strip():
        return None, _error(NOT_AN_OBJECT, 400) if required else None
    try:
        body = json.loads(raw)
        lone_surrogate = has_lone_surrogate(body)
    except ValueError as error:  # UnicodeDecodeError included
        reason = getattr(error, "msg", None) or "not UTF-8"
        return None, _error(f"the request body is not valid JSON ({reason}); {NOT_AN_OBJECT}", 400)
    except RecursionError:  # [[[[...]]]] nested deeper than the parser (or the check) goes
        return None, _error(f"the request body is nested too deeply; {NOT_AN_OBJECT}", 400)
    if lone_surrogate:
        return None, _error(NOT_UNICODE, 400)
    if not isinstance(body, dict):
        return None, _error(NOT_AN_OBJECT, 400)
    return body, None


def make_api(service: ChatService) -> FastAPI:
    """The FastAPI app the server runs: `POST /api/ask`, `GET /api/status` and
    `POST /api/rebuild` (docs/usage.md, "JSON API"), registered before it serves, so
    they never answer 404 while the server starts. With QA_AUTH they ask for HTTP basic
    auth. No schema or docs pages: `/openapi.json` would describe the API to anyone."""
    auth = service.web.auth

    def denied(request: Request) -> JSONResponse | None:
        if auth is None:
            return None
        header = request.headers.get("authorization", "")
        try:
            scheme, _, encoded = header.partition(" ")
            user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            scheme, user, password = "", "", ""
        # Bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 401).
        if (
            scheme.lower() == "basic"
            and secrets.compare_digest(user.encode(), auth[0].encode())
            and secrets.compare_digest(password.encode(), auth[1].encode())
        ):
            return None
        return _error("login required (HTTP basic auth)", 401, {"WWW-Authenticate": 'Basic realm="qa"'})

    async def ask_route(request: Request) -> JSONResponse:
        refused = denied(request)  # before the body is read
        if refused:
            return refused
        body, problem = await read_json(request)
        if problem:
            return problem
        unknown = set(body) - ASK_FIELDS
        if unknown:
            return _error(f"unknown fields: {', '.join(sorted(map(str, unknown)))[:200]}", 400)
        try:
            data, code = await run_in_threadpool(
                ask_json,
                service,
                body.get("question"),
                body.get("k"),
                body.get("mode", "hybrid"),
                body.get("sources"),
                body.get("date_from", ""),
                body.get("date_to", ""),
                body.get("history"),
                client_of(request),
            )
        except Exception:  # never a traceback to the caller
            traceback.print_exc(file=sys.stderr)
            data, code = {"error": ERROR_MESSAGE}, 500
        return JSONResponse(data, status_code=code)

    async def status_route(request: Request) -> JSONResponse:
        return denied(request) or JSONResponse(await run_in_threadpool(service.status))

    async def rebuild_route(request: Request) -> JSONResponse:
        refused = denied(request)
        if refused:
            return refused
        body, problem = await read_json(request, required=False)
        if problem:
            return problem
        body = body or {}
        unknown = sorted(set(body) - {"full"})
        if unknown:
            return _error(f'unknown field {unknown[0]!r}; the body is {{"full": true}} or {{"full": false}}', 400)
        full = body.get("full", False)
        if not isinstance(full, bool):
            # "false" is a non-empty string: read as truthy it would start a full rebuild.
            return _error(f"full must be true or false, got {json.dumps(full)[:40]}", 400)
        started = service.start_rebuild(full=full)
        return JSONResponse({"started": started, "status": service.status()}, status_code=202 if started else 409)

    async def malformed(request: Request, error: Exception) -> JSONResponse:
        return _error(f"the request is not valid ({type(error).__name__}); {NOT_AN_OBJECT}", 400)

    app = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        routes=[
            APIRoute("/api/ask", ask_route, methods=["POST"]),
            APIRoute("/api/status", status_route, methods=["GET"]),
            APIRoute("/api/rebuild", rebuild_route, methods=["POST"]),
        ],
    )
    app.add_exception_handler(RequestValidationError, malformed)
    return app


class RequestGuard:
    """ASGI middleware in front of every route: a body over its limit is refused (413)
    by its Content-Length before the app sees it, or as soon as it grows past it while
    streaming, before auth is looked at or anything is stored; and login attempts
    (gradio's `POST /login`, `/api/*` with an Authorization header) are slowed, then
    refused (429 with Retry-After), after repeated failures from one address.

    Args:
        app: the ASGI app behind it.
        max_upload_bytes: the largest article an upload may carry (`/api/*` takes at
            most MAX_JSON_BODY_BYTES).
        logins: the failed-login record, or None when there is no login.
    """

    def __init__(self, app, *, max_upload_bytes: int, logins: LoginGuard | None):
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.logins = logins

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        api = path.startswith("/api/")
        limit = MAX_JSON_BODY_BYTES if api else self.max_upload_bytes + UPLOAD_OVERHEAD_BYTES
        too_large = f"the request body is over {limit // 1024:,} KiB, the limit for " + (
            "a JSON request; ask one question at a time" if api else "an upload; split the article"
        )
        length = headers.get(b"content-length", b"").strip()
        if length and (not length.isdigit() or int(length) > limit):
            return await _send_json(send, 413 if length.isdigit() else 400, too_large)
        address = (scope.get("client") or ("",))[0]
        login = self.logins is not None and (
            (path.rstrip("/") == "/login" and scope.get("method") == "POST") or (api and b"authorization" in headers)
        )
        if login:
            retry = self.logins.retry_after(address)
            if retry:
                message = f"too many failed logins from {address}; try again in {retry} s"
                return await _send_json(send, 429, message, {"retry-after": str(retry)})
            await asyncio.sleep(self.logins.wait(address))

        received, refused, started = 0, False, False

        async def guarded_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    if not started:
                        await _send_json(send, 413, too_large)
                    return {"type": "http.disconnect"}  # the app stops reading
            return message

        async def guarded_send(message):
            nonlocal started
            if refused:
                return  # the 413 went out instead
            if message["type"] == "http.response.start":
                started = True
                if login:
                    # gradio answers a wrong password 400 on /login, the API 401.
                    status = message["status"]
                    (self.logins.failed if status in (400, 401, 403) else self.logins.succeeded)(address)
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if not refused:  # a refused body's reader may fail on the cut; the 413 is out
                raise


async def _send_json(send, status: int, message: str, headers: dict | None = None) -> None:
    body = json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
