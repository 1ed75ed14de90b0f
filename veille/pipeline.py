"""One full cycle of the watch: crawl -> store -> classify -> alert -> digest.

Each stage is called through its public function and hands the next plain data; this module only
sequences them and collects a summary. ``veille run``, ``veille demo`` and the scheduler use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import select

from alerts import send_alerts, send_digests
from alerts.reminders import send_reminders
from core.config import Settings, clock
from nlp.classify import classify, stale_ids
from nlp.phrase_pairs import rule_units
from storage.crosslang import lexicon
from storage.db import session_scope
from storage.models import CrawlRun
from storage.runs import exclusive
from veille.crawl import crawl

Progress = Callable[[str], None]
# Outdated scores caught up per cycle: about 10 s of scoring, so a rules change never holds up alerts.
RESCORE_PER_CYCLE = 5_000


@dataclass
class CycleSummary:
    sources: list = field(default_factory=list)  # veille.crawl.SourceResult
    classified: int = 0
    rescored: int = 0  # of which: notices whose scores were outdated, not changed by this crawl
    abandoned: list[str] = field(default_factory=list)  # sources whose run a dead process left "running"
    labels: dict[str, int] = field(default_factory=dict)
    alerts: object | None = None  # alerts.DeliveryStats
    reminders: object | None = None
    digests: object | None = None

    @property
    def failed_sources(self) -> list:
        return [s for s in self.sources if not s.ok]

    @property
    def failed_deliveries(self) -> int:
        return sum(getattr(d, "failed", 0) for d in (self.alerts, self.reminders, self.digests) if d is not None)

    @property
    def ok(self) -> bool:
        return not self.failed_sources and not self.failed_deliveries


def due_sources(engine: Engine, settings: Settings, now: datetime | None = None) -> list[str]:
    """Enabled sources whose poll interval has elapsed since their last run."""
    now = now or datetime.now(UTC)
    with session_scope(engine) as s:
        last = {
            r.source: r.started_at
            for r in s.exec(select(CrawlRun).order_by(CrawlRun.id))  # later rows overwrite earlier
        }
    out = []
    for src in settings.sources:
        started = last.get(src.name)
        if src.enabled and (started is None or now - started >= src.interval_td):
            out.append(src.name)
    return out


def run_cycle(
    engine: Engine,
    settings: Settings,
    *,
    sources: list[str] | None = None,
    digests: bool = True,
    digest_since: date | None = None,
    now: datetime | None = None,
    progress: Progress = lambda _msg: None,
    wait: float = 0.0,
) -> CycleSummary:
    """One cycle under the archive's lock (RunInProgress when another holds it past ``wait`` seconds)."""
    with exclusive(engine, wait) as abandoned:
        summary = _cycle(engine, settings, sources, digests, digest_since, now, progress)
    summary.abandoned = abandoned
    return summary


def _cycle(
    engine: Engine,
    settings: Settings,
    sources: list[str] | None,
    digests: bool,
    digest_since: date | None,
    now: datetime | None,
    progress: Progress,
) -> CycleSummary:
    summary = CycleSummary()
    started = now or datetime.now(UTC)
    if sources is None:
        sources = due_sources(engine, settings, now)
    if sources:
        summary.sources = crawl(
            settings, engine, names=sources, timeout=settings.crawl.max_run_seconds, progress=progress
        )
    changed = {i for r in summary.sources for i in getattr(r, "changed_ids", [])}
    # Also, newest first and a bounded number per cycle: notices a killed run stored but never scored,
    # and those scored by rules or a model no longer in force (an analyst saved rules, `veille train`).
    stale = set(stale_ids(engine, settings, limit=RESCORE_PER_CYCLE)) - changed
    progress(f"classement de {len(changed)} notice(s) nouvelle(s) ou modifiée(s), {len(stale)} à rescorer")
    if changed or stale:
        stats = classify(engine, settings, sorted(changed | stale))
        summary.classified = stats.notices
        summary.rescored = len(stale)
        summary.labels = {k: v for k, v in stats.selected.items() if v}
    if changed:  # search's cross-language lexicon learns from the new bilingual titles, here, not in a search
        lexicon(engine, settings, rule_units)
    progress("envoi des alertes immédiates")
    summary.alerts = send_alerts(engine, settings, now=now, since=digest_since)
    progress("envoi des rappels d'échéance")
    summary.reminders = send_reminders(engine, settings, now=now)
    if digests and digest_since is not None:  # the demo: what this cycle found, whatever its items' dates
        progress("envoi des digests")  # (its alerts above take items dated from digest_since)
        summary.digests = send_digests(engine, settings, now=now, since=started)
    elif digests and digest_time_reached(settings, now):
        progress("envoi des digests dus")  # alerts skips non-working days and recipients already served
        summary.digests = send_digests(engine, settings, now=now)
    return summary


def digest_time_reached(settings: Settings, now: datetime | None = None) -> bool:
    tz = ZoneInfo(settings.schedule.timezone)
    local = (now or datetime.now(UTC)).astimezone(tz)
    return (local.hour, local.minute, local.second) >= clock(settings.schedule.digest_time)
