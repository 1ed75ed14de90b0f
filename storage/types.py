"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """An instant, read back as an aware UTC ``datetime`` on SQLite and PostgreSQL alike.

    SQLite keeps no zone (SQLAlchemy writes ``2026-12-07 17:05:00.000000`` and reads it back naive);
    PostgreSQL's ``timestamptz`` comes back in the connection's zone. Stored instants are UTC, so a naive
    value read is UTC; what is written is converted to UTC first (the stored form is what it always was:
    naive UTC text on SQLite, ``timestamptz`` on PostgreSQL). Readers never fix zones themselves.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
