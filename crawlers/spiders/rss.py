"""RSS/Atom sources: EUR-Lex predefined feeds (``{LANG}`` expanded per language), Commission
(DG SANTE, digital-strategy / AI Office), EMA and Press Corner feeds. Parsing is feedparser's, from
the Scrapy response body, after the checks in ``crawlers.parsers.feed``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from crawlers.kinds.rss import RssOptions
from crawlers.parsers.feed import parse_feed
from crawlers.spiders.base import VeilleSpider, guarded, short_url


def feed_urls(url: str, languages: list[str]) -> list[tuple[str, str]]:
    """``.../{LANG}/display-feed.rss`` -> one (lang, url) per configured language."""
    langs = languages or ["en"]
    if "{LANG}" in url or "{lang}" in url:
        return [(lang, url.replace("{LANG}", lang.upper()).replace("{lang}", lang.lower())) for lang in langs]
    return [(langs[0], url)]


class RssSpider(VeilleSpider):
    kind = "rss"
    options: RssOptions

    async def start(self) -> AsyncIterator[Any]:
        for lang, url in feed_urls(self.source.url, self.source.languages):
            yield self.request(
                url,
                self.parse_feed,
                expect="feed",
                cb_kwargs={"lang": lang},
                headers={"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"},
            )

    @guarded
    def parse_feed(self, response: Response, lang: str) -> Iterator[Any]:
        options = self.options.model_dump(exclude_none=True)
        records = parse_feed(response.body, source=self.name, lang=lang, options=options, max_bytes=self.max_bytes)
        if not records and not self.options.may_be_empty:
            self.warn(f"{short_url(response.url)} : flux sans aucun élément")
        for rec in records:
            yield self.item(rec)
