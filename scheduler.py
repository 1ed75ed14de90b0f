"""The long-running watch: APScheduler 3 with its job store in the archive database.

- one interval job per source (its ``interval`` from config), one cron job for the digests
  (``schedule.digest_time``, Europe/Paris, Monday to Friday);
- ``coalesce`` + ``misfire_grace_time``: a machine that was off runs a missed job once, not N times;
- ``max_instances=1``: a job that overruns is not started twice; one worker: the jobs of this process
  queue for each other (each holds the archive's cycle lock while it runs);
- a poll that finds the lock held by another process (a manual ``veille run``) skips its turn with a log
  line (that run crawls the due sources); the daily digest job waits for it, up to ``misfire_grace``;
- each crawl runs in a child process (``crawlers.run``), so a hung or crashing source cannot take the
  scheduler down (and Scrapy's reactor, which cannot restart, never lives in this process);
- SIGTERM/SIGINT: stop taking new jobs and wait for the one in flight.

Jobs are stored by reference (``scheduler:poll_source``) with plain arguments, so the store survives
restarts; on start the configured jobs are reconciled with the stored ones without losing a missed
run time.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from core.config import Settings, clock, load_settings, parse_duration

# The pipeline and storage are imported inside the jobs: start-up time (`veille status` imports this module
# for the next run times).

if TYPE_CHECKING:  # APScheduler loads only to schedule: `veille status` reads its table without it
    from apscheduler.schedulers.background import BackgroundScheduler

    from storage.reader import Archive

log = logging.getLogger("veille.scheduler")
JOBS_TABLE = "apscheduler_jobs"


def _settings(config: str | None) -> Settings:
    return load_settings(config)


def poll_source(name: str, config: str | None = None) -> None:
    """Job: crawl one source, classify what changed, send critical alerts."""
    from storage.db import open_archive
    from storage.lock import RunInProgress
    from veille.pipeline import run_cycle

    settings = _settings(config)
    engine = open_archive(settings.database_url)
    try:
        summary = run_cycle(engine, settings, sources=[name], digests=False)
    except RunInProgress as exc:
        log.warning("poll of %s skipped: %s", name, exc)
        return
    for source in summary.abandoned:
        log.warning("source %s: a run left unfinished by a stopped process was closed as failed", source)
    for r in summary.sources:
        log.info("source %s: ok=%s new=%s updated=%s error=%s", r.source, r.ok, r.new, r.updated, r.error)
    if summary.classified:
        log.info("classified %s notice(s), %s of them with outdated scores", summary.classified, summary.rescored)


def send_digests_job(config: str | None = None) -> None:
    """Job: the daily digests (the alerts stage skips non-working days and recipients already served)."""
    from alerts import send_digests
    from storage.db import open_archive
    from storage.lock import RunInProgress
    from storage.runs import exclusive

    settings = _settings(config)
    engine = open_archive(settings.database_url)
    # Once a day: wait for a manual run or crawl to finish (up to the misfire grace) rather than skip it.
    wait = parse_duration(settings.schedule.misfire_grace).total_seconds()
    try:
        with exclusive(engine, wait=wait):
            stats = send_digests(engine, settings)
    except RunInProgress as exc:
        log.warning("digests skipped after waiting %.0f s: %s", wait, exc)
        return
    log.info("digests: %s", stats)


def build_scheduler(settings: Settings, config: str | None = None) -> BackgroundScheduler:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    grace = int(parse_duration(settings.schedule.misfire_grace).total_seconds())
    sched = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=settings.database_url, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        timezone=settings.schedule.timezone,
    )
    return sched


def desired_jobs(settings: Settings, config: str | None) -> dict[str, dict]:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    hour, minute, second = clock(settings.schedule.digest_time)
    jobs = {
        f"poll:{s.name}": {
            "func": "scheduler:poll_source",
            "args": [s.name, config],
            "trigger": IntervalTrigger(seconds=int(s.interval_td.total_seconds()), timezone=UTC),
        }
        for s in settings.sources
        if s.enabled
    }
    jobs["digest"] = {
        "func": "scheduler:send_digests_job",
        "args": [config],
        "trigger": CronTrigger(
            day_of_week="mon-fri" if settings.schedule.digest_days == "working" else "*",
            hour=hour,
            minute=minute,
            second=second,
            timezone=settings.schedule.timezone,
        ),
    }
    return jobs


def reconcile(sched: BackgroundScheduler, settings: Settings, config: str | None) -> None:
    """Add missing jobs, replace changed ones, drop removed ones; keep stored next-run times."""
    wanted = desired_jobs(settings, config)
    for job in sched.get_jobs():
        if job.id not in wanted:
            job.remove()
    for job_id, spec in wanted.items():
        job = sched.get_job(job_id)
        if job is not None and str(job.trigger) == str(spec["trigger"]) and list(job.args) == spec["args"]:
            continue  # unchanged: its stored next_run_time (maybe in the past) drives the catch-up
        now = datetime.now(UTC)
        # A new source is polled at once; the digest waits for its time of day.
        first = now if job_id.startswith("poll:") else spec["trigger"].get_next_fire_time(None, now)
        sched.add_job(
            spec["func"],
            spec["trigger"],
            args=spec["args"],
            id=job_id,
            name=job_id,
            replace_existing=True,
            next_run_time=first,
        )


def run_forever(config: str | None = None, stop: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); the job in flight is finished, not killed."""
    settings = _settings(config)
    from storage.db import open_archive

    open_archive(settings.database_url)  # migrations first, so the job store shares a ready database
    sched = build_scheduler(settings, config)
    sched.start(paused=True)
    reconcile(sched, settings, config)
    sched.resume()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    log.info("scheduler started with %d jobs", len(sched.get_jobs()))
    stop.wait()
    log.info("stopping: waiting for the job in flight")
    sched.shutdown(wait=True)


def next_runs(settings: Settings, db: Archive | None = None) -> list[tuple[str, datetime | None]]:
    """Next run time of each stored job, for ``veille status`` (no scheduler needs to be running).

    Read from the job store's table (``id``, ``next_run_time`` in UTC epoch seconds, NULL when paused) without
    loading APScheduler and unpickling the jobs: ``veille status`` answers in a fraction of a second. ``db``: the
    archive as the caller opened it (storage.reader), else the engine of ``settings``."""
    from storage.reader import errors, reading

    if db is None:
        from storage.db import open_archive

        db = open_archive(settings.database_url)
    try:
        with reading(db) as r:
            rows = r.all(f"SELECT id, next_run_time FROM {JOBS_TABLE}")
    except errors(db):  # the scheduler has never run: no table yet
        return []
    return [(job_id, None if t is None else datetime.fromtimestamp(t, UTC)) for job_id, t in rows]


def main() -> None:
    """``python scheduler.py``: the config is ``VEILLE_CONFIG`` if set, else ``$VEILLE_HOME/veille.toml``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_forever(None)  # config_path() reads VEILLE_CONFIG, then falls back to the home folder


if __name__ == "__main__":
    main()
