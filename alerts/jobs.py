"""The jobs the scheduler and the CLI run: immediate alerts and daily digests (reminders: ``alerts.reminders``).

Each is a planner (what to send, to whom, through which channel: reads, writes nothing) and the one
delivery driver, :class:`Driver`, which puts the plan in the outbox and delivers it exactly once.

Batches (one message each) are named ``<purpose>:<day or notice>:<channel>:<address>``:
``digest:2025-03-14:email:veille-deai@has-sante.fr`` or ``alert:42:slack:#veille-numerique``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from alerts.channels import Channels
from alerts.config import Routing, load_routing
from alerts.days import local_day, working_day
from alerts.deadlines import deadline_items, open_candidates
from alerts.delivery import DeliveryStats, Planned, Preview
from alerts.digest import Digest, Item, failed_sources, file_under, item_day, item_for, quiet_sources, sections
from alerts.render import text_body
from alerts.routing import Candidate, Due, Recipient, alert_due, critical_rule, digest_due, load_candidates, recipients
from core.config import Settings
from core.dates import fr_date, now_utc
from core.profiles import Label, load_labels, load_profile
from core.records import as_utc
from storage.deliveries import DeliveryRow, batch_rows, batches, existing, open_batches
from storage.health import failed_since, unhealthy
from storage.kv import kv_value
from storage.reader import Archive, as_engine

if TYPE_CHECKING:  # the planners and dry runs read with storage.reader; only sending loads SQLAlchemy
    from sqlmodel import Session

STORED = object()  # Renderer.digest: "as recorded in the outbox"


def batch_id(purpose: str, key: object, channel: str, address: str) -> str:
    return f"{purpose}:{key}:{channel}:{address}"


def digest_key(day: date, label: str | None) -> str:
    """A digest batch's key: its day, ``+label`` for an extra digest of one label."""
    return f"{day.isoformat()}+{label}" if label else day.isoformat()


def parse_batch(batch: str) -> tuple[str, str, str, str]:
    purpose, key, channel, address = batch.split(":", 3)
    return purpose, key, channel, address


# --- last digest per recipient (KeyValue) ----------------------------------------------------------


def _last_key(channel: str, address: str) -> str:
    return f"digest:last:{channel}:{address}"


def last_digest(db: Archive, channel: str, address: str) -> dict | None:
    value = kv_value(db, _last_key(channel, address))
    return dict(value) if value else None


def _record_last(s: Session, channel: str, address: str, day: str, batch: str | None, now: datetime) -> None:
    from storage.models import KeyValue

    kv = s.get(KeyValue, _last_key(channel, address))
    value = {"at": now.isoformat(), "day": day, "batch": batch}
    if kv:
        kv.value, kv.updated_at = value, now
    else:
        s.add(KeyValue(key=_last_key(channel, address), value=value, updated_at=now))


# --- rendering a batch -----------------------------------------------------------------------------


