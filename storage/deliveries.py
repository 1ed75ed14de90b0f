"""The outbox as ``veille deliveries`` and ``veille status`` read it (storage.reader: with or without SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.reader import Archive, instant, reading

UNSETTLED = ("failed", "uncertain")  # what needs a person: failed, or perhaps sent (--failed)


@dataclass
class DeliveryRow:
    id: int
    notice_id: int
    recipient: str
    channel: str
    purpose: str
    batch: str | None
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


def recent_deliveries(db: Archive, limit: int, unsettled_only: bool = False) -> list[DeliveryRow]:
    """The newest outbox rows first; with ``unsettled_only``, the failed and uncertain ones."""
    where = " WHERE status IN :unsettled" if unsettled_only else ""
    sql = (
        "SELECT id, notice_id, recipient, channel, purpose, batch, status, attempts, last_error, sent_at"
        f" FROM delivery{where} ORDER BY id DESC LIMIT :n"
    )
    with reading(db) as r:
        rows = r.all(sql, {"n": limit, **({"unsettled": UNSETTLED} if unsettled_only else {})})
    return [DeliveryRow(*row[:-1], instant(row[-1])) for row in rows]


def status_counts(db: Archive) -> list[tuple[str, int]]:
    """(status, number of rows) of the outbox, in the database's group order."""
    with reading(db) as r:
        return [(status, n) for status, n in r.all("SELECT status, count(*) FROM delivery GROUP BY status")]
