"""Crawl runs and per-source watermarks.

A run is recorded as ``running`` when it starts, in its own transaction, so a crash leaves a
visible trace. The watermark moves only with a successful run, in the same transaction as the
run's status: a failed source is retried from where it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from core.dates import now_utc
from core.records import as_utc
from storage.db import session_scope
from storage.lock import archive_lock
from storage.models import CrawlRun, Source


def start_run(engine: Engine, source: str, kind: str) -> int:
    with session_scope(engine, write=True) as s:
        if s.get(Source, source) is None:
            s.add(Source(name=source, kind=kind))
        run = CrawlRun(source=source, started_at=now_utc())
        s.add(run)
        s.flush()
        return run.id


def finish_run(
    engine: Engine,
    run_id: int,
    *,
    ok: bool,
    error: str | None = None,
    watermark: datetime | None = None,
    warnings: list[str] | None = None,
    **counts: int,
) -> None:
    with session_scope(engine, write=True) as s:
        run = s.get(CrawlRun, run_id)
        now = now_utc()
        run.finished_at, run.status, run.error = now, "ok" if ok else "failed", error
        run.warnings = list(warnings) if warnings else None
        for name, value in counts.items():
            setattr(run, name, value)
        src = s.get(Source, run.source)
        if ok:
            src.last_success = now
            if watermark is not None:
                src.watermark = watermark
        else:
            src.last_failure, src.last_error = now, error


def watermark(engine: Engine, source: str) -> datetime | None:
    with session_scope(engine) as s:
        src = s.get(Source, source)
        return src.watermark if src else None


ABANDONED = (
    "interrompu : le processus s'est arrêté avant la fin de la collecte (interrupted: the process stopped mid-run)"
)


def close_abandoned(engine: Engine) -> list[str]:
    """Close as failed the runs left ``running`` by a process that died (killed, disk full, power cut).

    Only the holder of the archive's lock (storage.lock) may call this: the lock proves that no other
    process is crawling, so every ``running`` row is a dead one. Returns the sources concerned.
    """
    with session_scope(engine, write=True) as s:
        runs = list(s.exec(select(CrawlRun).where(CrawlRun.status == "running")))
        now = now_utc()  # finished_at: when the run was found dead and closed
        for run in runs:
            run.finished_at, run.status, run.error = now, "failed", ABANDONED
            src = s.get(Source, run.source)
            # The failure happened some time after the start; the start is the one time known for sure.
            if src is not None and (src.last_failure is None or as_utc(src.last_failure) < as_utc(run.started_at)):
                src.last_failure, src.last_error = run.started_at, ABANDONED
        return [r.source for r in runs]


@contextmanager
def exclusive(engine: Engine, wait: float = 0.0) -> Iterator[list[str]]:
    """Hold the archive's cycle lock (storage.lock; RunInProgress if busy past ``wait`` seconds).

    Holding it proves no other process is crawling or sending: crawl runs still ``running`` were left
    by a dead process and are closed as failed first (their sources are yielded).
    """
    with archive_lock(engine, wait):
        yield close_abandoned(engine)
