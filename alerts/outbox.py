"""The outbox: delivery rows written before sending, marked sent only once the server accepted.

Protocol for one message (a *batch*: the rows with the same ``batch`` id):

1. :func:`plan` inserts the due rows as ``pending`` in one transaction (existing keys untouched,
   so a (notice, recipient, channel, purpose) is planned once, ever).
2. :func:`deliver` renders the message from the batch's rows and hands it to a transport. Just
   before the point of no return (SMTP ``DATA``, the Slack POST, the file rename) the rows are
   *claimed*: moved to ``sending`` by a compare-and-set that must change exactly the rows read, so of
   two processes on the same batch only one sends it (:func:`_claim`). When the server accepted, the
   rows become ``sent`` in one transaction, with whatever the caller must record alongside (the
   recipient's last digest).
3. A refusal or an outage (the server said no, or we never got to hand over) marks the rows
   ``failed`` with the error; ``pending`` and ``failed`` batches are retried on the next run.
4. Rows still ``sending`` after ``STALE_AFTER`` belong to a process that died while handing over:
   the transport is asked whether the message arrived (files can tell; SMTP and webhooks cannot).
   Unknown means ``uncertain``: never resent automatically (that could be a second copy), listed
   by ``veille deliveries --failed`` and resent by hand with ``veille deliveries --retry BATCH``.

A Slack message may be several posts (block limits); the number of parts already accepted is kept in
``KeyValue['outbox:<batch>']`` so a retry resumes after them instead of posting them twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts.delivery import DeliveryStats, Planned, Rejected, Transport
from core.dates import paris_time
from core.records import as_utc
from storage.db import is_sqlite, session_scope
from storage.deliveries import OPEN, DeliveryRow, batch_rows
from storage.models import Delivery, KeyValue

STALE_AFTER = timedelta(minutes=15)
ERROR_LIMIT = 500


def plan(engine: Engine, rows: Iterable[Planned], now: datetime, status: str = "pending") -> int:
    """Insert the rows that do not exist yet, in one transaction; return how many were new.

    ``status="skipped"``: the notice is recorded as handled for that recipient, never sent."""
    values = [{**r.__dict__, "status": status, "attempts": 0, "created_at": now} for r in rows]
    if not values:
        return 0
    insert = sqlite_insert if is_sqlite(engine) else pg_insert
    stmt = insert(Delivery).on_conflict_do_nothing(index_elements=["notice_id", "recipient", "channel", "purpose"])
    with session_scope(engine, write=True) as s:
        result = s.connection().execute(stmt, values)
        return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(values)


def _progress(s: Session, batch: str) -> int:
    kv = s.get(KeyValue, f"outbox:{batch}")
    return int(kv.value.get("parts_done", 0)) if kv else 0


def _set_progress(s: Session, batch: str, parts_done: int | None, now: datetime) -> None:
    key = f"outbox:{batch}"
    kv = s.get(KeyValue, key)
    if parts_done is None:
        if kv:
            s.delete(kv)
    elif kv:
        kv.value, kv.updated_at = {"parts_done": parts_done}, now
    else:
        s.add(KeyValue(key=key, value={"parts_done": parts_done}, updated_at=now))


def _set_status(s: Session, batch: str, old: tuple[str, ...], **values: Any) -> int:
    stmt = update(Delivery).where(Delivery.batch == batch, Delivery.status.in_(old)).values(**values)
    return s.connection().execute(stmt).rowcount


def reconcile(engine: Engine, transport_for: Callable[[str, str], Transport], now: datetime) -> DeliveryStats:
    """Settle rows left ``sending`` by a process that died while handing a message over."""
    stats = DeliveryStats()
    with session_scope(engine) as s:
        stuck = list(s.exec(select(Delivery).where(Delivery.status == "sending")))
    for batch in dict.fromkeys(r.batch for r in stuck):
        rows = [r for r in stuck if r.batch == batch]
        if as_utc(rows[0].sent_at) and as_utc(rows[0].sent_at) > now - STALE_AFTER:
            continue  # another process may be sending it right now
        transport = transport_for(rows[0].channel, rows[0].recipient)
        with session_scope(engine, write=True) as s:
            part = _progress(s, batch)
            arrived = transport.confirm(batch, part)
            if arrived:
                _set_status(s, batch, ("sending",), status="sent", last_error=None)
                _set_progress(s, batch, None, now)
                stats.add(rows[0].channel, "sent", len(rows))
            else:
                why = "introuvable chez le destinataire" if arrived is False else "il est peut-être arrivé"
                msg = (
                    f"processus arrêté pendant la remise de la partie {part + 1} au serveur le "
                    f"{paris_time(rows[0].sent_at, short=True)} ; {why} ; pas de renvoi automatique "
                    f"(veille deliveries --retry {batch})"
                )
                status = "failed" if arrived is False else "uncertain"
                _set_status(s, batch, ("sending",), status=status, last_error=msg)
                stats.add(rows[0].channel, status, len(rows))
    return stats


def retry(engine: Engine, batch: str) -> int:
    """Put an uncertain or failed batch back in the queue (a human decided to resend it)."""
    with session_scope(engine, write=True) as s:
        return _set_status(s, batch, ("uncertain", "failed"), status="pending")


class ClaimLost(Exception):
    """Another process claimed the batch first (or it changed since it was read): do not send it."""


def _claim(engine: Engine, batch: str, rows: list[DeliveryRow], start: int, i: int, now: datetime) -> None:
    """Compare-and-set before part ``i`` leaves; :class:`ClaimLost` (nothing written) unless it holds.

    The first hand-over moves every row of the batch from pending/failed to ``sending``: it must
    change exactly the rows this process read and rendered, or another process got there first (its
    rows are ``sending`` or ``sent``) or added to the batch. Later parts go only while the rows are
    still ``sending`` (a ``reconcile`` elsewhere may have settled a batch it took for abandoned).
    The update is one transaction: on a mismatch it is rolled back.
    """
    old = OPEN if i == start else ("sending",)
    with session_scope(engine, write=True) as s:
        n = _set_status(s, batch, old, status="sending", sent_at=now, attempts=rows[0].attempts + 1)
        if n != len(rows):
            raise ClaimLost(f"{batch} : pris par un autre processus ({n} lignes libres sur {len(rows)})")
        if i > start:  # part i-1 was accepted: never post it again
            _set_progress(s, batch, i, now)


def deliver(
    engine: Engine,
    batch: str,
    transport: Transport,
    render: Callable[[list[DeliveryRow]], list[Any]],
    now: datetime,
    on_sent: Callable[[Session], None] | None = None,
) -> DeliveryStats:
    """Send one batch (see the module docstring); return what happened to its rows."""
    stats = DeliveryStats()
    rows = [r for r in batch_rows(engine, batch) if r.status in OPEN]
    if not rows:
        return stats
    channel = rows[0].channel
    with session_scope(engine) as s:
        start = _progress(s, batch)
    claimed = False

    def handing_over(i: int) -> None:
        nonlocal claimed
        _claim(engine, batch, rows, start, i, now)
        claimed = True

    try:
        transport.send(rows[0].recipient, batch, render(rows), start, handing_over)
    except ClaimLost as exc:  # someone else sends it: leave its rows alone
        stats.notes.append(str(exc))
        return stats
    except Exception as exc:  # any failure is recorded on the rows, never lost
        # A refusal is said in French by the transport; another error keeps its name and its library's words.
        error = (str(exc) if isinstance(exc, Rejected) else f"{type(exc).__name__}: {exc}")[:ERROR_LIMIT]
        # Rejected, or failed before our hand-over: safe to retry. Otherwise the server may have it.
        status = "uncertain" if claimed and not isinstance(exc, Rejected) else "failed"
        with session_scope(engine, write=True) as s:
            # Only rows this process owns: "sending" once it claimed them; else the still-open ones.
            n = _set_status(
                s,
                batch,
                ("sending",) if claimed else OPEN,
                status=status,
                last_error=error,
                attempts=rows[0].attempts + 1,
            )
        stats.add(channel, status, n)
        stats.errors.append(f"{batch} : {error}")
        return stats
    with session_scope(engine, write=True) as s:
        n = _set_status(s, batch, ("sending",), status="sent", sent_at=now, last_error=None)
        _set_progress(s, batch, None, now)
        if on_sent:
            on_sent(s)
    stats.add(channel, "sent", n)
    stats.messages += 1
    return stats
