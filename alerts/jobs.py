"""The two jobs the scheduler and the CLI run: immediate alerts and daily digests.

Batches (one message each) are named ``<purpose>:<day or notice>:<channel>:<address>``:
``digest:2025-03-14:email:veille-deai@has-sante.fr`` or ``alert:42:slack:#veille-numerique``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy.engine import Engine
from sqlmodel import Session

from alerts.config import Routing, load_routing
from alerts.deadlines import deadline_items, open_candidates
from alerts.digest import Digest, Item, failed_sources, file_under, item_for, quiet_sources, sections
from alerts.email import SmtpTransport, build_message
from alerts.outbox import (
    DeliveryStats,
    Planned,
    Preview,
    Transport,
    batch_rows,
    deliver,
    existing,
    open_batches,
    plan,
    reconcile,
)
from alerts.outbox_files import FileTransport
from alerts.render import text_body
from alerts.routing import Candidate, Recipient, alert_due, critical_rule, digest_due, load_candidates, recipients
from alerts.slack import SlackTransport, WebhookTransport, payloads
from storage.db import session_scope
from storage.fulltext import now_utc
from storage.models import Delivery, KeyValue
from storage.runs import failed_since
from veille.config import Settings
from veille.health import unhealthy
from veille.profiles import Label, load_labels
from veille.records import as_utc


def local_day(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.schedule.timezone)).date()


@cache
def french_calendar(first_year: int, last_year: int) -> holidays.HolidayBase:
    """French public holidays (weekends off) of those years: the working days of the units' reminders and digests."""
    return holidays.France(years=range(first_year, last_year + 1))


def working_day(day: date) -> bool:
    return french_calendar(day.year, day.year).is_working_day(day)


def batch_id(purpose: str, key: object, channel: str, address: str) -> str:
    return f"{purpose}:{key}:{channel}:{address}"


def parse_batch(batch: str) -> tuple[str, str, str, str]:
    purpose, key, channel, address = batch.split(":", 3)
    return purpose, key, channel, address


def transport_factory(settings: Settings, routing: Routing) -> Callable[[str, str], Transport]:
    """The transport for (channel, recipient): the configured server, else the outbox folder."""
    made: dict[tuple[str, str], Transport] = {}

    def get(channel: str, recipient: str) -> Transport:
        key = (channel, recipient if channel == "webhook" else "")
        if key not in made:
            made[key] = _make(settings, routing, channel, recipient)
        return made[key]

    return get


def _make(settings: Settings, routing: Routing, channel: str, recipient: str) -> Transport:
    if channel == "email" and settings.smtp.host:
        return SmtpTransport(settings.smtp)
    if channel == "slack" and settings.slack.token:
        return SlackTransport(settings.slack.token.get_secret_value(), settings.slack.base_url)
    if channel == "webhook":
        url = routing.webhook_url(recipient.removeprefix("webhook:"))
        if url:
            return WebhookTransport(url)
    return FileTransport(settings.outbox, channel)


# --- last digest per recipient (KeyValue) ----------------------------------------------------------


def _last_key(channel: str, address: str) -> str:
    return f"digest:last:{channel}:{address}"


def last_digest(engine: Engine, channel: str, address: str) -> dict | None:
    with session_scope(engine) as s:
        kv = s.get(KeyValue, _last_key(channel, address))
        return dict(kv.value) if kv else None


def _record_last(s: Session, channel: str, address: str, day: str, batch: str | None, now: datetime) -> None:
    kv = s.get(KeyValue, _last_key(channel, address))
    value = {"at": now.isoformat(), "day": day, "batch": batch}
    if kv:
        kv.value, kv.updated_at = value, now
    else:
        s.add(KeyValue(key=_last_key(channel, address), value=value, updated_at=now))


# --- rendering a batch -----------------------------------------------------------------------------