class Renderer:
    """Turns a batch's rows into the parts its transport sends (an e-mail, or Slack posts)."""

    def __init__(self, db: Archive, settings: Settings, routing: Routing, now: datetime) -> None:
        self.db, self.settings, self.routing, self.now = db, settings, routing, now
        self.labels: dict[str, Label] = load_labels(settings)
        self.by_key = {r.key: r for r in recipients(routing)}
        self.channels = Channels(settings, routing)

    def digest(
        self,
        batch: str,
        notice_ids: list[int],
        nothing_new: bool = False,
        archived: int | None = None,
        since: datetime | None | object = STORED,
    ) -> Digest:
        """The message of ``batch`` holding ``notice_ids``. A digest's ``archived`` (old items not sent) and
        ``since`` (its "depuis le …") default to what the outbox recorded when it was planned."""
        purpose, key, channel, address = parse_batch(batch)
        rcpt = self.by_key.get((address, channel)) or Recipient(address, channel, tuple(self.routing.labels))  # type: ignore[arg-type]
        cands = load_candidates(self.db, ids=notice_ids)
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
            d = self._daily(batch, rcpt, nothing_new, archived, since)
        items = [self._item(c, rcpt) for c in cands.values()]
        d.sections = sections(items, self.labels, tuple(self.routing.labels))
        return d

    def _daily(
        self, batch: str, rcpt: Recipient, nothing_new: bool, archived: int | None, since: datetime | None | object
    ) -> Digest:
        """A digest without its items: its period, what was archived unsent, deadlines, sources in trouble."""
        _, key, channel, address = parse_batch(batch)
        if since is STORED:
            since = self._stored_since(batch, channel, address)
        if since is not None:  # "depuis le …" is a local day
            since = since.astimezone(ZoneInfo(self.settings.schedule.timezone))
        d = Digest("digest", address, channel, date.fromisoformat(key.split("+")[0]), since, nothing_new=nothing_new)
        d.archived = self._archived(batch) if archived is None else archived
        d.window_days = load_profile(self.settings).digest_window_days
        window = since or self.now - self.routing.duration("first_digest_lookback")
        # Runs up to the message's time: a preview of a past day shows the footer that day's message had.
        d.failed = failed_sources([r for r in failed_since(self.db, window) if as_utc(r.started_at) <= self.now])
        d.unhealthy = quiet_sources(unhealthy(self.db, self.settings, self.now))
        today = local_day(self.settings, self.now)
        d.deadlines = deadline_items(open_candidates(self.db, today), self.routing, rcpt.labels, today)
        return d

    def _stored_since(self, batch: str, channel: str, address: str) -> datetime | None:
        stored = kv_value(self.db, _since_key(batch))
        if stored is not None:
            return as_utc(datetime.fromisoformat(stored["since"])) if stored.get("since") else None
        last = last_digest(self.db, channel, address)
        return as_utc(datetime.fromisoformat(last["at"])) if last else None

    def _archived(self, batch: str) -> int:
        return sum(r.status == "skipped" for r in batch_rows(self.db, batch))

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
        label = file_under(cand, rcpt.labels, self.routing)
        return item_for(cand, label, self.routing, self.labels, self.settings.web.public_url)

    def parts(self, batch: str, d: Digest) -> list:
        return self.channels[d.channel].render(d, batch, self.now)

    def __call__(self, rows: list[DeliveryRow]) -> list:
        batch = rows[0].batch
        return self.parts(batch, self.digest(batch, [r.notice_id for r in rows if r.status != "skipped"]))


# --- the jobs --------------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    return as_utc(now) if now else now_utc()


def _settled(db: Archive, batch: str) -> bool:
    """A batch already (partly) handed over: add nothing to it, or its message would change."""
    return kv_value(db, f"outbox:{batch}") is not None or any(
        r.status not in ("pending", "failed", "skipped") for r in batch_rows(db, batch)
    )


OnSent = Callable[[str], "Callable[[Session], None] | None"]  # batch -> what to record with its "sent" rows


class Driver:
    """The one delivery path of alerts, reminders and digests (``alerts.outbox``, exactly once per key).

    ``settle`` the batches a dead process left while handing them over, ``enqueue`` the planned rows (a key
    is planned once, ever) and ``deliver`` the open batches, each through its channel's transport."""

    def __init__(self, db: Archive, settings: Settings, now: datetime | None = None) -> None:
        self.db, self.settings, self.now = db, settings, _now(now)
        self.routing = load_routing(settings)
        self.render = Renderer(db, settings, self.routing, self.now)
        self.transport = self.render.channels.transport
        self.stats = DeliveryStats()

    @cached_property
    def engine(self):  # sqlalchemy Engine: what writes the outbox (one, however many batches)
        return as_engine(self.db)

    def settle(self) -> Driver:
        from alerts.outbox import reconcile

        self.stats.merge(reconcile(self.engine, self.transport, self.now))
        return self

    def enqueue(self, rows: list[Planned], status: str = "pending") -> None:
        from alerts.outbox import plan

        plan(self.engine, rows, self.now, status=status)

    def deliver(self, batches: list[str], on_sent: OnSent = lambda batch: None) -> DeliveryStats:
        from alerts.outbox import deliver

        for batch in batches:
            _, _, channel, address = parse_batch(batch)
            transport = self.transport(channel, address)
            self.stats.merge(deliver(self.engine, batch, transport, self.render, self.now, on_sent(batch)))
        return self.stats


