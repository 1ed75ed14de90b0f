"""Reminders N working days before a deadline, through the outbox (``Routing.reminders``, default 10 and 3).

One outbox row per (notice, recipient, channel, purpose) with purpose ``reminder-<N>@<deadline>``:
the outbox's unique key makes each reminder go out exactly once, also across crashes and re-runs.
The deadline is part of the purpose, so when the source moves a deadline (storage makes a new
version and updates ``notice.deadline``) the reminders follow the new date: nothing fires on the
old date, and a reminder already sent for the old date is sent again for the new one.

On a given day only the tightest reminder due is planned (a call first seen 2 working days before
its deadline gets the 3-day reminder, not a late 10-day one as well).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from alerts.config import Routing
from alerts.days import local_day, working_day, working_days_left
from alerts.deadlines import open_candidates
from alerts.delivery import DeliveryStats, Planned
from alerts.jobs import Driver, batch_id
from alerts.routing import recipients, routed_labels
from core.config import Settings
from core.dates import fr_date
from storage.deliveries import open_batches

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

PREFIX = "reminder-"


def reminder_due(today: date, deadline: date | None, offsets: list[int]) -> int | None:
    """The tightest reminder (in working days) due on ``today`` for this deadline, or None."""
    if deadline is None or deadline < today:
        return None
    left = working_days_left(today, deadline)
    due = [n for n in offsets if left <= n]
    return min(due) if due else None


def purpose_for(days: int, deadline: date) -> str:
    return f"{PREFIX}{days}@{deadline.isoformat()}"


def send_reminders(engine: Engine, settings: Settings, now: datetime | None = None) -> DeliveryStats:
    """Plan the reminders due today (working days only) and send every open reminder batch."""
    job = Driver(engine, settings, now).settle()
    today = local_day(settings, job.now)
    if not working_day(today):
        job.stats.notes.append(f"le {fr_date(today)} n'est pas un jour ouvré : pas de rappel")
        return job.stats
    job.enqueue(plan_reminders(engine, job.routing, today))
    return job.deliver(open_batches(engine, f"{PREFIX}*"))


def plan_reminders(engine: Engine, routing: Routing, today: date) -> list[Planned]:
    """The reminder rows due on ``today`` (the tightest per notice). Reads the archive; writes nothing."""
    planned = []
    rcpts = recipients(routing)
    for cand in open_candidates(engine, today):
        days = reminder_due(today, cand.deadline, routing.reminders)
        if days is None:
            continue
        purpose = purpose_for(days, cand.deadline)  # type: ignore[arg-type]
        routed = set(routed_labels(routing, cand))
        planned += [
            Planned(cand.id, r.address, r.channel, purpose, batch_id(purpose, cand.id, r.channel, r.address))
            for r in rcpts
            if routed & set(r.labels) and routing.options(r.address).alerts
        ]
    return planned
