"""The calendar feeds' access tokens (created by migration 0004): one secret per feed, revocable.

Only a SHA-256 of the token is stored: the token itself is shown once, at creation. The list of tokens is read
without SQLAlchemy: ``storage.calendar_token_list``.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Column
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, select

from core.dates import now_utc
from storage.db import session_scope
from storage.types import UTCDateTime

ALL = "all"  # the feed with every label


class CalendarToken(SQLModel, table=True):
    __tablename__ = "calendar_token"
    id: int | None = Field(default=None, primary_key=True)
    feed: str = Field(index=True)  # a label, or "all"
    token_hash: str = Field(unique=True)
    note: str | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(engine: Engine, feed: str, note: str | None = None) -> tuple[int, str]:
    """A new secret for ``feed``; returns (id, token). The token is not stored, only its hash."""
    token = secrets.token_urlsafe(24)
    with session_scope(engine, write=True) as s:
        row = CalendarToken(feed=feed, token_hash=_hash(token), note=note, created_at=now_utc())
        s.add(row)
        s.flush()
        return int(row.id), token  # type: ignore[arg-type]


def revoke_token(engine: Engine, token_or_id: str) -> int:
    """Revoke by id or by the token itself; returns how many tokens were revoked (0 or 1)."""
    with session_scope(engine, write=True) as s:
        q = select(CalendarToken).where(CalendarToken.revoked_at.is_(None))
        if token_or_id.isdigit():
            q = q.where(CalendarToken.id == int(token_or_id))
        else:
            q = q.where(CalendarToken.token_hash == _hash(token_or_id))
        row = s.exec(q).first()
        if row is None:
            return 0
        row.revoked_at = now_utc()
        return 1


def check_token(engine: Engine, feed: str, token: str | None) -> bool:
    """Is ``token`` a live secret of this feed? (compared by hash: no timing hint about the secret)"""
    if not token:
        return False
    with session_scope(engine) as s:
        row = s.exec(
            select(CalendarToken).where(CalendarToken.token_hash == _hash(token), CalendarToken.feed == feed)
        ).first()
        return row is not None and row.revoked_at is None
