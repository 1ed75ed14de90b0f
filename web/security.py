"""HTTP hardening of the workbench: security headers and the ``Secure`` cookie flag on every answer,
login throttling (token buckets per name and per address), tokens kept out of the access log.

See docs/web.md ("Sessions, throttling, headers").
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import Settings

# Every page is server-rendered and loads only /static/app.js and /static/style.css: no inline script
# or style, nothing from another site, no framing (clickjacking), forms post only to this site.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    # Calendar URLs carry their token: never send our URLs to another site.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _forwarded(headers: MutableHeaders | dict, name: str, last: bool) -> str:
    values = [v.strip() for v in (headers.get(name) or "").split(",") if v.strip()]
    return (values[-1] if last else values[0]) if values else ""


def is_https(conn: HTTPConnection, settings: Settings) -> bool:
    """The browser reached us over HTTPS: configured so, a TLS socket, or (trusted proxy only) X-Forwarded-Proto."""
    if settings.web.secure_cookie or conn.url.scheme == "https":
        return True
    # The proxy that ends TLS appends its own value: the last one is the one it wrote.
    return settings.web.trust_proxy and _forwarded(conn.headers, "x-forwarded-proto", last=True).lower() == "https"


def client_address(conn: HTTPConnection, settings: Settings) -> str:
    """Who is asking: the peer's address, or (trusted proxy only) the last address the proxy added."""
    if settings.web.trust_proxy:
        forwarded = _forwarded(conn.headers, "x-forwarded-for", last=True)
        if forwarded:
            return forwarded
    return conn.client.host if conn.client else "?"


class SecurityHeaders:
    """Pure ASGI middleware (outside the session middleware): adds :data:`SECURITY_HEADERS` to every
    answer (pages, static files, errors) and ``Secure`` to every cookie when the request came over HTTPS."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = is_https(HTTPConnection(scope), self.settings)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if secure:
                    _secure_cookies(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _secure_cookies(headers: MutableHeaders) -> None:
    cookies = headers.getlist("set-cookie")
    if not cookies:
        return
    del headers["set-cookie"]
    for cookie in cookies:
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        headers.append("set-cookie", cookie if "secure" in flags else f"{cookie}; secure")


# --- login throttling ----------------------------------------------------------------------------------


class TokenBuckets:
    """One token bucket per key: ``burst`` tries at once, then one more every ``interval`` seconds.

    In memory, for one server process. At most ``max_keys`` buckets: full buckets (worth nothing) are
    forgotten first, then the least recently used, so random names cannot make it grow."""

    def __init__(
        self, burst: int, interval: float, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ):
        self.burst, self.interval, self.max_keys, self.clock = burst, interval, max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)

    def tokens(self, key: str, now: float) -> float:
        tokens, when = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - when) / self.interval)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` has a token (0: it has one now)."""
        return max(0.0, (1 - self.tokens(key, now)) * self.interval)

    def add(self, key: str, now: float, delta: float) -> None:
        self._buckets[key] = (self.tokens(key, now) + delta, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_keys:
            self._forget(now)

    def _forget(self, now: float) -> None:
        for key in [k for k in self._buckets if self.tokens(k, now) >= self.burst]:
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


def address_key(address: str) -> str:
    """The throttled unit: an IPv4 address, or an IPv6 /64 (one host usually owns a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


class LoginThrottle:
    """Login attempts per name (guessing one account's password from many addresses) and per address
    (one client trying many names). An attempt takes a token from both buckets before the password is
    checked; a good password gives them back, so only failures count."""

    def __init__(
        self,
        per_name: tuple[int, float] = (5, 60.0),
        per_address: tuple[int, float] = (20, 6.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.names = TokenBuckets(*per_name, clock=clock)
        self.addresses = TokenBuckets(*per_address, clock=clock)
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str]:
        return name.strip().casefold()[:200], address_key(address)

    def attempt(self, name: str, address: str) -> int:
        """0 if the attempt may go on (a token taken from each bucket), else whole seconds to wait."""
        name, address = self._keys(name, address)
        with self._lock:
            now = self.names.clock()
            wait = max(self.names.wait(name, now), self.addresses.wait(address, now))
            if wait > 0:
                return max(1, math.ceil(wait))
            self.names.add(name, now, -1)
            self.addresses.add(address, now, -1)
            return 0

    def succeeded(self, name: str, address: str) -> None:
        name, address = self._keys(name, address)
        with self._lock:
            now = self.names.clock()
            self.names.add(name, now, +1)
            self.addresses.add(address, now, +1)


# --- access log --------------------------------------------------------------------------------------

SECRET_PARAM = re.compile(r"(?i)([?&](?:token|access_token)=)[^&#\s]*")
ACCESS_LOGGER = "uvicorn.access"


def redact(text: str) -> str:
    return SECRET_PARAM.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Calendar feed URLs carry their secret (``?token=``): the access log gets ``token=[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_access_log() -> None:
    """Install :class:`RedactTokens` on uvicorn's access logger (once)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