def send_alerts(
    db: Archive, settings: Settings, now: datetime | None = None, since: date | None = None
) -> DeliveryStats:
    """Immediate alerts for critical items first seen within ``alert_window``, each once per recipient.

    Items dated before the profile's digest window (a first run's two years of Cellar acts) are not alerted:
    the digest archives and counts them. ``since``: an explicit period (the demo, a catch-up) replaces the window.
    """
    job = Driver(db, settings, now).settle()
    job.enqueue(plan_alerts(db, settings, job.routing, job.now, since))
    return job.deliver(open_batches(db, "alert"))


def plan_alerts(
    db: Archive, settings: Settings, routing: Routing, now: datetime, since: date | None = None
) -> list[Planned]:
    """The alert rows due now and not planned yet. Reads the archive and the outbox; writes nothing."""
    cands = load_candidates(db, since=now - routing.duration("alert_window"))
    oldest = since or local_day(settings, now) - timedelta(days=load_profile(settings).digest_window_days)
    due = [d for d in alert_due(routing, list(cands.values())) if (item_day(cands[d.notice_id]) or oldest) >= oldest]
    planned = []
    for rcpt in dict.fromkeys(d.recipient for d in due):
        mine = [d.notice_id for d in due if d.recipient == rcpt]
        done = existing(db, rcpt.address, rcpt.channel, mine, ("alert",))
        planned += [
            Planned(i, rcpt.address, rcpt.channel, "alert", batch_id("alert", i, rcpt.channel, rcpt.address))
            for i in mine
            if i not in done
        ]
    return planned


@dataclass
class RecipientPlan:
    """One recipient's digest of the day: what goes out, what is archived unsent, from when."""

    rcpt: Recipient
    batch: str
    ids: list[int]  # notices to send
    old: list[int]  # notices dated before the profile's window: archived as "skipped", never sent
    shown_since: datetime | None  # "depuis le …" of the message (its previous digest, or --since)
    quiet: bool = False  # nothing to send: the "nothing new" / "backlog archived" message instead


