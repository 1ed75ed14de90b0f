"""Days as the units count them: the local day of an instant, and French working days.

Below both ``alerts.jobs`` and ``alerts.deadlines`` (imports run one way: jobs -> deadlines -> days).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

from core.config import Settings


def local_day(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.schedule.timezone)).date()


@cache
def french_calendar(first_year: int, last_year: int) -> holidays.HolidayBase:
    """French public holidays (weekends off) of those years: the working days of the units' reminders and digests."""
    return holidays.France(years=range(first_year, last_year + 1))


def working_day(day: date) -> bool:
    return french_calendar(day.year, day.year).is_working_day(day)


def working_days_left(today: date, deadline: date) -> int:
    """Working days after ``today`` up to and including ``deadline`` (0 on the deadline itself)."""
    if deadline <= today:  # the library counts a reversed interval too
        return 0
    return french_calendar(today.year, deadline.year).get_working_days_count(today + timedelta(days=1), deadline)
