"""What every veille spider shares: its source config, failure bookkeeping, guarded callbacks.

A source fails when any request it needs fails for good (after retries) or when a body cannot be
read as what the source promises. Failures are collected, not raised, so the pipeline can report
the reason; other sources in the same crawl are unaffected.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import scrapy
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from core.config import SourceConfig
from core.records import NoticeRecord
from crawlers.kinds import SourceOptions
from crawlers.parsers import ParseError, schemas

log = logging.getLogger(__name__)


def describe(failure: Failure) -> str:
    """A one-line reason for a failed request (Scrapy's messages repeat the URL: shortened here)."""
    exc = failure.value
    if isinstance(exc, HttpError):
        return f"HTTP {exc.response.status}"
    name = type(exc).__name__
    text = str(exc).strip()
    if not text and name == "DownloadCancelledError":  # streamed past DOWNLOAD_MAXSIZE: Scrapy says nothing
        text = "download cancelled: body larger than the size cap (crawl.max_body_bytes)"
    request = getattr(failure, "request", None)
    if request is not None and text:
        text = text.replace(request.url, short_url(request.url))
    text = text or name
    return text if name in text or name == "BadResponse" else f"{name}: {text}"


def short_url(url: str, limit: int = 160) -> str:
    """A URL for a failure reason: a long query (SPARQL sends kilobytes) is elided, so that the reason
    after it is not cut off when the run's error is stored."""
    if len(url) <= limit:
        return url
    head, _, query = url.partition("?")
    return f"{head[:limit]}?… ({len(query)} characters of query)" if query else url[:limit] + "…"


def guarded(method: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """Run a callback; a ParseError (or a bug) fails the source with the URL and the reason."""

    @functools.wraps(method)
    def wrapper(self: VeilleSpider, response: Response, *args: Any, **kwargs: Any) -> Iterator[Any]:
        schemas.drain()  # notes left by code outside a callback belong to no one
        try:
            for out in method(self, response, *args, **kwargs):
                self.count_gaps(schemas.drain())  # the step that just ran is this source's
                yield out
            self.count_gaps(schemas.drain())
        except ParseError as exc:
            self.fail(f"{short_url(response.url)}: {exc}")
        except Exception as exc:  # a parser bug must fail the source, not vanish in a log
            log.exception("parser error on %s", response.url)
            self.fail(f"{short_url(response.url)}: {type(exc).__name__}: {exc}")

    return wrapper


class VeilleSpider(scrapy.Spider):
    """Base spider: ``source`` is a SourceConfig dict; ``since`` an ISO date (SPARQL window start).

    ``self.options`` is the source's options, typed by its kind's model (crawlers/kinds/)."""

    kind = ""

    def __init__(self, source: dict, since: str | None = None, max_bytes: int = 20_000_000, **kwargs: Any):
        self.source = SourceConfig.model_validate(source)
        super().__init__(name=self.source.name, **kwargs)
        self.options: SourceOptions = self.source.options  # importing crawlers.kinds installed the kinds
        self.since = date.fromisoformat(since) if since else None
        self.max_bytes = max_bytes
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.gaps: dict[tuple[str, str], int] = {}  # (what, field) -> items without it, summed over answers
        self.gap_totals: dict[str, int] = {}  # what -> items checked

    def fail(self, reason: str) -> None:
        self.errors.append(reason)

    def warn(self, reason: str) -> None:
        self.warnings.append(reason)

    def count_gaps(self, gaps: list[schemas.Gap]) -> None:
        for g in gaps:
            if g.field:
                self.gaps[(g.what, g.field)] = self.gaps.get((g.what, g.field), 0) + g.missing
            else:
                self.gap_totals[g.what] = self.gap_totals.get(g.what, 0) + g.total

    def gap_warnings(self) -> list[str]:
        """Items that came without an expected field, one line per field (issue 19: drift is loud)."""
        return [schemas.Gap(w, f, n, self.gap_totals.get(w, n)).text() for (w, f), n in self.gaps.items()]

    def request(self, url: str, callback: Callable, *, expect: str, **kwargs: Any) -> scrapy.Request:
        meta = {"expect": expect, **kwargs.pop("meta", {})}
        errback = kwargs.pop("errback", self.on_error)
        return scrapy.Request(url, callback=callback, errback=errback, meta=meta, dont_filter=True, **kwargs)

    def on_error(self, failure: Failure) -> None:
        self.fail(f"{short_url(failure.request.url)}: {describe(failure)}")

    @staticmethod
    def item(record: NoticeRecord) -> dict[str, NoticeRecord]:
        return {"record": record}
