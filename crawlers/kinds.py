"""The source kinds: one declaration each (name, readable name, typed options, spider, healthy run).

A ``[[sources]]`` entry's ``kind`` names one of these and its ``options`` are validated against the
kind's pydantic model when the config is loaded (``veille config``), so a typo is refused at its
``file:line``, not mid-crawl. The crawl hands the spider the typed options. This module imports only
pydantic and the core: ``veille config`` and ``veille --help`` never import Scrapy (the spider is named
by its import path and loaded in the crawl child). How to add a kind: docs/extending.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.config import Expectation, use_source_kinds
from core.names import N_


class SourceOptions(BaseModel):
    """Options every kind accepts; a kind's model adds its own (``extra="forbid"``: unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")
    expect: Expectation | None = Field(
        None, description="overrides the kind's healthy-run expectation, key by key (docs/sources-health.md)"
    )

    def default_expectation(self, declared: Expectation) -> Expectation:
        """The kind's expectation for these options (a kind whose options change it overrides this)."""
        return declared


@dataclass(frozen=True)
class SourceKind:
    name: str  # the ``kind`` a config entry names
    title: str  # readable name: an English message id that web/locale translates (French by default)
    spider: str  # "module:Class", imported only by the crawl child
    options: type[SourceOptions] = SourceOptions
    # A healthy run (storage/health.py); why each kind's: docs/sources-health.md.
    expect: Expectation = field(default_factory=Expectation)

    def expectation(self, options: SourceOptions) -> Expectation:
        base = options.default_expectation(self.expect)
        if options.expect is None:
            return base
        return base.model_copy(update=options.expect.model_dump(include=options.expect.model_fields_set))


KINDS: dict[str, SourceKind] = {}
use_source_kinds(KINDS)  # the core config checks sources against these (it cannot import them)


def register(kind: SourceKind) -> SourceKind:
    """Declare a source kind (a module outside this one may declare its own: the tests' toy kind does)."""
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ValueError(f"source kind {kind.name!r} is declared twice")
    KINDS[kind.name] = kind
    return kind


def kind_titles() -> dict[str, str]:
    return {k.name: k.title for k in KINDS.values()}


class Pinned(SourceOptions):
    today: date | None = Field(None, description="the day deadlines are judged against (tests, replays); default today")


# --- Cellar SPARQL -------------------------------------------------------------------------------

CELLAR_REST = "http://publications.europa.eu/resource/celex/{celex}"


class SparqlOptions(SourceOptions):
    query: Literal["acts", "based_on"] = Field(
        "acts", description="acts: OJ acts and proposals of the window; based_on: acts whose legal basis is in `acts`"
    )
    acts: list[str] = Field([], description="CELEX of the watched acts (query = based_on)")
    initial_days: int = Field(30, ge=1, description="first run: look back this many days")
    page_size: int = Field(500, ge=1, description="rows per discovery page")
    batch: int = Field(25, ge=1, description="works per details query (keeps GET URLs well under 8 KB)")
    fetch_text: bool | list[str] = Field(False, description="fetch the act's text: true for all, or these CELEX")
    text_url: str = Field(CELLAR_REST, description="Cellar REST template for the text, with {celex}")
    text_language: str = Field("eng", description="language of the fetched text (Cellar's three-letter code)")
    max_text_chars: int = Field(200_000, ge=1, description="a longer text is abridged")

    def default_expectation(self, declared: Expectation) -> Expectation:
        return Expectation(empty_runs=0) if self.query == "based_on" else declared  # rare by nature


register(
    SourceKind(
        "sparql",
        N_("Cellar (SPARQL)"),
        "crawlers.spiders.sparql:SparqlSpider",
        SparqlOptions,
        Expectation(per_working_day=1, working_days=3),  # OJ L/C acts: every working day
    )
)


# --- RSS / Atom ----------------------------------------------------------------------------------


class RssOptions(SourceOptions):
    doc_type: str | None = Field(None, description="document type code given to every item")
    doc_kind: str | None = Field(None, description="notice kind of items without CELEX (default: news, EUR-Lex: other)")
    lenient_xml: bool = Field(False, description="accept a feed feedparser reads despite malformed XML")
    may_be_empty: bool = Field(False, description="a feed without items is normal (no warning)")


