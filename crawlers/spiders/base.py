"""What every veille spider shares: its source config, failure bookkeeping, guarded callbacks.

A source fails when any request it needs fails for good (after retries) or when a body cannot be
read as what the source promises. Failures are collected, not raised, so the pipeline can report
the reason; other sources in the same crawl are unaffected.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from core.config import SourceConfig
from core.records import NoticeRecord
from crawlers.kinds import SourceOptions
from crawlers.parsers import ParseError, schemas

log = logging.getLogger(__name__)


# The HTTP errors a source gives most, named in French after the code (the code stays: operators search it).
HTTP_NAMES = {
    400: "requête invalide",
    401: "authentification requise",
    403: "accès interdit",
    404: "introuvable",
    408: "délai de requête dépassé",
    410: "ressource supprimée",
    429: "trop de requêtes",
    500: "erreur interne du serveur",
    502: "passerelle en erreur",
    503: "service indisponible",
    504: "délai de la passerelle dépassé",
}
SIZE_RE = re.compile(r"(?:Expected to receive|Received) (\d+) bytes which is larger than download max size \((\d+)\)")
SECONDS_RE = re.compile(r"took longer than ([\d.]+) seconds")


def http_status(status: int) -> str:
    """``HTTP 503 (service indisponible)``: the code, then what it means in French when it is a common one."""
    name = HTTP_NAMES.get(status)
    return f"HTTP {status} ({name})" if name else f"HTTP {status}"


def describe(failure: Failure, max_bytes: int | None = None) -> str:
    """A one-line reason for a failed request, in French (what the network did, with its figures).

    Scrapy (2.13+) wraps Twisted's network errors in its own exceptions; their English text repeats the URL,
    which the reason already starts with. An error of another kind keeps its name and text (shortened URL)."""
    exc = failure.value
    if isinstance(exc, HttpError):
        return http_status(exc.response.status)
    # Our own refusal (crawlers.middlewares.BadResponse: challenge, HTML page) is already one French line; that
    # module is not imported here: it imports Twisted's reactor, which must not be installed before Scrapy's.
    if type(exc).__name__ == "BadResponse":
        return str(exc)
    text = str(exc).strip()
    said = _network_reason(exc, text, max_bytes)
    if said:
        return said
    request = getattr(failure, "request", None)
    if request is not None and text:
        text = text.replace(request.url, short_url(request.url))
    name = type(exc).__name__
    text = text or name
    return text if name in text else f"{name}: {text}"


def _network_reason(exc: BaseException, text: str, max_bytes: int | None) -> str | None:
    """What a download failure means, in French, or None for an error of another kind (``max_bytes``: the cap,
    which Scrapy does not name when a body without a length streams past it)."""
    if isinstance(exc, DownloadTimeoutError):
        m = SECONDS_RE.search(text)
        return (
            f"délai dépassé : pas de réponse complète en {m.group(1).removesuffix('.0').replace('.', ',')} s"
            if m
            else "délai dépassé"
        )
    if isinstance(exc, DownloadCancelledError):  # past DOWNLOAD_MAXSIZE (announced, or streamed: then no text)
        m = SIZE_RE.search(text)
        if m:
            size = f"{m.group(1)} octets au-delà de la limite de {m.group(2)}"
        else:
            size = f"corps au-delà de la limite de {max_bytes}" if max_bytes else "corps au-delà de la limite"
        return f"téléchargement interrompu : {size} (crawl.max_body_bytes)"
    if isinstance(exc, ResponseDataLossError):
        return "réponse tronquée : la connexion a été coupée avant la fin du corps annoncé"
    if isinstance(exc, IgnoreRequest) and "robots.txt" in text:  # Scrapy's RobotsTxtMiddleware
        return "refusé par le robots.txt du site (crawl.obey_robots)"
    if isinstance(exc, DownloadConnectionRefusedError):
        return "connexion refusée par le serveur"
    if isinstance(exc, CannotResolveHostError):
        return f"nom d'hôte introuvable (DNS) : {text}" if text else "nom d'hôte introuvable (DNS)"
    if isinstance(exc, DownloadFailedError):
        if "ConnectionLost" in text or "ConnectionDone" in text:
            return "connexion coupée par le serveur avant la réponse complète"
        return f"échec du téléchargement : {text}" if text else "échec du téléchargement"
    return None


def short_url(url: str, limit: int = 160) -> str:
    """A URL for a failure reason: a long query (SPARQL sends kilobytes) is elided, so that the reason
    after it is not cut off when the run's error is stored."""
    if len(url) <= limit:
        return url
    head, _, query = url.partition("?")
    return f"{head[:limit]}?… ({len(query)} caractères de requête)" if query else url[:limit] + "…"


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
            self.fail(f"{short_url(response.url)} : {exc}")
        except Exception as exc:  # a parser bug must fail the source, not vanish in a log
            log.exception("parser error on %s", response.url)
            self.fail(f"{short_url(response.url)} : erreur de lecture ({type(exc).__name__}: {exc})")

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
        self.gap_of: dict[tuple[str, str], int] = {}  # (what, field) -> the items its own notes counted

    def fail(self, reason: str) -> None:
        self.errors.append(reason)

    def warn(self, reason: str) -> None:
        self.warnings.append(reason)

    def count_gaps(self, gaps: list[schemas.Gap]) -> None:
        for g in gaps:
            if g.field:
                self.gaps[(g.what, g.field)] = self.gaps.get((g.what, g.field), 0) + g.missing
                self.gap_of[(g.what, g.field)] = self.gap_of.get((g.what, g.field), 0) + g.total
            else:
                self.gap_totals[g.what] = self.gap_totals.get(g.what, 0) + g.total

    def gap_warnings(self) -> list[str]:
        """Items that came without an expected field, one line per field (issue 19: drift is loud)."""
        # Out of the items checked; a note without such a total (odd items of a list) brings its own.
        totals = {k: self.gap_totals.get(k[0], self.gap_of[k]) for k in self.gaps}
        return [schemas.Gap(w, f, n, totals[(w, f)]).text() for (w, f), n in self.gaps.items()]

    def request(self, url: str, callback: Callable, *, expect: str, **kwargs: Any) -> scrapy.Request:
        meta = {"expect": expect, **kwargs.pop("meta", {})}
        errback = kwargs.pop("errback", self.on_error)
        return scrapy.Request(url, callback=callback, errback=errback, meta=meta, dont_filter=True, **kwargs)

    def on_error(self, failure: Failure) -> None:
        self.fail(f"{short_url(failure.request.url)} : {describe(failure, self.max_bytes)}")

    @staticmethod
    def item(record: NoticeRecord) -> dict[str, NoticeRecord]:
        return {"record": record}
