"""The plain record one stage hands to the next.

A crawler yields ``NoticeRecord``; storage ingests it; nlp, alerts and the web read notices back
from storage. No stage sees another stage's internals.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, Field, field_validator

from core.celex import CELEX_RE, base_celex, is_corrigendum, normalise_celex
from core.dates import brussels_day

# What a notice is, for grouping in digests and for routing rules.
Kind = Literal[
    "act",  # adopted act (regulation, directive, decision...) incl. implementing/delegated acts
    "corrigendum",
    "proposal",  # Commission proposal, preparatory act
    "procedure",  # procedure file / step (OEIL, EP Open Data, EUR-Lex procedure)
    "news",  # press release, news item
    "guidance",  # guidance documents (MDCG, EMA guidelines...)
    "consultation",  # Have Your Say consultation / call for evidence
    "draft_act",  # draft implementing/delegated act
    "funding_call",  # EU funding topic
    "other",
]
# How far a record's dates can be trusted, by the kind of source that gave them (docs/decisions.md, "Dates"):
# the Publications Office's own metadata (Cellar), the publisher or register that owns the item, or a list
# that re-publishes items with dates of its own (EUR-Lex RSS: the day the document was loaded).
DateOrigin = Literal["official", "source", "listing"]

__all__ = ["CELEX_RE", "Kind", "NoticeRecord", "as_utc", "base_celex", "canonical_url"]


TRACKING_PARAMS = {"qid", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "pk_campaign"}


def canonical_url(url: str | None) -> str | None:
    """One spelling per page: no EUR-Lex ``/./``, no tracking parameters, no fragment, trimmed."""
    if not url or not url.strip():
        return None
    parts = urlsplit(url.strip())
    path = re.sub(r"/(?:\./)+", "/", parts.path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in TRACKING_PARAMS]
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query, safe=":/()"), ""))


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# What a reader sees of a notice, declared once: a change in one of these fields is a new version of the notice
# (storage.ingest hashes and snapshots the notice on them) and makes a sighting's record look changed
# (NoticeRecord.content_hash). Not ``lang``: a feed saying "en" of an act whose language was unset is no change.
READER_FIELDS = (
    "celex",
    "kind",
    "title_en",
    "title_fr",
    "summary_en",
    "summary_fr",
    "body",
    "doc_type",
    "published_at",
    "document_date",
    "opens",
    "deadline",
    "related_acts",
    "legal_basis",
    "eurovoc",
)


class NoticeRecord(BaseModel):
    """One item as a source saw it. Only ``source``, ``external_id`` and a title are required."""

    source: str
    external_id: str
    url: str | None = None
    celex: str | None = None
    eli: str | None = None
    procedure: str | None = None  # e.g. "2021/0106(COD)"
    lang: str | None = None  # language of ``body`` (and of the single-language fields)
    title_en: str | None = None
    title_fr: str | None = None
    summary_en: str | None = None
    summary_fr: str | None = None
    body: str | None = None
    doc_type: str | None = None  # e.g. REG_IMPL, PROP_REG, press_release
    kind: Kind = "other"
    published_at: date | None = None  # publication day in Brussels: OJ issue, or the publisher's item date
    document_date: date | None = None  # the document's own date (adoption, signature, creation), Brussels
    loaded_at: datetime | None = None  # when the source says it was loaded (EUR-Lex RSS pubDate)
    opens: date | None = None  # consultation / call opening
    deadline: date | None = None  # last day to act: feedback / call closing, end of a committee's procedure
    related_acts: list[str] = Field(default_factory=list)  # CELEX of acts this one implements/cites
    legal_basis: list[str] = Field(default_factory=list)  # CELEX of the legal basis
    eurovoc: list[str] = Field(default_factory=list)  # EuroVoc labels
    authors: list[str] = Field(default_factory=list)
    extra: dict = Field(default_factory=dict)  # source-specific metadata kept for display
    date_origin: DateOrigin = "source"

    @field_validator("title_en", "title_fr")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        """A title is one line whatever the source sends (``certaines\nmarchandises``, tabs, runs of spaces)."""
        return (" ".join(v.split()) or None) if v else None

    @field_validator("celex")
    @classmethod
    def _celex(cls, v: str | None) -> str | None:
        return (normalise_celex(v) or v.strip() or None) if v else None

    @field_validator("loaded_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return as_utc(v)

    @field_validator("published_at", "document_date", "opens", "deadline", mode="before")
    @classmethod
    def _brussels_day(cls, v: object) -> object:
        """An instant or a source's date text is the calendar day it is in Brussels."""
        if v is None or isinstance(v, date) and not isinstance(v, datetime):
            return v
        day = brussels_day(v) if isinstance(v, str | datetime) else None
        return day if day is not None else v

    @property
    def title(self) -> str:
        return self.title_fr or self.title_en or ""

    @property
    def is_corrigendum(self) -> bool:
        return is_corrigendum(self.celex)

    def content_hash(self) -> str:
        """Hash of what a reader sees: a change here is a new version, not an overwrite."""
        payload = self.model_dump(mode="json", include=set(READER_FIELDS))
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
