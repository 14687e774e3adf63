"""How the web chat may be reached and how often a client may ask: the chat's own
settings (login, share link, rate limit) and the per-client rate limiter.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass

from qa.config import WEB_KEYS, read_config
from qa.errors import SettingsError

# -- web settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class WebSettings:
    """How the web chat may be reached; each opening is an explicit setting.

    `auth` ("user:password", from QA_AUTH) asks for a login on the page and HTTP basic
    auth on the JSON API; `share` (QA_SHARE=1) asks gradio for a public link; the
    address itself is `Settings.host` (QA_HOST, default 127.0.0.1: this machine only).
    `rate_limit` (QA_RATE_LIMIT) is questions per minute per client, 0 for none.
    """

    auth: tuple[str, str] | None = None
    share: bool = False
    rate_limit: int = 30
    max_upload_bytes: int = 20 * 1024 * 1024

    @classmethod
    def load(cls, **overrides) -> WebSettings:
        """From the config file (`auth`, `share`, `rate_limit`), then the environment
        (QA_AUTH, QA_SHARE, QA_RATE_LIMIT), then `overrides`.

        Raises:
            SettingsError: QA_AUTH without a colon, or QA_RATE_LIMIT not a whole number >= 0.
        """
        values: dict = {}
        config = read_config()
        raw = {name: str(config[name]) for name in WEB_KEYS if name in config}
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
        values.update({name: value for name, value in overrides.items() if value is not None})
        settings = cls(**values)
        if settings.rate_limit < 0:
            raise SettingsError(
                f"setting QA_RATE_LIMIT must be 0 (off) or more, got {settings.rate_limit} (or rate_limit in qa.toml)"
            )
        return settings


class RateLimiter:
    """At most `per_minute` questions per client in any 60 seconds (0: no limit)."""

    def __init__(self, per_minute: int, window_s: float = 60.0):
        self.per_minute = per_minute
        self.window_s = window_s
        self._asked: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            asked = self._asked.setdefault(client, deque())
            while asked and now - asked[0] >= self.window_s:
                asked.popleft()
            if len(asked) >= self.per_minute:
                return False
            asked.append(now)
            if len(self._asked) > 10_000:  # forget idle clients, so memory stays bounded
                idle = [key for key, times in self._asked.items() if not times or now - times[-1] >= self.window_s]
                for key in idle:
                    del self._asked[key]
            return True
