"""Scrapy settings built from ``Settings.crawl`` (veille's config), never from a Scrapy project file.

Politeness and incrementality are set here once for every source: robots.txt, AutoThrottle, one
request per second per host by default, retries with backoff on 429/5xx, an honest User-Agent, a
body-size cap, and an RFC 2616 HTTP cache that revalidates every URL on every run (conditional GET
with ETag / Last-Modified; docs/research/stack_probe.md §3 explains the two settings that make it work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config import CrawlConfig

RETRY_HTTP_CODES = [408, 429, 500, 502, 503, 504, 522, 524]


def cache_dir(crawl: CrawlConfig, home: Path) -> Path:
    return Path(crawl.cache_dir).expanduser() if crawl.cache_dir else home / "httpcache"


def scrapy_settings(crawl: CrawlConfig, *, http_cache: Path, out_dir: Path, record_dir: Path | None = None) -> dict:
    settings: dict[str, Any] = {
        "BOT_NAME": "veille",
        "USER_AGENT": crawl.ua,
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "ROBOTSTXT_USER_AGENT": "veille",
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": max(crawl.download_delay, 0.01),
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_DELAY": crawl.download_delay,
        "DOWNLOAD_DELAY_JITTER": 0,  # "at most one request per second", not "1 s on average"
        "URLLENGTH_LIMIT": 32_768,  # SPARQL GET queries are long; the default 2083 drops them silently
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrent_per_host,
        "CONCURRENT_REQUESTS": 16,
        "DOWNLOAD_TIMEOUT": crawl.timeout,
        "RETRY_ENABLED": crawl.retries > 0,
        "RETRY_TIMES": crawl.retries,
        "RETRY_HTTP_CODES": RETRY_HTTP_CODES,
        # Backoff between attempts: base * 2**(attempt-1), capped; Retry-After is honoured up to the cap.
        "VEILLE_RETRY_BACKOFF_BASE": max(crawl.download_delay, 0.05) * 2,
        "VEILLE_RETRY_BACKOFF_MAX": 60.0,
        "DOWNLOAD_MAXSIZE": crawl.max_body_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOAD_FAIL_ON_DATALOSS": True,  # a truncated body is a failure, never a short feed
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_POLICY": "crawlers.middlewares.RevalidatePolicy",
        "HTTPCACHE_STORAGE": "scrapy.extensions.httpcache.FilesystemCacheStorage",
        "HTTPCACHE_DIR": str(http_cache),
        "HTTPCACHE_IGNORE_RESPONSE_CACHE_CONTROLS": ["no-cache"],
        "DEFAULT_REQUEST_HEADERS": {
            "Cache-Control": "max-age=0",  # revalidate every cached URL on every run
            "Accept-Language": "en,fr;q=0.9",
        },
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawlers.middlewares.BackoffRetryMiddleware": 550,
            "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware": None,
            "crawlers.middlewares.StrictHttpCacheMiddleware": 900,
            # Closest to the network: sees raw answers (304s, challenges) before the cache swaps them.
            "crawlers.middlewares.WireMiddleware": 950,
        },
        "ITEM_PIPELINES": {"crawlers.pipelines.CollectPipeline": 300},
        "VEILLE_OUT_DIR": str(out_dir),
        "VEILLE_RECORD_DIR": str(record_dir) if record_dir else None,
        "VEILLE_MAX_BODY_BYTES": crawl.max_body_bytes,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        "LOG_FILE": str(out_dir / "scrapy.log"),
    }
    return settings
