"""The calendar feeds' tokens as their readers see them (the table and its writes: ``storage.calendar_tokens``),
read with SQL text through ``storage.reader``: ``veille calendar token list`` answers with sqlite3 alone
(docs/decisions.md, *Two ways to read the archive*). Never the secrets' hashes. This module imports no SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.reader import Archive, instant, reading


@dataclass(frozen=True)
class TokenRow:
    id: int
    feed: str  # a label, or "all"
    note: str | None
    created_at: datetime
    revoked_at: datetime | None


def tokens(db: Archive) -> list[TokenRow]:
    """Every token, revoked ones included, oldest first."""
    with reading(db) as r:
        rows = r.all("SELECT id, feed, note, created_at, revoked_at FROM calendar_token ORDER BY id")
    return [TokenRow(row.id, row.feed, row.note, instant(row.created_at), instant(row.revoked_at)) for row in rows]
