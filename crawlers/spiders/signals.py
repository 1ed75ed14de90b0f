"""Early signals: Have Your Say (``hys``), Funding & Tenders (``funding``), the Comitology Register
(``comitology``) and the Register of delegated acts (``delegated_acts``). Parsing is in
``crawlers.parsers.hys``, ``.funding`` and ``.registers``; the spiders only page and chain requests.

``options.today`` (YYYY-MM-DD) pins the date deadlines are judged against (tests, replays); by
default it is today's date. Every page a source needs must succeed: a page that fails after the
retries fails the run (no silent truncation of a sweep).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response

from core.dates import today_brussels
from crawlers.kinds import Pinned
from crawlers.kinds.signals import ComitologyOptions, DelegatedActsOptions, FundingOptions, HysOptions
from crawlers.parsers import ParseError, hys
from crawlers.parsers import funding as ft
from crawlers.parsers import registers as reg
from crawlers.spiders.base import VeilleSpider, guarded, short_url

JSON = {"Accept": "application/json"}


class SignalSpider(VeilleSpider):
    options: Pinned

    @property
    def today(self) -> date:
        return self.options.today or today_brussels()


# --- Have Your Say ---------------------------------------------------------------------------------


class HysSpider(SignalSpider):
    """``url`` is the ``brpapi`` base. ``options``: ``topics`` (server-side filter, one sweep each;
    none: one unfiltered sweep), ``params`` (more query parameters, e.g. ``feedbackStatus = "OPEN"``),
    ``max_pages`` (per sweep, newest first), ``size`` (<= 100), ``dgs`` (keep these DGs only; the
    DG is only in the detail), ``details`` (fetch ``groupInitiatives/{id}``, default true)."""

    kind = "hys"
    options: HysOptions

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.size = min(self.options.size, 100)
        self.max_pages = self.options.max_pages
        self.dgs = {d.upper() for d in self.options.dgs}
        self.queued: set[int] = set()

    def search(self, topic: str | None, page: int) -> Request:
        query = {"language": "EN", "page": page, "size": self.size, **self.options.params}
        if topic:
            query["topic"] = topic
        url = f"{self.source.url.rstrip('/')}/searchInitiatives?{urlencode(query)}"
        return self.request(
            url, self.parse_search, expect="json", headers=JSON, cb_kwargs={"topic": topic, "page": page}
        )

    async def start(self) -> AsyncIterator[Any]:
        for topic in self.options.topics or [None]:
            yield self.search(topic, 0)

    @guarded
    def parse_search(self, response: Response, topic: str | None, page: int) -> Iterator[Any]:
        result = hys.parse_search(response.body)
        for item in result.items:
            iid = hys.hys_id(item.get("id"))
            if iid in self.queued:
                continue
            self.queued.add(iid)
            if self.options.details:
                url = f"{self.source.url.rstrip('/')}/groupInitiatives/{iid}"
                yield self.request(url, self.parse_detail, expect="json", headers=JSON, cb_kwargs={"item": item})
            else:
                yield from self.emit(item, None)
        if not result.last and page + 1 < self.max_pages:
            yield self.search(topic, page + 1)

    @guarded
    def parse_detail(self, response: Response, item: dict) -> Iterator[Any]:
        yield from self.emit(item, hys.parse_detail(response.body))

    def emit(self, item: dict, detail: dict | None) -> Iterator[Any]:
        dg = str((detail or {}).get("dg") or "").upper()
        if self.dgs and detail is not None and dg not in self.dgs:
            return
        for rec in hys.initiative_records(self.name, item, detail, self.today):
            yield self.item(rec)


# --- Funding & Tenders -----------------------------------------------------------------------------


class FundingSpider(SignalSpider):
    """``options.mode = "bulk"``: ``url`` is ``grantsTenders.json``, streamed through ijson as it
    downloads, with a conditional GET (its ETag kept beside the HTTP cache); ``"search"``: ``url``
    is the SEDIA search endpoint, multipart POST, paged. Topic filters: ``topics``, ``divisions``,
    ``health_topics``, ``health_terms`` (see ``TopicFilter``)."""

    kind = "funding"
    options: FundingOptions

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.mode = self.options.mode
        self.wanted = ft.TopicFilter.from_options(self.options.model_dump(exclude_none=True))
        self.streams: dict[str, ft.BulkStream] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> FundingSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_bytes, signal=signals.bytes_received)
        return spider

    # bulk ---------------------------------------------------------------------------------------
    def etag_file(self) -> Path | None:
        root = self.settings.get("HTTPCACHE_DIR") if hasattr(self, "settings") else None
        return Path(root) / f"{self.name}.etag" if root else None

    async def start(self) -> AsyncIterator[Any]:
        if self.mode == "search":
            yield self.search_page(1)
            return
        headers = dict(JSON)
        etag = self.etag_file()
        if etag and etag.exists():
            headers["If-None-Match"] = etag.read_text(encoding="utf-8").strip()
        yield self.request(
            self.source.url,
            self.parse_bulk,
            expect="json",
            headers=headers,
            meta={
                "stream_json": True,
                "dont_cache": True,  # our own conditional GET: the cache would keep a 130 MB copy
                "handle_httpstatus_list": [304],
                "download_maxsize": self.options.max_bytes,
            },
        )

    def on_bytes(self, data: bytes, request: Request, spider: Any = None) -> None:
        """Each chunk goes to ijson as it arrives: the JSON document is never built in memory."""
        if request.meta.get("stream_json"):
            stream = self.streams.setdefault(request.url, ft.BulkStream(self.name, self.wanted, self.today))
            try:
                stream.feed(data)
            except ParseError as exc:
                request.meta["stream_error"] = str(exc)

    @guarded
    def parse_bulk(self, response: Response) -> Iterator[Any]:
        if response.status == 304:
            return  # unchanged since the last run: nothing to store
        stream = self.streams.pop(response.request.url, None)
        if response.request.meta.get("stream_error"):
            raise ParseError(response.request.meta["stream_error"])
        if stream is None:  # nothing streamed (e.g. served from elsewhere): parse the body in chunks
            stream = ft.BulkStream(self.name, self.wanted, self.today)
            for i in range(0, len(response.body), 1 << 16):
                stream.feed(response.body[i : i + (1 << 16)])
        records = stream.close()
        if msg := stream.skipped.message(stream.seen):
            self.warn(f"{short_url(response.url)} : {msg}")
        for rec in records:
            yield self.item(rec)
        etag, path = response.headers.get(b"ETag"), self.etag_file()
        if etag and path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(etag.decode("latin-1"), encoding="utf-8")

    # search ---------------------------------------------------------------------------------------
    def search_page(self, number: int) -> Request:
        size = min(self.options.page_size, 100)
        query = self.options.query or {
            "bool": {"must": [{"terms": {"type": ["1", "2", "8"]}}, {"terms": {"status": ["31094501", "31094502"]}}]}
        }
        boundary = uuid.uuid4().hex
        body = ft.multipart(
            {"query": query, "languages": ["en"], "sort": {"field": "deadlineDate", "order": "ASC"}}, boundary
        )
        url = (
            f"{self.source.url}?{urlencode({'apiKey': 'SEDIA', 'text': '***', 'pageSize': size, 'pageNumber': number})}"
        )
        return self.request(
            url,
            self.parse_search,
            expect="json",
            method="POST",
            body=body,
            headers={**JSON, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            cb_kwargs={"number": number, "size": size},
        )

    @guarded
    def parse_search(self, response: Response, number: int, size: int) -> Iterator[Any]:
        page = ft.parse_search(response.body, self.name, self.wanted, self.today)
        if msg := page.skipped.message(page.results):
            self.warn(f"{short_url(response.url)} : {msg}")
        for rec in page.records:
            yield self.item(rec)
        max_pages = self.options.max_pages
        if page.results >= size and number * size < page.total and number < max_pages:
            yield self.search_page(number + 1)


# --- Comitology Register -----------------------------------------------------------------------


class ComitologySpider(SignalSpider):
    """``url`` is the ``core/api/front`` base. ``options.committees`` maps a committee code or words of
    its title to the watched act's CELEX (``{"health technology assessment" = "32021R2282"}`` or a list
    of ``{match = ..., act = ...}``);
    the committees lookup resolves titles to codes. ``options.since_days`` (default 60) bounds the
    first run."""

    kind = "comitology"
    options: ComitologyOptions

    async def start(self) -> AsyncIterator[Any]:
        if not self.options.committees:
            self.fail("options.committees est vide : aucun comité à suivre")
            return
        url = f"{self.source.url.rstrip('/')}/committees"
        yield self.request(url, self.parse_committees, expect="json", headers=JSON)

    def watched_committees(self) -> dict[str, str]:
        """``{"words or code" = "CELEX"}`` or ``[{match = "words or code", act = "CELEX"}]``."""
        return {c.match: c.act for c in self.options.committees}

    @guarded
    def parse_committees(self, response: Response) -> Iterator[Any]:
        acts = reg.match_committees(reg.parse_committees(response.body), self.watched_committees())
        if not acts:
            raise ParseError("aucun comité du registre ne correspond à options.committees")
        yield self.documents(acts, 0)

    def documents(self, acts: dict[str, str], page: int) -> Request:
        since = self.since or date.fromordinal(self.today.toordinal() - self.options.since_days)
        body = {
            "reset": True,
            "committeeCodes": sorted(acts),
            "documentStartDate": f"{since.isoformat()}T00:00:00.000Z",
        }
        query = urlencode({"page": page, "size": 100, "sort": "documentReference,asc"})
        return self.request(
            f"{self.source.url.rstrip('/')}/documents/search?{query}",
            self.parse_documents,
            expect="json",
            method="POST",
            body=json.dumps(body),
            headers={**JSON, "Content-Type": "application/json"},
            cb_kwargs={"acts": acts, "page": page},
        )

    @guarded
    def parse_documents(self, response: Response, acts: dict[str, str], page: int) -> Iterator[Any]:
        records, last = reg.parse_documents(response.body, self.name, acts)
        for rec in records:
            yield self.item(rec)
        if not last and page + 1 < self.options.max_pages:
            yield self.documents(acts, page + 1)


# --- Register of delegated acts --------------------------------------------------------------------


class DelegatedActsSpider(SignalSpider):
    """``url`` is the RegDel base (``…/regdel/``): a GET for the XSRF cookie, then the JSON list
    (``POST web/delegatedActs``) with the ``X-XSRF-TOKEN`` header. ``options.acts``: watched basic acts."""

    kind = "delegated_acts"
    options: DelegatedActsOptions

    async def start(self) -> AsyncIterator[Any]:
        yield self.request(self.source.url, self.parse_home, expect="html")

    @guarded
    def parse_home(self, response: Response) -> Iterator[Any]:
        token = None
        for header in response.headers.getlist(b"Set-Cookie"):
            name, _, rest = header.decode("latin-1").partition("=")
            if name.strip().upper() == "XSRF-TOKEN":
                token = rest.split(";", 1)[0]
        if not token:
            raise ParseError("pas de cookie XSRF-TOKEN sur la page d'accueil du registre")
        yield self.request(
            f"{self.source.url.rstrip('/')}/web/delegatedActs",
            self.parse_list,
            expect="json",
            method="POST",
            body=json.dumps({"language": "en"}),
            headers={**JSON, "Content-Type": "application/json", "X-XSRF-TOKEN": token},
        )

    @guarded
    def parse_list(self, response: Response) -> Iterator[Any]:
        for rec in reg.parse_regdel(response.body, self.name, self.options.acts):
            yield self.item(rec)
