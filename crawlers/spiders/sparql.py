"""Cellar SPARQL sources.

``options.query = "acts"``: acts and proposals whose OJ date (either property) falls in
[since - sparql_window_days, today]: the window re-reads metadata that arrives up to three working
days late. ``options.query = "based_on"`` with ``options.acts``: implementing and delegated acts
whose legal basis is a watched act, tagged with it in ``related_acts``. Both page the discovery
query and fetch details in batches; ``options.fetch_text`` adds the act's text via Cellar REST.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from scrapy.http import Response
from twisted.python.failure import Failure

from core.records import NoticeRecord
from crawlers.kinds.sparql import SparqlOptions
from crawlers.parsers import ParseError
from crawlers.parsers.cellar import parse_act_xhtml, parse_multiple_choices
from crawlers.parsers.sparql import (
    Discovered,
    acts_query,
    based_on_query,
    details_query,
    parse_details,
    parse_discovery,
)
from crawlers.spiders.base import VeilleSpider, describe, guarded, http_status

JSON_ACCEPT = {"Accept": "application/sparql-results+json"}
XHTML_ACCEPT = {"Accept": "application/xhtml+xml, text/html;q=0.9", "Accept-Language": "eng"}


class SparqlSpider(VeilleSpider):
    kind = "sparql"
    options: SparqlOptions

    def __init__(self, *args: Any, window_days: int = 7, initial_days: int = 30, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.window_days = window_days
        self.initial_days = self.options.initial_days
        self.page_size = self.options.page_size
        self.batch = self.options.batch
        self.watched = self.options.acts
        self.mode = self.options.query
        self.discovered: dict[str, Discovered] = {}

    def window(self) -> tuple[date, date]:
        today = datetime.now(UTC).date()
        start = self.since or today - timedelta(days=self.initial_days)
        return start - timedelta(days=self.window_days), today + timedelta(days=1)

    def sparql(self, query: str, callback: Any, **cb_kwargs: Any) -> Any:
        url = f"{self.source.url}?{urlencode({'query': query, 'format': 'application/sparql-results+json'})}"
        return self.request(url, callback, expect="json", headers=JSON_ACCEPT, cb_kwargs=cb_kwargs)

    def page(self, offset: int) -> Any:
        if self.mode == "based_on":
            query = based_on_query(self.watched, self.page_size, offset)
        else:
            since, until = self.window()
            query = acts_query(since, until, self.page_size, offset)
        return self.sparql(query, self.parse_page, offset=offset)

    async def start(self) -> AsyncIterator[Any]:
        if self.mode == "based_on" and not self.watched:
            self.fail("options.acts est vide : aucun acte suivi à chercher")
            return
        yield self.page(0)

    @guarded
    def parse_page(self, response: Response, offset: int) -> Iterator[Any]:
        found = parse_discovery(response.body)
        for d in found:
            self.discovered[d.work] = d
        for i in range(0, len(found), self.batch):
            yield self.sparql(details_query([d.work for d in found[i : i + self.batch]]), self.parse_details)
        if len(found) >= self.page_size:
            yield self.page(offset + self.page_size)

    @guarded
    def parse_details(self, response: Response) -> Iterator[Any]:
        for rec in parse_details(response.body, source=self.name, discovered=self.discovered, watched=self.watched):
            if self.wants_text(rec.celex):
                yield self.text_request(rec)
            else:
                yield self.item(rec)

    # --- Cellar REST text, by CELEX ---------------------------------------------------------
    def wants_text(self, celex: str | None) -> bool:
        """``fetch_text = true`` for every act, or a list of the CELEX numbers whose text we want."""
        want = self.options.fetch_text
        return bool(celex) and (want is True or (isinstance(want, list) and celex in want))

    def text_request(self, rec: NoticeRecord, url: str | None = None) -> Any:
        template = self.options.text_url
        url = url or f"{template.format(celex=rec.celex)}?language={self.options.text_language}"
        return self.request(
            url,
            self.parse_text,
            expect="html",
            headers=XHTML_ACCEPT,
            cb_kwargs={"rec": rec},
            meta={"handle_httpstatus_list": [300, 400, 404]},
            errback=self.text_failed,
        )

    def text_failed(self, failure: Failure) -> Iterator[Any]:
        """No text is a warning on the record, not a failed source: the metadata still lands."""
        rec = failure.request.cb_kwargs["rec"]
        self.warn(f"texte de {rec.celex} : {describe(failure, self.max_bytes)}")
        yield self.item(rec)

    def parse_text(self, response: Response, rec: NoticeRecord) -> Iterator[Any]:
        if response.status == 300:
            choices = parse_multiple_choices(response.body, response.url)
            if choices and not rec.extra.get("text_choice"):
                rec.extra["text_choice"] = choices[0]
                yield self.text_request(rec, url=choices[0])
                return
        if response.status != 200:
            reason = response.text[:400].strip() if response.body else ""
            self.warn(f"texte de {rec.celex} : {http_status(response.status)} {reason}".strip())
            yield self.item(rec)
            return
        try:
            act = parse_act_xhtml(response.body, max_chars=self.options.max_text_chars)
        except ParseError as exc:
            self.warn(f"texte de {rec.celex} : {exc}")
            yield self.item(rec)
            return
        rec.body, rec.lang = act.text, "en"
        if act.omitted:  # a long act is abridged: the notice says what was left out (the body's first lines too)
            rec.extra["text_omitted"] = act.omitted
        if act.canonical and not rec.eli:
            rec.extra["eurlex_eli"] = act.canonical
        yield self.item(rec)
