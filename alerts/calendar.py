"""The deadline calendar as iCalendar (RFC 5545), built with the ``icalendar`` library.

Events: the deadline of each open consultation and funding call, the feedback deadline of each draft
act (its opening date in the description), application dates of watched acts found in notice metadata
(``extra.entry_into_force`` / ``extra.application_dates``) and the dated facts of the profile
(``[[dates]]`` in ``profile.toml``, e.g. the AI Act's staged application dates).

UIDs are stable (``deadline-<notice id>@veille``, ``fact-<act>-<date>@veille``...), and each event's
``SEQUENCE`` is the notice's version: when a source moves a date, a calendar client updates the
event instead of adding a second one. ``DTSTAMP`` is the notice's last update, so the same archive
gives the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import String, cast
from sqlalchemy.engine import Engine
from sqlmodel import select

from alerts.config import Routing, load_routing
from alerts.deadlines import SIGNAL_KINDS
from alerts.digest import KIND_NAMES
from alerts.escape import clean, safe_url
from alerts.routing import load_candidates, routed_labels
from core.config import Settings
from core.dates import fr_date, today_brussels
from core.profiles import load_profile
from storage.db import session_scope
from storage.models import Notice

PRODID = "-//veille//EU regulatory watch//FR"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # DTSTAMP of the profile's facts (they have no update time)
PAST = timedelta(days=400)  # deadlines kept this long after they passed (a calendar is also a record)


@dataclass
class CalEvent:
    uid: str
    summary: str
    start: date
    end: date | None = None  # exclusive; None: a one-day event
    url: str | None = None
    description: str = ""
    sequence: int = 0
    stamp: datetime = EPOCH
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Fact:
    name: str
    day: date
    act: str
    labels: tuple[str, ...]


def profile_facts(settings: Settings) -> list[Fact]:
    """``[[dates]]`` of the profile (core.profiles.DatedFact)."""
    return [Fact(d.name, d.date, d.act, tuple(d.labels)) for d in load_profile(settings).dates]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def notice_events(engine: Engine, routing: Routing, today: date) -> list[CalEvent]:
    with session_scope(engine) as s:
        rows = s.exec(
            select(Notice.id, Notice.version, Notice.updated_at).where(
                (Notice.kind.in_(SIGNAL_KINDS) & (Notice.deadline >= today - PAST))
                | cast(Notice.extra, String).like('%"entry_into_force"%')
                | cast(Notice.extra, String).like('%"application_date"%')
            )
        ).all()
    meta = {i: (v, u) for i, v, u in rows}
    events = []
    for c in load_candidates(engine, ids=list(meta)).values() if meta else []:
        version, stamp = meta[c.id]
        labels = sorted(routed_labels(routing, c))
        title = clean(c.title_fr or c.title_en, 200)
        base = {"url": safe_url(c.url), "sequence": version, "stamp": stamp, "labels": labels}
        if c.kind in SIGNAL_KINDS and c.deadline:
            what = KIND_NAMES.get(c.kind, c.kind)
            desc = f"{what} — {c.source}" + (f"\nouverture : {fr_date(c.opens)}" if c.opens else "")
            # A deadline is one day: a months-long feedback window as an all-day event would fill the agenda.
            events.append(
                CalEvent(f"deadline-{c.id}@veille", f"Échéance {what} : {title}", c.deadline, description=desc, **base)
            )
        for key, what in (("entry_into_force", "Entrée en vigueur"), ("application_date", "Application")):
            day = _iso(c.extra.get(key))
            if day:
                events.append(CalEvent(f"{_slug(key)}-{c.id}@veille", f"{what} : {title}", day, **base))
    return events


def _iso(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def fact_events(settings: Settings) -> list[CalEvent]:
    return [
        CalEvent(
            f"fact-{f.act or 'x'}-{f.day.isoformat()}@veille",
            f.name,
            f.day,
            labels=list(f.labels),
            description=f"Acte {f.act}" if f.act else "",
        )
        for f in profile_facts(settings)
    ]


def events(engine: Engine, settings: Settings, label: str | None = None, today: date | None = None) -> list[CalEvent]:
    """Every event of the calendar (one label's, or all), by date then UID."""
    today = today or today_brussels()
    routing = load_routing(settings)
    out = notice_events(engine, routing, today) + fact_events(settings)
    if label:
        out = [e for e in out if label in e.labels]
    return sorted(out, key=lambda e: (e.start, e.uid))


def to_ics(evs: list[CalEvent], name: str) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for e in evs:
        ev = Event()
        ev.add("uid", e.uid)
        ev.add("summary", e.summary)
        ev.add("dtstart", e.start)  # a date: an all-day event
        ev.add("dtend", e.end or e.start + timedelta(days=1))
        ev.add("dtstamp", e.stamp)
        ev.add("sequence", e.sequence)
        ev.add("transp", "TRANSPARENT")
        if e.url:
            ev.add("url", e.url)
        if e.description:
            ev.add("description", e.description)
        if e.labels:
            ev.add("categories", e.labels)
        cal.add_component(ev)
    return cal.to_ical()


def calendar_ics(engine: Engine, settings: Settings, label: str | None = None, today: date | None = None) -> bytes:
    name = f"Veille UE — échéances ({label or 'tout'})"
    return to_ics(events(engine, settings, label, today), name)
