"""A toy source kind, added from the tests by the recipe of docs/extending.md ("Ajouter une source").

Everything a kind needs, in one module: its options model, its parser (the answer's declared shape for
drift, bytes -> NoticeRecords), its spider and its declaration. Importing the module registers the
kind; the crawl child imports it too, through the spider path the declaration names. The payload it
reads is CONSTRUCTED (tests/data/fixtures/toy/README.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any, ClassVar

from pydantic import Field
from scrapy.http import Response

from core.config import Expectation
from core.records import NoticeRecord
from crawlers.kinds import SourceKind, SourceOptions, register
from crawlers.parsers import ParseError, schemas
from crawlers.spiders.base import VeilleSpider, guarded

# --- options: typed, documented, unknown keys refused by `veille config` -------------------------


class ToyOptions(SourceOptions):
    section: str = Field("health", description="keep the register's items of this section only")
    max_items: int = Field(100, ge=1, description="keep at most this many items per run")


# --- parser: the answer's shape (drift is loud), then bytes -> records ---------------------------


class ToyItem(schemas.Shape):
    EXPECTED: ClassVar[tuple[str, ...]] = ("title", "published")
    ref: str
    title: str | None = None
    section: str | None = None
    published: date | None = None
    deadline: date | None = None
    link: str | None = None


class ToyRegister(schemas.Shape):
    items: list[ToyItem]


def parse_toy(body: bytes, *, source: str, section: str, max_items: int) -> list[NoticeRecord]:
    try:
        data = json.loads(body)
    except ValueError:
        raise ParseError("registre jouet : pas du JSON") from None
    register_ = schemas.check(ToyRegister, data, "registre jouet")
    return [
        NoticeRecord(
            source=source,
            external_id=item.ref,
            url=item.link,
            lang="en",
            title_en=item.title,
            kind="consultation" if item.deadline else "news",
            published_at=item.published,
            deadline=item.deadline,
        )
        for item in register_.items
        if item.section == section
    ][:max_items]


# --- spider: requests and callbacks only ---------------------------------------------------------


class ToySpider(VeilleSpider):
    kind = "toy"

    async def start(self) -> AsyncIterator[Any]:
        yield self.request(self.source.url, self.parse, expect="json", headers={"Accept": "application/json"})

    @guarded
    def parse(self, response: Response, **_: Any) -> Iterator[Any]:
        options: ToyOptions = self.options
        for rec in parse_toy(response.body, source=self.name, section=options.section, max_items=options.max_items):
            yield self.item(rec)


# --- declaration ---------------------------------------------------------------------------------

TOY = register(SourceKind("toy", "Toy register", "tests.toy_kind:ToySpider", ToyOptions, Expectation(empty_runs=2)))
