"""What a healthy run looks like, per source kind, and which sources have gone quiet or degraded.

A source can fail loudly (its run says why) or drift silently: the OJ stops bringing acts, a feed that
had items comes back empty, a register's items lose their deadlines. Each kind declares an
:class:`Expectation` (crawlers/kinds/, overridable per source with ``options.expect``); :func:`source_states`
compares the archive and the last runs with it. ``veille status``, the dashboard and the digest footer show
the result. Reference: docs/sources-health.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import func, select

from core.catalog import N_, Message
from core.config import Expectation, Settings, SourceConfig
from core.dates import as_day
from storage.db import session_scope
from storage.models import CrawlRun, Notice, Sighting, Source

BRUSSELS = ZoneInfo("Europe/Brussels")
SIGNAL_KINDS = ("consultation", "draft_act", "funding_call")


def expectation_for(src: SourceConfig) -> Expectation:
    """The source kind's expectation (crawlers/kinds/), with the source's ``options.expect`` over it."""
    return src.expectation


@cache
def _holidays(year: int):  # holidays.HolidayBase
    import holidays  # about 0.1 s of imports, only for the sources with a working-day rhythm

    # The Publications Office (Luxembourg) publishes the OJ on working days: TARGET closing days
    # (the EU institutions' common ones) and Luxembourg's public holidays are off.
    return holidays.financial_holidays("XECB", years=year) + holidays.Luxembourg(years=year)


def is_working_day(day: date) -> bool:
    return _holidays(day.year).is_working_day(day)


def working_days_back(today: date, n: int) -> date:
    """The first day of the window made of the ``n`` latest working days up to ``today`` (included)."""
    # The n-th working day before tomorrow, counting today when it is one (the library expands to earlier years).
    return _holidays(today.year).get_nth_working_day(today + timedelta(days=1), -n)


@dataclass
class SourceState:
    name: str
    kind: str
    state: str  # ok | quiet | degraded | failed | never
    # One line each, in French; the workbench says them in the reader's language (core.catalog.Message).
    reasons: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        from core.names import HEALTH_STATES

        return "ok" if self.state == "ok" else Message(HEALTH_STATES.get(self.state, HEALTH_STATES["never"]))

    @property
    def text(self) -> str:
        return self.label + (" : " + " ; ".join(self.reasons) if self.reasons else "")


def _latest_dated(s, name: str) -> date | None:
    q = select(func.max(Notice.published_at)).join(Sighting, Sighting.notice_id == Notice.id)
    return as_day(s.exec(q.where(Sighting.source == name)).one())


def _quiet_reasons(s, src: SourceConfig, exp: Expectation, runs: list[CrawlRun], today: date) -> list[str]:
    out = []
    if exp.per_working_day:
        latest = _latest_dated(s, src.name)
        # The window holds at least its last n calendar days: a recent item needs no holiday calendar (0.2 s).
        recent = latest is not None and latest >= today - timedelta(days=exp.working_days - 1)
        if not recent and (latest is None or latest < working_days_back(today, exp.working_days)):
            if latest:
                msg = N_("no item dated in the last %(n)s working days (latest: %(latest)s)")
                out.append(Message(msg, n=exp.working_days, latest=latest.strftime("%d/%m/%Y")))
            else:
                out.append(Message(N_("no item dated in the last %(n)s working days"), n=exp.working_days))
    if exp.empty_runs and len(runs) > exp.empty_runs:
        recent, before = runs[: exp.empty_runs], runs[exp.empty_runs :]
        empty = all(r.status == "ok" and not r.n_seen and not r.n_not_modified for r in recent)
        if empty and any(r.n_seen for r in before):
            out.append(Message(N_("no items in the last %(n)s runs (it had some before)"), n=exp.empty_runs))
    return out


def _degraded_reasons(s, src: SourceConfig, exp: Expectation, last: CrawlRun | None) -> list[str]:
    if last is None:
        return []
    out = [Message(N_("warning: %(warning)s"), warning=w) for w in (last.warnings or [])[:3]]
    if exp.deadlines and last.status == "ok":
        q = (
            select(Notice.deadline)
            .join(Sighting, Sighting.notice_id == Notice.id)
            .where(Sighting.source == src.name, Sighting.last_seen >= last.started_at, Notice.kind.in_(SIGNAL_KINDS))
        )
        deadlines = list(s.exec(q))
        if deadlines and all(d is None for d in deadlines):
            out.append(Message(N_("no deadline on the %(n)s items of the last run"), n=len(deadlines)))
    return out


def source_states(engine: Engine, settings: Settings, now: datetime | None = None) -> list[SourceState]:
    """Each configured source (and any other one in the archive) against its expectation."""
    today = (now or datetime.now(UTC)).astimezone(BRUSSELS).date()
    configured = {src.name: src for src in settings.sources}
    out = []
    with session_scope(engine) as s:
        known = {src.name: src for src in s.exec(select(Source))}
        for name in sorted(set(configured) | set(known)):
            src = configured.get(name) or SourceConfig(name=name, kind=known[name].kind, url="-")
            runs = list(
                s.exec(
                    select(CrawlRun)
                    .where(CrawlRun.source == name, CrawlRun.status != "running")
                    .order_by(CrawlRun.id.desc())
                    .limit(50)
                )
            )
            out.append(_state(s, src, runs, today))
    return out


def _state(s, src: SourceConfig, runs: list[CrawlRun], today: date) -> SourceState:
    if not runs:
        return SourceState(src.name, src.kind, "never")
    if runs[0].status == "failed":
        return SourceState(src.name, src.kind, "failed", [runs[0].error or "?"])
    exp = expectation_for(src)
    quiet = _quiet_reasons(s, src, exp, runs, today)
    if quiet:
        return SourceState(src.name, src.kind, "quiet", quiet)
    degraded = _degraded_reasons(s, src, exp, runs[0])
    return SourceState(src.name, src.kind, "degraded" if degraded else "ok", degraded)


def unhealthy(engine: Engine, settings: Settings, now: datetime | None = None) -> list[SourceState]:
    """Sources gone quiet or degraded (failed ones are listed apart, with their runs)."""
    return [st for st in source_states(engine, settings, now) if st.state in ("quiet", "degraded")]
