"""The HTTP server the web chat runs on: uvicorn, with limits a slow or hostile client
cannot outlast, proxy headers only from proxies named in QA_TRUSTED_PROXIES, and
start-up problems (a name that does not resolve, a port in use) said as they are.

uvicorn alone waits for a request's headers and body without end (20 half-sent
requests stayed open 40 s and more), and trusts X-Forwarded-For from loopback, so a
local client chose the address its rate limit was kept under. The only uvicorn import.
"""

from __future__ import annotations

import errno
import socket
import threading
import time

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from qa.errors import SettingsError

# Connections open at once; past this uvicorn answers 503 at once instead of queueing.
# A browser holds about six per page, so this is some 150 readers at a time.
MAX_CONNECTIONS = 1000
# An idle kept-alive connection is closed after this (uvicorn's default, kept).
KEEP_ALIVE_S = 5
# A request's headers are at most h11's 16 KiB (h11_max_incomplete_event_size), past
# which the connection gets a 400: uvicorn's default, kept.
HEADER_BYTES = 16 * 1024
# What a client that never finished its headers gets before the connection closes.
_TIMED_OUT_BODY = b'{"error": "the request took too long to arrive; send it again"}'
TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + f"content-length: {len(_TIMED_OUT_BODY)}\r\n\r\n".encode()
    + _TIMED_OUT_BODY
)
# On close, open connections (a chat page's event stream) get this long to finish.
SHUTDOWN_S = 2


def timed_protocol(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline: a request's headers must be whole within
    `timeout_s` of the connection (or of the previous response), and its body may pause
    no longer than that; else the connection is closed (408 when nothing was sent yet).
    A request received whole is answered however long the answer takes."""

    class TimedH11Protocol(H11Protocol):
        _deadline = None
        _started = False

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            self._started = True
            super().data_received(data)
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                self._arm()  # the body moved: its pause limit starts again
            elif state is not h11.IDLE:
                self._disarm()  # the request is whole (or the connection is ending)
            # IDLE: the headers are still coming; their deadline stands

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # for the next request's headers

        def handle_websocket_upgrade(self, event) -> None:
            self._disarm()  # a WebSocket is the WebSocket protocol's from here on
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._started = False  # no byte of the next request yet
            self._deadline = self.loop.call_later(timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            # Half a request's headers get a 408; an idle kept-alive connection is just closed.
            if self._started and self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
                self.transport.write(TIMED_OUT)
            self.transport.close()  # an app waiting for the body gets http.disconnect

    return TimedH11Protocol


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port`, or SettingsError saying why not: the host name
    does not resolve, is not this machine's, or the port is taken or privileged."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise SettingsError(
            f"host {host!r} does not resolve to an address ({reason}); set QA_HOST to a name or address "
            "of this machine, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every network)"
        ) from None
    sock = socket.socket(family, kind, protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            message = (
                f"port {port} on {host} is in use (is another chat running?); stop it, or set QA_PORT to a free port"
            )
        elif error.errno == errno.EADDRNOTAVAIL:
            message = f"{host} is not an address of this machine; set QA_HOST to one of its addresses, e.g. 127.0.0.1"
        elif error.errno == errno.EACCES:
            message = f"port {port} needs administrator rights; set QA_PORT to 1024 or above"
        else:
            message = f"cannot listen on {host} port {port}: {error.strerror or error}; set QA_HOST or QA_PORT"
        raise SettingsError(message) from None
    return sock


class HTTPServer:
    """`app` served on `host`:`port` in a background thread (`close()` stops it).

    Args:
        app: the ASGI app.
        trusted_proxies: addresses whose X-Forwarded-For is believed; none: every
            client is its peer address.
        request_timeout_s: the headers' deadline and the body's pause limit.

    Raises:
        SettingsError: the address cannot be listened on (`listen`).
    """

    def __init__(self, app, host: str, port: int, *, trusted_proxies=(), request_timeout_s: float = 10.0):
        self.socket = listen(host, port)
        config = uvicorn.Config(
            app,
            log_level="warning",
            http=timed_protocol(request_timeout_s),
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=list(trusted_proxies) or None,
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE_S,
            h11_max_incomplete_event_size=HEADER_BYTES,
            timeout_graceful_shutdown=SHUTDOWN_S,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def start(self, wait_s: float = 30.0) -> None:
        """Start serving; returns once the app has started (its lifespan ran)."""
        self.thread.start()
        deadline = time.monotonic() + wait_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the web server did not start; the log above says why")
            time.sleep(0.01)

    def close(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=SHUTDOWN_S + 5)
        self.socket.close()