class Renderer:
    """Turns a batch's rows into the parts its transport sends (an e-mail, or Slack posts)."""

    def __init__(self, engine: Engine, settings: Settings, routing: Routing, now: datetime) -> None:
        self.engine, self.settings, self.routing, self.now = engine, settings, routing, now
        self.labels: dict[str, Label] = load_labels(settings)
        self.by_key = {r.key: r for r in recipients(routing)}

    def digest(self, batch: str, notice_ids: list[int], nothing_new: bool = False) -> Digest:
        purpose, key, channel, address = parse_batch(batch)
        rcpt = self.by_key.get((address, channel)) or Recipient(address, channel, tuple(self.routing.labels))  # type: ignore[arg-type]
        cands = load_candidates(self.engine, ids=notice_ids)
        today = local_day(self.settings, self.now)
        if purpose.startswith("reminder-"):
            return self._reminder(purpose, address, channel, rcpt, list(cands.values()), today)
        if purpose == "alert":
            cand = cands[int(key)]
            rule = critical_rule(self.routing, cand)
            d = Digest(
                "alert",
                address,
                channel,
                local_day(self.settings, self.now),
                None,
                rule=rule.name if rule else "Alerte",
            )
        else:
            last = last_digest(self.engine, channel, address)
            since = as_utc(datetime.fromisoformat(last["at"])) if last else None
            d = Digest(
                "digest", address, channel, date.fromisoformat(key.split("+")[0]), since, nothing_new=nothing_new
            )
            window = since or self.now - self.routing.duration("first_digest_lookback")
            d.failed = failed_sources(failed_since(self.engine, window))
            d.unhealthy = quiet_sources(unhealthy(self.engine, self.settings, self.now))
            d.deadlines = deadline_items(open_candidates(self.engine, today), self.routing, rcpt.labels, today)
        items = [self._item(c, rcpt) for c in cands.values()]
        d.sections = sections(items, self.labels, tuple(self.routing.labels))
        return d

    def _reminder(
        self, purpose: str, address: str, channel: str, rcpt: Recipient, cands: list[Candidate], today: date
    ) -> Digest:
        """``reminder-10@2026-12-01``: the notice, with its deadline, N working days before it."""
        days = purpose.split("@")[0].removeprefix("reminder-")
        d = Digest("reminder", address, channel, today, None, rule=f"J-{days} ouvrés")
        d.deadlines = deadline_items(cands, self.routing, tuple(self.routing.labels), today)
        d.sections = sections([self._item(c, rcpt) for c in cands], self.labels, tuple(self.routing.labels))
        return d

    def _item(self, cand: Candidate, rcpt: Recipient) -> Item:
        return item_for(cand, file_under(cand, rcpt.labels, self.routing), self.routing, self.labels)

    def parts(self, batch: str, d: Digest) -> list:
        if d.channel == "email":
            return [build_message(d, self.settings.smtp.sender, batch, self.now)]
        return payloads(d, d.recipient if d.channel == "slack" else None)

    def __call__(self, rows: list[Delivery]) -> list:
        batch = rows[0].batch
        return self.parts(batch, self.digest(batch, [r.notice_id for r in rows]))


# --- the jobs --------------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    return as_utc(now) if now else now_utc()


def _settled(engine: Engine, batch: str) -> bool:
    """A batch already (partly) handed over: add nothing to it, or its message would change."""
    with session_scope(engine) as s:
        progress = s.get(KeyValue, f"outbox:{batch}")
    return progress is not None or any(r.status not in ("pending", "failed") for r in batch_rows(engine, batch))


def send_alerts(engine: Engine, settings: Settings, now: datetime | None = None) -> DeliveryStats:
    """Immediate alerts for critical items first seen within ``alert_window``, each once per recipient."""
    now = _now(now)
    routing = load_routing(settings)
    transport_for = transport_factory(settings, routing)
    stats = reconcile(engine, transport_for, now)
    cands = load_candidates(engine, since=now - routing.duration("alert_window"))
    due = alert_due(routing, list(cands.values()))
    planned = []
    for rcpt in {d.recipient for d in due}:
        mine = [d for d in due if d.recipient == rcpt]
        done = existing(engine, rcpt.address, rcpt.channel, [d.notice_id for d in mine], ("alert",))
        planned += [
            Planned(d.notice_id, rcpt.address, rcpt.channel, "alert", batch_id("alert", d.notice_id, *rcpt.key[::-1]))
            for d in mine
            if d.notice_id not in done
        ]
    plan(engine, planned, now)
    render = Renderer(engine, settings, routing, now)
    for batch in open_batches(engine, "alert"):
        _, _, channel, address = parse_batch(batch)
        stats.merge(deliver(engine, batch, transport_for(channel, address), render, now))
    return stats


