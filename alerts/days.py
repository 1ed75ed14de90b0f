"""Days as the units count them: the local day of an instant, and French working days.

Below both ``alerts.jobs`` and ``alerts.deadlines`` (imports run one way: jobs -> deadlines -> days).
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta
from functools import cache
from importlib.metadata import version
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from core.config import Settings, home

if TYPE_CHECKING:
    import holidays


def local_day(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.schedule.timezone)).date()


@cache
def french_calendar(first_year: int, last_year: int) -> holidays.HolidayBase:
    """French public holidays (weekends off) of those years: the working days of the units' reminders and digests."""
    import holidays  # about 0.1 s of imports: not for a preview of a past day's digests

    return holidays.France(years=range(first_year, last_year + 1))


def working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in french_holidays(day.year)


@cache
def french_holidays(year: int) -> frozenset[date]:
    """The French public holidays of ``year``, kept in ``$VEILLE_HOME/cache/holidays/`` per version of the
    library: every digest run asks whether today is a working day, and the library's import alone (all its
    countries) is a fifth of ``veille digest --preview``'s 0.5 s."""
    path = home() / "cache" / "holidays" / f"FR-{year}-{version('holidays')}.json"
    try:
        return frozenset(date.fromisoformat(d) for d in json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):  # not there yet, or unreadable: ask the library, keep its answer if we can
        days = frozenset(french_calendar(year, year))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(d.isoformat() for d in days)), encoding="utf-8")
        tmp.replace(path)  # whole or not at all: a concurrent run reads either file, never half of one
    except OSError:
        pass
    return days


def working_days_left(today: date, deadline: date) -> int:
    """Working days after ``today`` up to and including ``deadline`` (0 on the deadline itself)."""
    if deadline <= today:  # the library counts a reversed interval too
        return 0
    return french_calendar(today.year, deadline.year).get_working_days_count(today + timedelta(days=1), deadline)
