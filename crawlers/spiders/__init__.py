"""One spider per source kind; a source's ``kind`` in the config selects it."""

from __future__ import annotations

from crawlers.spiders.base import VeilleSpider
from crawlers.spiders.ep import EpOdpSpider, OeilSpider
from crawlers.spiders.rss import RssSpider
from crawlers.spiders.signals import ComitologySpider, DelegatedActsSpider, FundingSpider, HysSpider
from crawlers.spiders.sparql import SparqlSpider

SPIDERS: dict[str, type[VeilleSpider]] = {
    cls.kind: cls
    for cls in (
        RssSpider,
        SparqlSpider,
        EpOdpSpider,
        OeilSpider,
        HysSpider,
        FundingSpider,
        ComitologySpider,
        DelegatedActsSpider,
    )
}


def spider_for(kind: str) -> type[VeilleSpider]:
    try:
        return SPIDERS[kind]
    except KeyError:
        raise KeyError(f"no spider for source kind {kind!r} (known: {', '.join(sorted(SPIDERS))})") from None
