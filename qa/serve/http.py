"""The chat's JSON API over plain HTTP: `POST /api/ask`, `GET /api/status`,
`POST /api/rebuild`, with HTTP basic auth when a login is set, and the checks every
JSON face (these routes and gradio's `/search`) makes of a request before asking.

FastAPI routes on gradio's server app; gradio itself is `qa.serve.web`'s.
"""

from __future__ import annotations

import base64
import secrets
import sys
import traceback

from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from qa.errors import SettingsError
from qa.limits import MAX_K
from qa.serve.service import ERROR_MESSAGE, ChatService
from qa.serve.views import Reply, parse_filter


def client_of(request) -> str:
    """Who is asking, for the rate limit: the browser session, else the address."""
    if request is None:
        return ""
    session = getattr(request, "session_hash", None)
    if session:
        return f"session:{session}"
    client = getattr(request, "client", None)
    return f"address:{getattr(client, 'host', '')}"


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


def add_http_api(server, service: ChatService) -> None:
    """`POST /api/ask`, `GET /api/status` and `POST /api/rebuild` on the running server,
    answering plain JSON (docs/usage.md, "JSON API"), on the FastAPI app `server`. With
    QA_AUTH they ask for HTTP basic auth."""
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
        return JSONResponse(
            {"error": "login required (HTTP basic auth)"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="qa"'},
        )

    def ask_route(request: Request, body: dict | None = None) -> JSONResponse:
        refused = denied(request)
        if refused:
            return refused
        if not isinstance(body, dict):
            return JSONResponse({"error": 'send a JSON object such as {"question": "…"}'}, status_code=400)
        unknown = set(body) - {"question", "k", "mode", "sources", "date_from", "date_to", "history"}
        if unknown:
            return JSONResponse({"error": f"unknown fields: {', '.join(sorted(unknown))}"}, status_code=400)
        address = request.client.host if request.client else ""
        try:
            data, code = ask_json(
                service,
                body.get("question"),
                body.get("k"),
                body.get("mode", "hybrid"),
                body.get("sources"),
                body.get("date_from", ""),
                body.get("date_to", ""),
                body.get("history"),
                f"address:{address}",
            )
        except Exception:  # never a traceback to the caller
            traceback.print_exc(file=sys.stderr)
            data, code = {"error": ERROR_MESSAGE}, 500
        return JSONResponse(data, status_code=code)

    def status_route(request: Request) -> JSONResponse:
        return denied(request) or JSONResponse(service.status())

    def rebuild_route(request: Request, body: dict | None = None) -> JSONResponse:
        refused = denied(request)
        if refused:
            return refused
        full = bool((body or {}).get("full", False)) if isinstance(body, dict) else False
        started = service.start_rebuild(full=full)
        return JSONResponse({"started": started, "status": service.status()}, status_code=202 if started else 409)

    routes = [
        APIRoute("/api/ask", ask_route, methods=["POST"]),
        APIRoute("/api/status", status_route, methods=["GET"]),
        APIRoute("/api/rebuild", rebuild_route, methods=["POST"]),
    ]
    # In front of gradio's own routes, none of which these paths shadow.
    server.router.routes[:0] = routes
