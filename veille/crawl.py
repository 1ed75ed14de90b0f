"""Crawl, then store: the two steps of a poll, each in its own stage.

``crawlers.run.fetch`` brings each source's records back from the crawl child without touching the
archive; here the run is recorded (``storage.runs``) and the records land with ``storage.ingest.ingest``
in one transaction per source. The watermark moves only when the source succeeded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from core.config import Settings
from core.dates import now_utc
from crawlers.run import DEFAULT_TIMEOUT, SourceOutcome, fetch, select_sources
from storage.ingest import IngestStats, ingest
from storage.runs import finish_run, start_run, watermark


@dataclass
class SourceResult:
    source: str
    ok: bool
    error: str | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    requests: int = 0
    not_modified: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    changed_ids: list[int] = field(default_factory=list)  # notices to classify next


def _since(engine: Engine, source: str, since: date | datetime | None) -> str | None:
    when = since or watermark(engine, source)
    if when is None:
        return None
    return (when.date() if isinstance(when, datetime) else when).isoformat()


def crawl(
    settings: Settings,
    engine: Engine,
    names: list[str] | None = None,
    since: date | datetime | None = None,
    record_dir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[SourceResult]:
    """Crawl the named (or all enabled) sources once, then store what came back; one result per source."""
    sources = select_sources(settings, names)
    if not sources:
        return []
    started = now_utc()
    runs = {s.name: start_run(engine, s.name, s.kind) for s in sources}  # shown as running meanwhile
    progress(f"relevé de {len(sources)} source(s)")
    outcomes = fetch(settings, sources, {s.name: _since(engine, s.name, since) for s in sources}, record_dir, timeout)
    progress(f"archivage de {sum(len(o.records) for o in outcomes)} élément(s) de {len(outcomes)} source(s)")
    return [store(engine, runs[o.source.name], o, started) for o in outcomes]


def store(engine: Engine, run_id: int, got: SourceOutcome, started: datetime) -> SourceResult:
    """Ingest one source's records and close its run (records of a failed source are kept, no watermark)."""
    result = SourceResult(
        source=got.source.name,
        ok=got.ok,
        error=got.error,
        requests=got.requests,
        not_modified=got.not_modified,
        bytes=got.bytes,
        warnings=got.warnings,
    )
    stats = IngestStats()
    try:
        stats = ingest(engine, got.records)
    except Exception as exc:  # the batch rolled back as a whole; the run says why
        result.ok, result.error = False, f"archivage impossible : {type(exc).__name__}: {exc}"[:2000]
    result.new, result.updated, result.unchanged, result.changed_ids = (
        stats.new,
        stats.updated,
        stats.unchanged,
        stats.changed_ids,
    )
    finish_run(
        engine,
        run_id,
        ok=result.ok,
        error=result.error,
        watermark=started if result.ok else None,
        warnings=result.warnings,
        n_seen=stats.seen,
        n_new=stats.new,
        n_updated=stats.updated,
        n_unchanged=stats.unchanged,
        n_requests=result.requests,
        n_not_modified=result.not_modified,
        bytes_downloaded=result.bytes,
    )
    return result
