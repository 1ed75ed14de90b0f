"""European Parliament procedures: EP Open Data Portal (``ep_odp``) or OEIL pages (``oeil``).

``url`` is a template with ``{ref}``; ``options.procedures`` lists the procedures to follow, in the
form each service uses (ODP: ``2022-0140``; OEIL: ``2022/0140(COD)``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from crawlers.kinds.ep import ProcedureOptions
from crawlers.parsers.ep import parse_ep_odp, parse_oeil
from crawlers.spiders.base import VeilleSpider, guarded, short_url


class EpOdpSpider(VeilleSpider):
    kind = "ep_odp"
    options: ProcedureOptions
    expect = "json"
    accept = "application/ld+json, application/json;q=0.9"

    async def start(self) -> AsyncIterator[Any]:
        procedures = self.options.procedures
        if not procedures:
            self.fail("options.procedures est vide : aucune procédure à suivre")
            return
        for ref in procedures:
            yield self.request(
                self.source.url.format(ref=ref), self.parse, expect=self.expect, headers={"Accept": self.accept}
            )

    @guarded
    def parse(self, response: Response, **_: Any) -> Iterator[Any]:
        where = short_url(response.url)
        for rec in parse_ep_odp(response.body, source=self.name, warn=lambda msg: self.warn(f"{where} : {msg}")):
            yield self.item(rec)


class OeilSpider(EpOdpSpider):
    kind = "oeil"
    expect = "html"
    accept = "text/html"

    @guarded
    def parse(self, response: Response, **_: Any) -> Iterator[Any]:
        for rec in parse_oeil(response.body, source=self.name):
            yield self.item(rec)
