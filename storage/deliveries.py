"""The outbox as its readers see it (storage.reader: with or without SQLAlchemy): ``veille deliveries`` and
``veille status``, and the planners and renderers of ``alerts/`` (which write through ``alerts.outbox``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.reader import Archive, instant, reading

UNSETTLED = ("failed", "uncertain")  # what needs a person: failed, or perhaps sent (--failed)
OPEN = ("pending", "failed")  # rows to (re)send
_COLUMNS = "id, notice_id, recipient, channel, purpose, batch, status, attempts, last_error, sent_at"


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
    sql = f"SELECT {_COLUMNS} FROM delivery{where} ORDER BY id DESC LIMIT :n"
    with reading(db) as r:
        rows = r.all(sql, {"n": limit, **({"unsettled": UNSETTLED} if unsettled_only else {})})
    return [_row(row) for row in rows]


def _row(row: tuple) -> DeliveryRow:
    return DeliveryRow(*row[:-1], instant(row[-1]))


def batch_rows(db: Archive, batch: str) -> list[DeliveryRow]:
    """The rows of one message, in planning order."""
    with reading(db) as r:
        rows = r.all(f"SELECT {_COLUMNS} FROM delivery WHERE batch = :b ORDER BY id", {"b": batch})
    return [_row(row) for row in rows]


def batches(db: Archive, purpose: str, prefix: str) -> dict[str, list[DeliveryRow]]:
    """The batches of ``purpose`` whose name starts with ``prefix``, with all their rows, in planning order."""
    # substr, not LIKE: a label's "_" would be a wildcard there.
    sql = f"SELECT {_COLUMNS} FROM delivery WHERE purpose = :p AND substr(batch, 1, :n) = :prefix ORDER BY id"
    out: dict[str, list[DeliveryRow]] = {}
    with reading(db) as r:
        for row in r.all(sql, {"p": purpose, "n": len(prefix), "prefix": prefix}):
            out.setdefault(row.batch, []).append(_row(row))
    return out


def open_batches(db: Archive, purpose: str) -> list[str]:
    """Batches with rows to (re)send, oldest first; a ``purpose`` ending in ``*`` is a prefix (``reminder-*``)."""
    prefix = purpose.removesuffix("*")
    match = "purpose = :p" if prefix == purpose else "substr(purpose, 1, :n) = :p"
    sql = (
        f"SELECT batch, min(id) AS first_id FROM delivery WHERE {match} AND status IN :open AND batch IS NOT NULL"
        " GROUP BY batch ORDER BY first_id"
    )
    with reading(db) as r:
        return [b for b, _ in r.all(sql, {"p": prefix, "n": len(prefix), "open": OPEN})]


def existing(db: Archive, recipient: str, channel: str, notice_ids: list[int], purposes: tuple[str, ...]) -> set[int]:
    """Notices that already have a row for this recipient and channel (any status)."""
    if not notice_ids:
        return set()
    sql = (
        "SELECT notice_id FROM delivery WHERE recipient = :r AND channel = :c AND purpose IN :purposes"
        " AND notice_id IN :ids"
    )
    with reading(db) as r:
        return {n for (n,) in r.all(sql, {"r": recipient, "c": channel, "purposes": purposes, "ids": notice_ids})}


def status_counts(db: Archive) -> list[tuple[str, int]]:
    """(status, number of rows) of the outbox, in the database's group order."""
    with reading(db) as r:
        return [(status, n) for status, n in r.all("SELECT status, count(*) FROM delivery GROUP BY status")]