@dataclass
class DigestPlan:
    day: date
    key: str  # the day, "+label" for an extra digest of one label
    recipients: list[RecipientPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Period:
    """What every recipient's plan of the day reads: who, since when, the candidates and what is due."""

    db: Archive
    routing: Routing
    day: date
    scheduled: bool  # the daily digest (no --label, no --since)
    start: datetime | None  # an explicit --since
    oldest: date | None  # items dated before it are archived unsent (the profile's window)
    rcpts: list[Recipient]
    last: dict[tuple[str, str], dict | None]  # each recipient's last digest
    window: dict[tuple[str, str], datetime]  # first seen since then
    cands: dict[int, Candidate]
    due: list[Due]

    def went_out(self, r: Recipient, batch: str) -> bool:
        today = self.scheduled and (self.last[r.key] or {}).get("day") == self.day.isoformat()
        return today or _settled(self.db, batch)

    def new_ids(self, r: Recipient) -> list[int]:
        """The notices due to ``r``, first seen in its window, in no earlier digest or alert to it."""
        since = self.window[r.key]
        ids = [d.notice_id for d in self.due if d.recipient.key == r.key]
        ids = [i for i in ids if self.cands[i].first_seen >= since]
        done = existing(self.db, r.address, r.channel, ids, ("digest", "alert"))
        return [i for i in ids if i not in done]

    def too_old(self, notice_id: int) -> bool:
        return self.oldest is not None and (item_day(self.cands[notice_id]) or self.day) < self.oldest

    def shown_since(self, r: Recipient) -> datetime | None:
        """The message's "depuis le …": the period asked, else the recipient's last digest."""
        last = self.last[r.key]
        return self.start or (as_utc(datetime.fromisoformat(last["at"])) if last else None)


def plan_digests(
    db: Archive,
    settings: Settings,
    routing: Routing,
    now: datetime,
    label: str | None = None,
    since: datetime | date | None = None,
) -> DigestPlan:
    """Who gets which notices in today's digest. Reads the archive and the outbox; writes nothing."""
    day = local_day(settings, now)
    out = DigestPlan(day, digest_key(day, label))
    if label is None and since is None and settings.schedule.digest_days == "working" and not working_day(day):
        out.notes.append(f"le {fr_date(day)} n'est pas un jour ouvré : pas de digest (--since DATE en fait un)")
        return out
    period = _period(db, settings, routing, now, day, label, since)
    for r in period.rcpts:
        rp = _recipient_plan(period, out.key, r)
        if rp is None:
            out.notes.append(f"{r.channel} {r.address} : le digest du jour est déjà parti")
        else:
            out.recipients.append(rp)
    return out


def _period(
    db: Archive,
    settings: Settings,
    routing: Routing,
    now: datetime,
    day: date,
    label: str | None,
    since: datetime | date | None,
) -> _Period:
    start = _local_start(settings, since)
    # An explicit --since is a person asking for that period: the profile's window does not apply.
    oldest = None if start else day - timedelta(days=load_profile(settings).digest_window_days)
    rcpts = [r for r in recipients(routing) if routing.options(r.address).digest and (not label or label in r.labels)]
    last = {r.key: last_digest(db, r.channel, r.address) for r in rcpts}
    window = {r.key: _window(routing, last[r.key], start, now) for r in rcpts}
    cands = load_candidates(db, since=min(window.values())) if rcpts else {}
    due = digest_due(routing, list(cands.values()), label)
    scheduled = label is None and since is None
    return _Period(db, routing, day, scheduled, start, oldest, rcpts, last, window, cands, due)


def _recipient_plan(p: _Period, key: str, r: Recipient) -> RecipientPlan | None:
    """``r``'s digest of the day; None when it already went out (a second run adds nothing to it)."""
    batch = batch_id("digest", key, r.channel, r.address)
    if p.went_out(r, batch):
        return None
    ids = p.new_ids(r)
    old = [i for i in ids if p.too_old(i)]
    rp = RecipientPlan(r, batch, [i for i in ids if i not in old], old, p.shown_since(r))
    wanted = bool(old) or p.routing.options(r.address).nothing_new
    rp.quiet = not rp.ids and p.scheduled and wanted and not batch_rows(p.db, batch)
    return rp


def send_digests(
    db: Archive,
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
    job = Driver(db, settings, now)
    if not dry_run:
        job.settle()
    p = plan_digests(db, settings, job.routing, job.now, label, since)
    job.stats.notes += p.notes
    if dry_run:
        job.stats.merge(_previews(job.render, p))
        return job.stats
    _store(job, p)
    job.deliver(open_batches(db, "digest"), on_sent=lambda batch: _on_sent(batch, job.now))
    for rp in p.recipients:
        if rp.quiet:
            job.stats.merge(_nothing_new(job, rp, p.day))
    return job.stats


def _previews(render: Renderer, p: DigestPlan) -> DeliveryStats:
    """The dry run: each planned digest rendered, nothing written."""
    stats = DeliveryStats()
    for rp in p.recipients:
        if rp.ids or rp.old:
            d = render.digest(rp.batch, rp.ids, not rp.ids, archived=len(rp.old), since=rp.shown_since)
            preview = Preview(rp.rcpt.address, rp.rcpt.channel, rp.batch, d.subject, text_body(d), len(rp.ids))
            stats.previews.append(preview)
            stats.add(rp.rcpt.channel, "pending", len(rp.ids))
    return stats


def _store(job: Driver, p: DigestPlan) -> None:
    """The plan into the outbox: rows to send ``pending``, old ones ``skipped``; each message's "since"."""

    def rows(pick: Callable[[RecipientPlan], list[int]]) -> list[Planned]:
        return [Planned(i, x.rcpt.address, x.rcpt.channel, "digest", x.batch) for x in p.recipients for i in pick(x)]

    job.enqueue(rows(lambda rp: rp.ids))
    job.enqueue(rows(lambda rp: rp.old), status="skipped")
    from storage.db import session_scope
    from storage.models import KeyValue

    with session_scope(job.engine, write=True) as s:
        for rp in p.recipients:
            if (rp.ids or rp.old) and s.get(KeyValue, _since_key(rp.batch)) is None:  # a retry keeps its message
                since = rp.shown_since.isoformat() if rp.shown_since else None
                s.add(KeyValue(key=_since_key(rp.batch), value={"since": since}, updated_at=job.now))


def _since_key(batch: str) -> str:
    return f"digest:since:{batch}"


def _local_start(settings: Settings, since: datetime | date | None) -> datetime | None:
    if isinstance(since, date) and not isinstance(since, datetime):
        return datetime(since.year, since.month, since.day, tzinfo=ZoneInfo(settings.schedule.timezone))
    return since


def _window(routing: Routing, last: dict | None, since: datetime | None, now: datetime) -> datetime:
    if since is not None:
        return as_utc(since)
    if last:
        return as_utc(datetime.fromisoformat(last["at"])) - routing.duration("lookback_grace")
    return now - routing.duration("first_digest_lookback")


def _on_sent(batch: str, now: datetime) -> Callable[[Session], None] | None:
    """A daily digest, once sent, is the recipient's last one; an extra ``+label`` digest is not."""
    _, day, channel, address = parse_batch(batch)
    return None if "+" in day else lambda s: _record_last(s, channel, address, day, batch, now)


def _nothing_new(job: Driver, rp: RecipientPlan, day: date) -> DeliveryStats:
    """The "sources checked, nothing new" message (optional; always when old items were archived unsent).

    It holds no notice, so it has no outbox row."""
    stats = DeliveryStats()
    r, batch = rp.rcpt, rp.batch
    d = job.render.digest(batch, [], nothing_new=True, archived=len(rp.old), since=rp.shown_since)
    try:
        job.transport(r.channel, r.address).send(r.address, batch, job.render.parts(batch, d), 0, lambda i: None)
    except Exception as exc:  # reported; tomorrow's digest tries again
        stats.errors.append(f"{batch} (rien de nouveau) : {type(exc).__name__}: {exc}"[:500])
        return stats
    from storage.db import session_scope

    with session_scope(job.engine, write=True) as s:
        _record_last(s, r.channel, r.address, day.isoformat(), None, job.now)
    stats.messages += 1
    return stats


# --- previewing a day's digests (never sends) -------------------------------------------------------


def preview_digests(
    db: Archive, settings: Settings, day: date, label: str | None = None, now: datetime | None = None
) -> DeliveryStats:
    """What the digests of ``day`` held (their outbox rows, whatever their status), rendered as they were
    sent; for today's recipients without a digest yet, what the next run would send. Writes nothing."""
    now = _now(now)
    routing = load_routing(settings)
    stats = DeliveryStats()
    for batch, rows in batches(db, "digest", f"digest:{digest_key(day, label)}:").items():
        stats.merge(_stored_preview(db, settings, routing, batch, rows, now))
    done = {(p.recipient, p.channel) for p in stats.previews}
    if day == local_day(settings, now):
        ahead = send_digests(db, settings, now=now, label=label, dry_run=True).previews
        ahead = [p for p in ahead if (p.recipient, p.channel) not in done]
        stats.previews += ahead
        stats.pending += sum(p.items for p in ahead)
    elif not stats.previews:
        stats.notes.append(f"aucun digest du {fr_date(day)} dans la boîte d'envoi")
    return stats


def _stored_preview(
    db: Archive, settings: Settings, routing: Routing, batch: str, rows: list[DeliveryRow], now: datetime
) -> DeliveryStats:
    """One digest from its outbox rows, rendered at the time it went out: same "days left" to deadlines,
    same failed sources."""
    stats = DeliveryStats()
    kept = [r for r in rows if r.status != "skipped"]
    sent_at = [as_utc(r.sent_at) for r in kept if r.sent_at]
    render = Renderer(db, settings, routing, min(sent_at) if sent_at else now)
    d = render.digest(batch, [r.notice_id for r in kept], nothing_new=not kept)  # a backlog-only message
    _, _, channel, address = parse_batch(batch)
    stats.previews.append(Preview(address, channel, batch, d.subject, text_body(d), len(kept)))
    for r in kept:
        stats.add(channel, r.status if r.status in ("sent", "pending", "failed", "uncertain") else "pending", 1)
    return stats
