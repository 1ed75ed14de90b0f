"""``fetch()``: crawl sources in a child process and return, per source, its status and records.

Callable any number of times in one long-running process (the scheduler does): Scrapy runs in a
fresh child each time. Nothing here touches the archive: ``veille.crawl`` records the runs and stores
the records (``storage``). A failed source (timeout, 5xx, WAF challenge, HTML instead of a feed,
malformed XML, oversized body, a crashed child) is an outcome with its reason; the others are unaffected.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from core.config import Settings, SourceConfig
from core.records import NoticeRecord
from crawlers.kinds import KINDS
from crawlers.settings import cache_dir

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 3600.0
CACHE_MAX_AGE_DAYS = 30
WORK_PREFIX = "veille-crawl-"
# Secrets the crawl child never needs (it reads its job file, not the config): kept out of its environment.
SECRET_ENV = (
    "VEILLE_SMTP_PASSWORD",
    "VEILLE_SLACK_TOKEN",
    "VEILLE_WEB_SECRET",
    "VEILLE_DATABASE_URL",
    "VEILLE_WEBHOOK_",
)


@dataclass
class SourceOutcome:
    """What one source's crawl brought back: its status (from the child) and its records."""

    source: SourceConfig
    ok: bool
    error: str | None = None
    requests: int = 0
    not_modified: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    records: list[NoticeRecord] = field(default_factory=list)


def select_sources(settings: Settings, names: list[str] | None) -> list[SourceConfig]:
    """Named sources (enabled or not; unknown names raise ConfigError), else every enabled one."""
    if names:
        return [settings.source(n) for n in dict.fromkeys(names)]
    return [s for s in settings.sources if s.enabled]


def prune_cache(root: Path, max_age_days: float = CACHE_MAX_AGE_DAYS) -> int:
    """Drop HTTP-cache entries not revalidated for a while (SPARQL windows make new URLs daily)."""
    if not root.is_dir():
        return 0
    cutoff, dropped = time.time() - max_age_days * 86400, 0
    for meta in root.glob("*/*/*/pickled_meta"):  # FilesystemCacheStorage: <spider>/<xx>/<fingerprint>/
        if meta.stat().st_mtime < cutoff:
            shutil.rmtree(meta.parent, ignore_errors=True)
            dropped += 1
    return dropped


def prune_work_dirs(older_than: float) -> int:
    """Remove work folders of crawls killed before they could clean up (SIGKILL, power cut)."""
    cutoff, dropped = time.time() - older_than, 0
    for work in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        try:
            stale = work.is_dir() and work.stat().st_mtime < cutoff
        except OSError:
            continue
        if stale:  # a live crawl is younger than its deadline (max_run_seconds): never this old
            shutil.rmtree(work, ignore_errors=True)
            dropped += 1
    return dropped


def run_child(job: dict, work: Path, timeout: float) -> str | None:
    """Run the Scrapy child; return why it did not end normally (None if it did)."""
    job_path = work / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV)}  # it parses untrusted content
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with (work / "child.err").open("wb") as err:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "crawlers.child", str(job_path)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"processus de collecte arrêté au bout de {timeout:.0f} s"
    if proc.returncode != 0:
        tail = (work / "child.err").read_text(errors="replace").strip().splitlines()[-1:] or [""]
        return f"processus de collecte terminé avec le code {proc.returncode} : {tail[0][:300]}"
    return None


def read_outcome(work: Path, name: str, child_error: str | None) -> tuple[dict, list[NoticeRecord]]:
    """The child's status and records for one source; a missing status is a failure."""
    status_path = work / f"{name}.status.json"
    if not status_path.exists():
        status = {"ok": False, "error": child_error or "processus de collecte terminé sans état pour cette source"}
    else:
        status = json.loads(status_path.read_text(encoding="utf-8"))
    records = []
    rec_path = work / f"{name}.jsonl"
    if rec_path.exists():
        for n, line in enumerate(rec_path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                records.append(NoticeRecord.model_validate_json(line))
            except ValidationError as exc:
                why = exc.errors()[0]["msg"]
                status = {**status, "ok": False, "error": f"enregistrement {n} de {name} illisible : {why}"}
                return status, []
    return status, records


def fetch(
    settings: Settings,
    sources: list[SourceConfig],
    since: dict[str, str | None] | None = None,
    record_dir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[SourceOutcome]:
    """Crawl ``sources`` once in a child process; ``since`` maps a source to the ISO day it re-reads from."""
    since = since or {}
    prune_cache(cache_dir(settings.crawl, settings.home))
    prune_work_dirs(2 * max(timeout, settings.crawl.max_run_seconds))
    job = {
        "crawl": settings.crawl.model_dump(),
        "cache_dir": str(cache_dir(settings.crawl, settings.home)),
        "record_dir": str(Path(record_dir).expanduser().resolve()) if record_dir else None,
        "sources": [_job_source(s, since.get(s.name)) for s in sources],
    }
    with tempfile.TemporaryDirectory(prefix=WORK_PREFIX) as tmp:
        work = Path(tmp)
        job["out_dir"] = str(work)
        child_error = run_child(job, work, timeout)
        return [outcome(s, *read_outcome(work, s.name, child_error)) for s in sources]


def _job_source(source: SourceConfig, since: str | None) -> dict:
    """What the child needs of a source: its config (typed options as JSON) and its kind's spider path."""
    return {"config": source.model_dump(mode="json"), "spider": KINDS[source.kind].spider, "since": since}


def outcome(source: SourceConfig, status: dict, records: list[NoticeRecord]) -> SourceOutcome:
    return SourceOutcome(
        source=source,
        ok=bool(status.get("ok")),
        error=status.get("error"),
        requests=status.get("requests", 0),
        not_modified=status.get("not_modified", 0),
        bytes=status.get("bytes", 0),
        warnings=status.get("warnings", []),
        records=records,
    )
