"""The crawl child process: ``python -m crawlers.child JOB.json``.

Scrapy's reactor cannot restart (docs/research/stack_probe.md §3), so every crawl runs in a fresh
process. All sources of a job run in one reactor, concurrently, each as its own crawler (own
stats, own failures). Results go to files in the job's ``out_dir`` (see crawlers.pipelines).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from scrapy.crawler import CrawlerProcess

from core.config import CrawlConfig
from crawlers.pipelines import write_atomic
from crawlers.settings import scrapy_settings


def load_spider(path: str) -> type:
    """``"module:Class"`` -> the class (the module may declare its own kind: it registers on import)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def run_job(job: dict) -> None:
    crawl = CrawlConfig.model_validate(job["crawl"])
    out_dir = Path(job["out_dir"])
    record_dir = Path(job["record_dir"]) if job.get("record_dir") else None
    settings = scrapy_settings(crawl, http_cache=Path(job["cache_dir"]), out_dir=out_dir, record_dir=record_dir)
    process = CrawlerProcess(settings)
    for src in job["sources"]:
        config = src["config"]
        try:
            cls = load_spider(src["spider"])
        except (ImportError, AttributeError) as exc:
            status = {"source": config["name"], "ok": False, "error": f"spider {src['spider']} introuvable : {exc}"}
            write_atomic(out_dir / f"{config['name']}.status.json", json.dumps(status))
            continue
        process.crawl(
            cls,
            source=config,
            since=src.get("since"),
            max_bytes=crawl.max_body_bytes,
            window_days=crawl.sparql_window_days,
        )
    process.start()


if __name__ == "__main__":
    run_job(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
