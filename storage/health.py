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

from core.catalog import N_, Message
from core.config import Expectation, Settings, SourceConfig
from storage.reader import Archive, Reader, day, instant, json_value, reading

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


def working_days_back(today: date, n: int) -> date:
    """The first day of the window made of the ``n`` latest working days up to ``today`` (included)."""
    # The n-th working day before tomorrow, counting today when it is one (the library expands to earlier years).
    return _holidays(today.year).get_nth_working_day(today + timedelta(days=1), -n)


@dataclass
class SourceRow:
    """A source's last success and failure (``veille status``)."""

    name: str
    kind: str
    last_success: datetime | None
    last_failure: datetime | None
    last_error: str | None


@dataclass
class RunRow:
    """What health reads of a finished crawl run."""

    id: int
    status: str
    n_seen: int
    n_not_modified: int
    error: str | None
    warnings: list[str] | None


def source_health(db: Archive) -> list[SourceRow]:
    with reading(db) as r:
        rows = r.all("SELECT name, kind, last_success, last_failure, last_error FROM source ORDER BY name")
    return [SourceRow(n, k, instant(ok), instant(ko), err) for n, k, ok, ko, err in rows]


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


def _latest_dated(r: Reader, name: str) -> date | None:
    sql = "SELECT max(n.published_at) FROM notice n JOIN sighting g ON g.notice_id = n.id WHERE g.source = :s"
    return day(r.scalar(sql, {"s": name}))


def _quiet_reasons(r: Reader, src: SourceConfig, exp: Expectation, runs: list[RunRow], today: date) -> list[str]:
    out = []
    if exp.per_working_day:
        latest = _latest_dated(r, src.name)
        if _outside_window(latest, today, exp.working_days):
            if latest:
                msg = N_("no item dated in the last %(n)s working days (latest: %(latest)s)")
                out.append(Message(msg, n=exp.working_days, latest=latest))
            else:
                out.append(Message(N_("no item dated in the last %(n)s working days"), n=exp.working_days))
    if exp.empty_runs and len(runs) > exp.empty_runs:
        recent, before = runs[: exp.empty_runs], runs[exp.empty_runs :]
        empty = all(run.status == "ok" and not run.n_seen and not run.n_not_modified for run in recent)
        if empty and any(run.n_seen for run in before):
            out.append(Message(N_("no items in the last %(n)s runs (it had some before)"), n=exp.empty_runs))
    return out


def _outside_window(latest: date | None, today: date, n: int) -> bool:
    """Is ``latest`` before the window of the ``n`` latest working days? The holiday calendar (0.2 s of imports)
    is read only near the window's start: the window spans at least its last n calendar days, and at most
    2n + 30 (two weekend days per five working days, and fewer than 15 holidays a year)."""
    if latest is None or latest < today - timedelta(days=2 * n + 30):
        return True
    if latest >= today - timedelta(days=n - 1):
        return False
    return latest < working_days_back(today, n)


def _degraded_reasons(r: Reader, src: SourceConfig, exp: Expectation, last: RunRow | None) -> list[str]:
    if last is None:
        return []
    out = [Message(N_("warning: %(warning)s"), warning=w) for w in (last.warnings or [])[:3]]
    if exp.deadlines and last.status == "ok":
        # The run's start compared in SQL, column to column: the same on SQLite (text) and PostgreSQL.
        sql = (
            "SELECT n.deadline FROM notice n JOIN sighting g ON g.notice_id = n.id WHERE g.source = :s"
            " AND g.last_seen >= (SELECT started_at FROM crawl_run WHERE id = :run) AND n.kind IN :kinds"
        )
        deadlines = [row[0] for row in r.all(sql, {"s": src.name, "run": last.id, "kinds": SIGNAL_KINDS})]
        if deadlines and all(d is None for d in deadlines):
            out.append(Message(N_("no deadline on the %(n)s items of the last run"), n=len(deadlines)))
    return out


RUNS = (
    "SELECT id, status, n_seen, n_not_modified, error, warnings FROM crawl_run"
    " WHERE source = :s AND status != 'running' ORDER BY id DESC LIMIT 50"
)


def source_states(db: Archive, settings: Settings, now: datetime | None = None) -> list[SourceState]:
    """Each configured source (and any other one in the archive) against its expectation."""
    today = (now or datetime.now(UTC)).astimezone(BRUSSELS).date()
    configured = {src.name: src for src in settings.sources}
    out = []
    with reading(db) as r:
        known = dict(r.all("SELECT name, kind FROM source"))
        for name in sorted(set(configured) | set(known)):
            src = configured.get(name) or SourceConfig(name=name, kind=known[name], url="-")
            runs = [
                RunRow(i, st, seen, n304, error, json_value(warnings))
                for i, st, seen, n304, error, warnings in r.all(RUNS, {"s": name})
            ]
            out.append(_state(r, src, runs, today))
    return out


def _state(r: Reader, src: SourceConfig, runs: list[RunRow], today: date) -> SourceState:
    if not runs:
        return SourceState(src.name, src.kind, "never")
    if runs[0].status == "failed":
        return SourceState(src.name, src.kind, "failed", [runs[0].error or "?"])
    exp = expectation_for(src)
    quiet = _quiet_reasons(r, src, exp, runs, today)
    if quiet:
        return SourceState(src.name, src.kind, "quiet", quiet)
    degraded = _degraded_reasons(r, src, exp, runs[0])
    return SourceState(src.name, src.kind, "degraded" if degraded else "ok", degraded)


def unhealthy(db: Archive, settings: Settings, now: datetime | None = None) -> list[SourceState]:
    """Sources gone quiet or degraded (failed ones are listed apart, with their runs)."""
    return [st for st in source_states(db, settings, now) if st.state in ("quiet", "degraded")]


@dataclass
class FailedRun:
    source: str
    started_at: datetime
    error: str | None


def failed_since(db: Archive, since: datetime) -> list[FailedRun]:
    """The failed crawl runs started at or after ``since``, oldest first (the digests' footer)."""
    sql = (
        "SELECT source, started_at, error FROM crawl_run WHERE status = 'failed' AND started_at >= :t"
        " ORDER BY started_at"
    )
    with reading(db) as r:
        return [FailedRun(src, instant(at), err) for src, at, err in r.all(sql, {"t": r.at(since)})]