register(SourceKind("rss", N_("RSS feed"), "crawlers.spiders.rss:RssSpider", RssOptions, Expectation(empty_runs=3)))


# --- European Parliament -------------------------------------------------------------------------


class ProcedureOptions(SourceOptions):
    procedures: list[str] = Field(
        [], description="procedures to follow, as the service writes them (ODP: 2022-0140; OEIL: 2022/0140(COD))"
    )


register(
    SourceKind(
        "ep_odp",
        N_("European Parliament open data"),
        "crawlers.spiders.ep:EpOdpSpider",
        ProcedureOptions,
        Expectation(empty_runs=2),
    )
)
register(
    SourceKind(
        "oeil",
        N_("Legislative Observatory (OEIL)"),
        "crawlers.spiders.ep:OeilSpider",
        ProcedureOptions,
        Expectation(empty_runs=2),
    )
)


# --- Early signals -------------------------------------------------------------------------------


class HysOptions(Pinned):
    topics: list[str] = Field([], description="server-side topic filter, one sweep each (none: one sweep)")
    params: dict[str, Any] = Field({}, description='more query parameters, e.g. feedbackStatus = "OPEN"')
    max_pages: int = Field(3, ge=1, description="pages per sweep, newest first")
    size: int = Field(100, ge=1, description="items per page (at most 100)")
    dgs: list[str] = Field([], description="keep these DGs only (the DG is only in the detail)")
    details: bool = Field(True, description="fetch each initiative's groupInitiatives/{id}")


class FundingOptions(Pinned):
    mode: Literal["bulk", "search"] = Field("bulk", description="bulk: grantsTenders.json; search: SEDIA, paged")
    topics: list[str] | None = Field(None, description="identifier globs kept (default in crawlers/parsers/funding.py)")
    divisions: list[str] | None = Field(None, description="programme divisions kept")
    health_topics: list[str] | None = Field(None, description="identifier globs kept only when about health")
    health_terms: list[str] | None = Field(None, description="words that make a health_topics item about health")
    max_bytes: int = Field(400_000_000, ge=1, description="bulk file size cap")
    page_size: int = Field(100, ge=1, description="search: results per page (at most 100)")
    max_pages: int = Field(20, ge=1, description="search: pages at most")
    query: dict[str, Any] | None = Field(None, description="search: the SEDIA query (default: open grants)")


class CommitteeWatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: str = Field(description="a committee code or words of its title")
    act: str = Field(description="CELEX of the watched act")


class ComitologyOptions(Pinned):
    committees: list[CommitteeWatch] = Field(
        [], description='[{match = "health technology assessment", act = "32021R2282"}], or {"words or code" = "CELEX"}'
    )
    since_days: int = Field(60, ge=1, description="first run: documents of this many days back")
    max_pages: int = Field(50, ge=1, description="document pages at most")

    @field_validator("committees", mode="before")
    @classmethod
    def _table(cls, v: Any) -> Any:
        """The short form ``{"words or code" = "CELEX"}`` is the list ``[{match = ..., act = ...}]``."""
        return [{"match": k, "act": a} for k, a in v.items()] if isinstance(v, dict) else v


class DelegatedActsOptions(Pinned):
    acts: list[str] = Field([], description="CELEX of the watched basic acts")


register(
    SourceKind(
        "hys",
        N_("Have Your Say"),
        "crawlers.spiders.signals:HysSpider",
        HysOptions,
        Expectation(empty_runs=3, deadlines=True),
    )
)
register(
    SourceKind(
        "funding",
        N_("Funding & Tenders portal"),
        "crawlers.spiders.signals:FundingSpider",
        FundingOptions,
        Expectation(empty_runs=3, deadlines=True),
    )
)
register(
    SourceKind(
        "comitology",
        N_("Comitology register"),
        "crawlers.spiders.signals:ComitologySpider",
        ComitologyOptions,
        Expectation(empty_runs=6, deadlines=True),  # drafts come in bursts around meetings
    )
)
register(
    SourceKind(
        "delegated_acts",
        N_("Register of delegated acts"),
        "crawlers.spiders.signals:DelegatedActsSpider",
        DelegatedActsOptions,
        Expectation(empty_runs=6),
    )
)
