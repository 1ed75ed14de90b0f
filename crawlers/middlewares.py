"""Downloader middlewares: what the network really did, and answers that must count as failures.

``WireMiddleware`` sits next to the downloader, so it sees raw answers before the HTTP cache turns
a 304 into the cached 200 (Scrapy's own 200 counter counts 304s): it counts requests, 304s and wire
bytes, records responses for ``--record``, and refuses what is not the expected content: the EUR-Lex
/ europarl AWS WAF challenge (202 with an empty body, or a page naming ``awsWafCookieDomainList``),
an HTML page where a feed or JSON was expected. Refused answers are never cached.
"""

from __future__ import annotations

import json
import re
from itertools import count
from pathlib import Path
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.httpcache import HttpCacheMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.defer import deferred_to_future
from twisted.internet import reactor
from twisted.internet.task import deferLater

WAF_MARKERS = (b"awsWafCookieDomainList", b"challenge.js", b"gokuProps")
HTML_RE = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S)
_record_seq = count(1)
EXPECTED = {"feed": "du flux", "json": "du JSON", "xml": "du XML"}  # what a refusal says was expected


class BadResponse(IgnoreRequest):
    """An answer that must fail the source (challenge, wrong content type); carries the reason."""


def refusal(request: Request, response: Response) -> str | None:
    """Why this raw answer cannot be read as the source's content, or None if it can."""
    body = response.body
    if response.headers.get(b"x-amzn-waf-action"):
        return f"défi anti-robot WAF (HTTP {response.status}, x-amzn-waf-action) de {urlsplit(request.url).netloc}"
    if response.status == 202 and not body.strip():
        return f"HTTP 202 au corps vide (défi anti-robot) de {urlsplit(request.url).netloc}"
    if any(m in body[:65536] for m in WAF_MARKERS):
        return "page de défi anti-robot WAF (awsWafCookieDomainList) au lieu du contenu"
    expect = request.meta.get("expect")
    if response.status == 200 and expect in EXPECTED and HTML_RE.match(body[:4096]):
        return f"page HTML au lieu {EXPECTED[expect]} attendu"
    return None


class WireMiddleware:
    def __init__(self, crawler: Crawler):
        self.stats = crawler.stats
        record = crawler.settings.get("VEILLE_RECORD_DIR")
        self.record_dir = Path(record) if record else None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WireMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        if not request.url.endswith("/robots.txt"):
            self.stats.inc_value("veille/requests")
        return None

    def process_response(self, request: Request, response: Response) -> Response:
        if request.url.endswith("/robots.txt"):
            return response
        self.stats.inc_value("veille/bytes", len(response.body))
        self.stats.inc_value(f"veille/status/{response.status}")
        if response.status == 304:
            self.stats.inc_value("veille/not_modified")
        if self.record_dir is not None:
            record_response(self.record_dir, request, response)
        reason = refusal(request, response)
        if reason:
            raise BadResponse(reason)
        return response


def record_response(record_dir: Path, request: Request, response: Response) -> None:
    """Append one live answer to ``record_dir`` in the replay-bundle format (routes.jsonl + bodies/)."""
    bodies = record_dir / "bodies"
    bodies.mkdir(parents=True, exist_ok=True)
    parts = urlsplit(request.url)
    name = f"{next(_record_seq):05d}-{parts.netloc.replace(':', '_')}.body"
    (bodies / name).write_bytes(response.body)
    headers = {k.decode(): v.decode("latin-1") for k, v in response.headers.items() for v in v[-1:]}
    route = {
        "path": f"/{parts.netloc}{parts.path}",
        "query": parts.query,
        "status": response.status,
        "headers": headers,
        "body": f"bodies/{name}",
        "url": request.url,
    }
    with (record_dir / "routes.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(route, ensure_ascii=False) + "\n")


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry, with exponential backoff (and Retry-After) before each new attempt."""

    def __init__(self, settings: BaseSettings):
        super().__init__(settings)
        self.base = settings.getfloat("VEILLE_RETRY_BACKOFF_BASE", 2.0)
        self.cap = settings.getfloat("VEILLE_RETRY_BACKOFF_MAX", 60.0)

    async def _pause(self, retry: Request, response: Response | None = None) -> None:
        delay = min(self.cap, self.base * 2 ** max(retry.meta.get("retry_times", 1) - 1, 0))
        retry_after = response.headers.get(b"Retry-After") if response is not None else None
        if retry_after and retry_after.strip().isdigit():
            delay = min(self.cap, max(delay, float(retry_after)))
        await deferred_to_future(deferLater(reactor, delay, lambda: None))

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        result = super().process_response(request, response)
        if isinstance(result, Request):
            await self._pause(result, response)
        return result

    async def process_exception(self, request: Request, exception: Exception) -> Request | Response | None:
        result = super().process_exception(request, exception)
        if isinstance(result, Request):
            await self._pause(result)
        return result


class RevalidatePolicy(RFC2616Policy):
    """RFC 2616 caching, but a cached copy stands in only for a 304, never for a 5xx answer."""

    def is_cached_response_valid(self, cachedresponse: Response, response: Response, request: Request) -> bool:
        return response.status == 304


class StrictHttpCacheMiddleware(HttpCacheMiddleware):
    """Scrapy's cache serves the stale copy when the download fails; a watch must see the failure."""

    def process_exception(self, request: Request, exception: Exception) -> None:
        request.meta.pop("cached_response", None)
        return None