def send_digests(
    engine: Engine,
    settings: Settings,
    now: datetime | None = None,
    label: str | None = None,
    since: datetime | date | None = None,
    dry_run: bool = False,
) -> DeliveryStats:
    """One digest per recipient per working day, covering everything since its last digest.

    ``label`` restricts to one label (an extra, ad-hoc digest that does not move the recipient's
    "last digest"); ``since`` overrides the window start; ``dry_run`` renders without writing.
    """
    now = _now(now)
    routing = load_routing(settings)
    transport_for = transport_factory(settings, routing)
    stats = DeliveryStats() if dry_run else reconcile(engine, transport_for, now)
    day = local_day(settings, now)
    scheduled = label is None and since is None
    if scheduled and settings.schedule.digest_days == "working" and not working_day(day):
        stats.notes.append(f"{day.isoformat()} is not a working day: no digest (--since DATE forces one)")
        return stats
    if isinstance(since, date) and not isinstance(since, datetime):
        since = datetime(since.year, since.month, since.day, tzinfo=ZoneInfo(settings.schedule.timezone))
    rcpts = [r for r in recipients(routing) if routing.options(r.address).digest and (not label or label in r.labels)]
    last = {r.key: last_digest(engine, r.channel, r.address) for r in rcpts}
    window = {r.key: _window(routing, last[r.key], since, now) for r in rcpts}
    cands = load_candidates(engine, since=min(window.values())) if rcpts else {}
    due = digest_due(routing, list(cands.values()), label)
    render = Renderer(engine, settings, routing, now)
    key = f"{day.isoformat()}+{label}" if label else day.isoformat()
    planned: list[Planned] = []
    quiet: list[Recipient] = []
    for r in rcpts:
        batch = batch_id("digest", key, r.channel, r.address)
        if (scheduled and (last[r.key] or {}).get("day") == day.isoformat()) or _settled(engine, batch):
            stats.notes.append(f"{r.channel} {r.address}: today's digest already went out")
            continue
        ids = [d.notice_id for d in due if d.recipient.key == r.key and cands[d.notice_id].first_seen >= window[r.key]]
        ids = [i for i in ids if i not in existing(engine, r.address, r.channel, ids, ("digest", "alert"))]
        planned += [Planned(i, r.address, r.channel, "digest", batch) for i in ids]
        if not ids and not batch_rows(engine, batch) and scheduled and routing.options(r.address).nothing_new:
            quiet.append(r)
        if dry_run and ids:
            d = render.digest(batch, ids)
            stats.previews.append(Preview(r.address, r.channel, batch, d.subject, text_body(d), len(ids)))
            stats.add(r.channel, "pending", len(ids))
    if dry_run:
        return stats
    plan(engine, planned, now)
    for batch in open_batches(engine, "digest"):
        _, bkey, channel, address = parse_batch(batch)
        on_sent = None if "+" in bkey else _on_sent(channel, address, bkey, batch, now)
        stats.merge(deliver(engine, batch, transport_for(channel, address), render, now, on_sent))
    for r in quiet:
        stats.merge(_nothing_new(engine, render, transport_for, r, day, now))
    return stats


def _window(routing: Routing, last: dict | None, since: datetime | None, now: datetime) -> datetime:
    if since is not None:
        return as_utc(since)
    if last:
        return as_utc(datetime.fromisoformat(last["at"])) - routing.duration("lookback_grace")
    return now - routing.duration("first_digest_lookback")


def _on_sent(channel: str, address: str, day: str, batch: str, now: datetime) -> Callable[[Session], None]:
    return lambda s: _record_last(s, channel, address, day, batch, now)


def _nothing_new(
    engine: Engine,
    render: Renderer,
    transport_for: Callable[[str, str], Transport],
    r: Recipient,
    day: date,
    now: datetime,
) -> DeliveryStats:
    """The optional "sources checked, nothing new" message (no notice, so no outbox row)."""
    stats = DeliveryStats()
    batch = batch_id("digest", f"{day.isoformat()}", r.channel, r.address)
    d = render.digest(batch, [], nothing_new=True)
    try:
        transport_for(r.channel, r.address).send(r.address, batch, render.parts(batch, d), 0, lambda i: None)
    except Exception as exc:  # reported; tomorrow's digest tries again
        stats.errors.append(f"{batch} (nothing new): {type(exc).__name__}: {exc}"[:500])
        return stats
    with session_scope(engine, write=True) as s:
        _record_last(s, r.channel, r.address, day.isoformat(), None, now)
    stats.messages += 1
    return stats
