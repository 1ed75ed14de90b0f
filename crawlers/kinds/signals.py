"""Early signals: consultations, funding calls, draft implementing and delegated acts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.config import Expectation
from core.names import N_
from crawlers.kinds import Pinned, SourceKind, register


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
