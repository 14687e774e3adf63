"""How the web chat may be reached and how often a client may ask: the chat's own
settings (login, share link, rate limit, trusted proxies), the per-address rate
limiter and the failed-login guard.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from qa.config import WEB_KEYS, read_config
from qa.errors import SettingsError

# A JSON request (/api/*) is a question of at most 500 characters and its history; a
# body beyond this is not one, and is refused before it is read.
MAX_JSON_BODY_BYTES = 1024 * 1024
# An upload's multipart wrapping (boundaries, headers) on top of the file itself.
UPLOAD_OVERHEAD_BYTES = 64 * 1024
# Clients remembered at once by each limiter; the least recently seen are forgotten
# first, so memory stays bounded and no check walks every client.
MAX_CLIENTS = 10_000
# Failed logins per address: the first LOGIN_FREE_FAILURES in LOGIN_WINDOW_S answer at
# once (typos), each further one waits LOGIN_DELAY_S longer (up to LOGIN_MAX_DELAY_S),
# and after LOGIN_MAX_FAILURES the address is refused (429) until the window passes:
# ten guesses per ten minutes instead of the 500 a second the probe made.
LOGIN_FREE_FAILURES = 3
LOGIN_MAX_FAILURES = 10
LOGIN_WINDOW_S = 600.0
LOGIN_DELAY_S = 0.5
LOGIN_MAX_DELAY_S = 4.0

# -- web settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class WebSettings:
    """How the web chat may be reached; each opening is an explicit setting.

    `auth` ("user:password", from QA_AUTH) asks for a login on the page and HTTP basic
    auth on the JSON API; `share` (QA_SHARE=1) asks gradio for a public link; the
    address itself is `Settings.host` (QA_HOST, default 127.0.0.1: this machine only).
    `rate_limit` (QA_RATE_LIMIT) is questions per minute per client address, 0 for none.
    `trusted_proxies` (QA_TRUSTED_PROXIES, comma-separated addresses) are the reverse
    proxies whose X-Forwarded-For names the client; none by default, so a client can
    never choose the address it is limited by. `request_timeout_s`: a request's headers
    must arrive within it, and its body may pause no longer.
    """

    auth: tuple[str, str] | None = None
    share: bool = False
    rate_limit: int = 30
    max_upload_bytes: int = 20 * 1024 * 1024
    trusted_proxies: tuple[str, ...] = ()
    request_timeout_s: float = 10.0

    @classmethod
    def load(cls, **overrides) -> WebSettings:
        """From the config file (`auth`, `share`, `rate_limit`), then the environment
        (QA_AUTH, QA_SHARE, QA_RATE_LIMIT), then `overrides`.

        Raises:
            SettingsError: QA_AUTH without a colon, or QA_RATE_LIMIT not a whole number >= 0.
        """
        values: dict = {}
        config = read_config()
        raw = {
            name: ",".join(map(str, config[name])) if isinstance(config[name], list) else str(config[name])
            for name in WEB_KEYS
            if name in config
        }
        raw.update(
            {name: os.environ[f"QA_{name.upper()}"] for name in WEB_KEYS if os.environ.get(f"QA_{name.upper()}")}
        )
        auth = raw.get("auth", "")
        if auth:
            user, colon, password = auth.partition(":")
            if not colon or not user or not password:
                raise SettingsError(
                    "setting QA_AUTH must be user:password, got a value without both parts (or auth in qa.toml)"
                )
            values["auth"] = (user, password)
        if raw.get("share", "").strip().lower() in {"1", "true", "yes", "on"}:
            values["share"] = True
        rate = raw.get("rate_limit", "")
        if rate:
            try:
                values["rate_limit"] = int(rate)
            except ValueError:
                raise SettingsError(
                    f"setting QA_RATE_LIMIT must be a whole number (questions per minute), got {rate!r} (or rate_limit in qa.toml)"
                ) from None
        proxies = [item.strip() for item in raw.get("trusted_proxies", "").split(",") if item.strip()]
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise SettingsError(
                    f"setting QA_TRUSTED_PROXIES must list IP addresses or networks (10.0.0.1, 10.0.0.0/8), "
                    f"got {proxy!r} (or trusted_proxies in qa.toml)"
                ) from None
        if proxies:
            values["trusted_proxies"] = tuple(proxies)
        values.update({name: value for name, value in overrides.items() if value is not None})
        settings = cls(**values)
        if settings.rate_limit < 0:
            raise SettingsError(
                f"setting QA_RATE_LIMIT must be 0 (off) or more, got {settings.rate_limit} (or rate_limit in qa.toml)"
            )
        return settings


class RateLimiter:
    """At most `per_minute` questions per client in any `window_s` seconds (0: no limit).

    A client is an address the client cannot choose (`client_of` in qa.serve.http). At
    most `max_clients` are remembered, least recently seen forgotten first; each check
    does constant work under the lock, however many clients there are.
    """

    def __init__(self, per_minute: int, window_s: float = 60.0, max_clients: int = MAX_CLIENTS):
        self.per_minute = per_minute
        self.window_s = window_s
        self.max_clients = max_clients
        self._asked: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            asked = self._asked.pop(client, None) or deque(maxlen=self.per_minute)
            self._asked[client] = asked  # now the most recently seen
            while asked and now - asked[0] >= self.window_s:
                asked.popleft()
            _forget_oldest(self._asked, self.max_clients, lambda times: not times or now - times[-1] >= self.window_s)
            if len(asked) >= self.per_minute:
                return False
            asked.append(now)
            return True


def _forget_oldest(clients: OrderedDict, most: int, idle) -> None:
    """Drop the least recently seen clients while there are more than `most` or they are
    `idle`; stops at the first one kept, so each client is dropped once, not scanned."""
    while len(clients) > 1:
        oldest = next(iter(clients.values()))
        if len(clients) <= most and not idle(oldest):
            break
        clients.popitem(last=False)


class LoginGuard:
    """Failed logins per client address (LOGIN_* above): slowed, then refused.

    `wait(address)` is how long an attempt must wait first (a float) and `retry_after`
    when the address is refused; `failed` and `succeeded` record the outcome.
    """

    def __init__(self, window_s: float = LOGIN_WINDOW_S, max_clients: int = MAX_CLIENTS):
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.pop(address, None) or deque(maxlen=LOGIN_MAX_FAILURES)
        while failures and now - failures[0] >= self.window_s:
            failures.popleft()
        self._failures[address] = failures
        _forget_oldest(self._failures, self.max_clients, lambda times: not times or now - times[-1] >= self.window_s)
        return failures

    def retry_after(self, address: str) -> int:
        """Seconds until `address` may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(address, now)
            if len(failures) < LOGIN_MAX_FAILURES:
                return 0
            return max(1, int(failures[0] + self.window_s - now + 0.999))

    def wait(self, address: str) -> float:
        """Seconds an attempt from `address` waits before it is answered."""
        with self._lock:
            extra = len(self._recent(address, time.monotonic())) - LOGIN_FREE_FAILURES + 1
        return min(LOGIN_DELAY_S * extra, LOGIN_MAX_DELAY_S) if extra > 0 else 0.0

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(address, now).append(now)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
