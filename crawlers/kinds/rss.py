"""RSS and Atom feeds (EUR-Lex, EMA, the Commission's newsrooms...)."""

from __future__ import annotations

from pydantic import Field

from core.config import Expectation
from core.names import N_
from crawlers.kinds import SourceKind, SourceOptions, register


class RssOptions(SourceOptions):
    doc_type: str | None = Field(None, description="document type code given to every item")
    doc_kind: str | None = Field(None, description="notice kind of items without CELEX (default: news, EUR-Lex: other)")
    lenient_xml: bool = Field(False, description="accept a feed feedparser reads despite malformed XML")
    may_be_empty: bool = Field(False, description="a feed without items is normal (no warning)")


register(SourceKind("rss", N_("RSS feed"), "crawlers.spiders.rss:RssSpider", RssOptions, Expectation(empty_runs=3)))
