"""The archive's tables (SQLModel). Alembic migrations in ``storage/migrations`` create them.

Identity: a notice is one act or item, whatever the number of sources that saw it. Each source's
view of it is a ``Sighting`` (unique on source + external id); CELEX, ELI and canonical URL merge
sightings of the same act. Every change of what a reader sees is a ``NoticeVersion``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint, event
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def _ts(**kw) -> Column:
    return Column(UTCDateTime(), **kw)


class Source(SQLModel, table=True):
    name: str = Field(primary_key=True)
    kind: str
    watermark: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_success: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_failure: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str | None = None


class CrawlRun(SQLModel, table=True):
    __tablename__ = "crawl_run"
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    started_at: datetime = Field(sa_column=_ts(nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    status: str = "running"  # running | ok | failed
    n_seen: int = 0
    n_new: int = 0
    n_updated: int = 0
    n_unchanged: int = 0
    n_requests: int = 0
    n_not_modified: int = 0  # 304 answers: nothing downloaded
    bytes_downloaded: int = 0
    error: str | None = None
    warnings: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # drift seen, one a line


class Notice(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    celex: str | None = Field(default=None, index=True)  # base CELEX (corrigenda merge into their act)
    eli: str | None = Field(default=None, index=True)
    url: str | None = Field(default=None, index=True)  # canonical URL
    procedure: str | None = Field(default=None, index=True)
    lang: str | None = None
    title_en: str | None = None
    title_fr: str | None = None
    summary_en: str | None = None
    summary_fr: str | None = None
    body: str | None = None
    doc_type: str | None = Field(default=None, index=True)
    kind: str = Field(default="other", index=True)
    source: str = Field(index=True)  # first source that saw it
    # Day-valued facts are Brussels calendar days (docs/decisions.md, "Dates"); instants are aware UTC.
    published_at: date | None = Field(default=None, index=True)  # publication day (the name predates the type)
    document_date: date | None = None
    opens: date | None = None
    deadline: date | None = Field(default=None, index=True)
    related_acts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    legal_basis: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    eurovoc: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    extra: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 1
    content_hash: str
    first_seen: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    # Date-ordered search key: days since 1970 << 32 | id. Lets FTS stream newest-first.
    search_key: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))

    @property
    def title(self) -> str:
        return self.title_fr or self.title_en or ""


class Sighting(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("source", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    source: str
    external_id: str
    url: str | None = None
    celex: str | None = None  # as the source gave it (may be a corrigendum)
    content_hash: str  # of the record this source gave: unchanged = nothing to do
    first_seen: datetime = Field(sa_column=_ts(nullable=False))
    last_seen: datetime = Field(sa_column=_ts(nullable=False))


class NoticeVersion(SQLModel, table=True):
    __tablename__ = "notice_version"
    __table_args__ = (UniqueConstraint("notice_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    version: int
    reason: str  # new | changed | corrigendum R(02) | deadline moved
    source: str
    celex: str | None = None
    content_hash: str
    snapshot: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class LabelScore(SQLModel, table=True):
    __tablename__ = "label_score"
    __table_args__ = (
        UniqueConstraint("notice_id", "label"),
        Index("ix_label_score_label_score", "label", "score"),
    )
    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    label: str
    score: float
    rule_score: float | None = None
    model_score: float | None = None
    selected: bool = False  # score above the label's threshold
    explanation: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rules_version: str
    model_version: str | None = None
    scored_at: datetime = Field(sa_column=_ts(nullable=False))


class Feedback(SQLModel, table=True):
    """One analyst's verdict on (notice, label): one row, updated when they change their mind."""

    __table_args__ = (UniqueConstraint("notice_id", "label", "user"),)
    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    label: str
    verdict: bool  # True: the label applies; False: it does not
    user: str
    comment: str | None = None
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class Delivery(SQLModel, table=True):
    """The outbox: one row per (notice, recipient, channel, purpose), written before sending."""

    __table_args__ = (
        UniqueConstraint("notice_id", "recipient", "channel", "purpose"),
        Index("ix_delivery_status", "status", "channel"),
    )
    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    recipient: str
    channel: str  # email | slack | webhook
    purpose: str  # alert | digest | reminder-10 ...
    batch: str | None = Field(default=None, index=True)  # the digest/message this row went out in
    status: str = "pending"  # pending | sent | failed
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class KeyValue(SQLModel, table=True):
    """Small bits of state (last digest per recipient, rules version in force...)."""

    __tablename__ = "kv"
    key: str = Field(primary_key=True)
    value: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


@event.listens_for(Session, "after_flush")
def _label_scores_flushed(session: Session, _ctx) -> None:
    """Keep the FTS filter tokens in step with label scores, whoever writes them (classify, feedback...).
    Registered here, with the table: whoever writes a LabelScore has imported this module."""
    from storage.fulltext import refresh_labels

    changed = {o.notice_id for o in (*session.new, *session.dirty, *session.deleted) if isinstance(o, LabelScore)}
    if changed:
        refresh_labels(session.connection(), sorted(changed))
