"""What a date means in veille, and the one way each kind is read and shown (docs/decisions.md, "Dates").

- A day-valued EU fact (OJ publication, document date, deadline, opening) is a calendar ``date`` in
  Europe/Brussels: ``2023-12-05T00:00:00+02:00`` and ``2026-07-27T22:00:00Z`` are the 5 December and the
  28 July, whatever zone the source wrote them in.
- An instant (first seen, sent at, a run's start) is an aware UTC ``datetime``; people see it in
  Europe/Paris with the zone (``7 décembre 2026 à 17:05 CET``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")
PARIS = ZoneInfo("Europe/Paris")
MONTHS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]
CENTRAL_EUROPEAN = (timedelta(hours=1), timedelta(hours=2))
ISO_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:Z|[+-]\d{2}:?\d{2})?$")
# Drupal feeds (the Commission's Newsroom among them) write ``28/07/2014 - 12:18``, day first, local time.
DRUPAL_RE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})(?:\s*-\s*(\d{1,2}):(\d{2}))?\s*$")


def parse_instant(value: str | datetime | date | None) -> datetime | date | None:
    """A source's date text as an aware datetime (a date when it has no time); ``None`` if unreadable.

    A time without a zone is Brussels time: every source we read is published from Brussels."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=BRUSSELS)
    if isinstance(value, date):
        return value
    text = value.strip()
    if ISO_DAY_RE.match(text):  # a day, with or without a zone (xsd:date ``2024-07-12+02:00``), is that day
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    try:
        return parse_instant(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    if m := DRUPAL_RE.match(text):
        day, month, year, hour, minute = m.groups()
        try:
            return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=BRUSSELS)
        except ValueError:
            return None
    try:
        return parse_instant(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None


def brussels_day(value: str | datetime | date | None) -> date | None:
    """The calendar day in Brussels of a date, an instant or a source's date text; ``None`` if unreadable.

    A time at +01:00 or +02:00 is the Brussels wall clock, whatever the season: EUR-Lex writes the day it
    means as ``00:00:00 +0200`` in winter too, which is 23:00 the day before in real Brussels time. Any
    other offset (``Z``: the Comitology Register's ``…T22:00:00Z`` is Brussels midnight) is converted."""
    parsed = parse_instant(value)
    if not isinstance(parsed, datetime):
        return parsed
    if parsed.utcoffset() in CENTRAL_EUROPEAN and parsed.tzinfo is not BRUSSELS:
        return parsed.date()
    return parsed.astimezone(BRUSSELS).date()


def utc_instant(value: str | datetime | date | None) -> datetime | None:
    """An instant as an aware UTC datetime; a bare date is its UTC midnight (the same day in Brussels)."""
    parsed = parse_instant(value)
    if parsed is None:
        return None
    if not isinstance(parsed, datetime):
        parsed = datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
    return parsed.astimezone(UTC)


def as_day(value: object) -> date | None:
    """A stored day back from the database (SQLite raw rows give ``'2023-12-05'`` strings)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return brussels_day(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return value
    text = str(value)[:10]
    try:
        return date.fromisoformat(text)  # what the databases store: no need for the sources' date parser
    except ValueError:
        return brussels_day(text)


def today_brussels(now: datetime | None = None) -> date:
    """The current calendar day in Brussels (and Paris): deadlines are judged against it."""
    return (now or datetime.now(UTC)).astimezone(BRUSSELS).date()


def fr_date(day: date | None) -> str:
    """``5 décembre 2023``, ``1er janvier 2026``."""
    return f"{'1er' if day.day == 1 else day.day} {MONTHS[day.month - 1]} {day.year}" if day else ""


def paris_local(value: datetime) -> datetime:
    """An instant in Europe/Paris; naive datetimes are UTC (SQLite gives stored instants back without their zone)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(PARIS)


def paris_time(value: datetime | None, *, short: bool = False) -> str:
    """An instant for people: ``7 décembre 2026 à 17:05 CET`` (``2026-12-07 17:05 CET`` when short).

    Naive datetimes are UTC (SQLite gives stored instants back without their zone)."""
    if value is None:
        return ""
    local = paris_local(value)
    if short:
        return local.strftime("%Y-%m-%d %H:%M %Z")
    return f"{fr_date(local.date())} à {local:%H:%M %Z}"


def now_utc() -> datetime:
    """The one clock for instants stored in the archive (aware UTC)."""
    return datetime.now(UTC)
