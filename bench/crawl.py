"""Crawl benchmark: replay a local archive of >= 5,000 items twice; print throughput and bytes.

    python bench/crawl.py [--feeds 8] [--per-feed 500] [--acts 1500] [--db sqlite|URL]

The archive is generated from real titles (nlp/data/has_dev_notices.jsonl):
RSS feeds of ``--per-feed`` items each, and Cellar SPARQL answers in our query shape (discovery
pages of 500, details batches of 25) for ``--acts`` works. It is served by the replay server on
127.0.0.1, crawled by the real pipeline (Scrapy child process -> storage.ingest), then crawled
again unchanged: the second run should revalidate everything (304) and download no body.
Politeness is off (download_delay 0, 8 per host) so the numbers measure the pipeline, not the delay.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawlers.replay.server import ReplayServer, Route  # noqa: E402

CELLAR = "http://publications.europa.eu/resource/cellar/bench-"
RT = "http://publications.europa.eu/resource/authority/resource-type/REG_IMPL"


def titles() -> list[dict]:
    path = ROOT / "nlp" / "data" / "has_dev_notices.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def feed(n_feed: int, per_feed: int, items: list[dict]) -> bytes:
    out = []
    for i in range(per_feed):
        it = items[(n_feed * per_feed + i) % len(items)]
        summary = escape(f"<p>{escape(it['summary'])}</p>")
        out.append(
            f"<item><title>{escape(it['title'])} [{n_feed}-{i}]</title><link>https://example.eu/f{n_feed}/{i}_en</link>"
            f"<description>{summary}</description><pubDate>Mon, 01 Jun 2026 10:00:00 +0200</pubDate>"
            f"<guid>bench-{n_feed}-{i}</guid><category>Health</category></item>"
        )
    head = f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>bench {n_feed}</title>'
    return (head + "".join(out) + "</channel></rss>").encode()


def cell(v: str) -> dict:
    return {"type": "literal", "value": v}


def sparql_routes(n_acts: int, items: list[dict]) -> list[Route]:
    works = [(f"{CELLAR}{k}", f"3{2020 + k % 6}R{k:04d}", items[k % len(items)]) for k in range(n_acts)]
    routes = []
    for page in range(0, n_acts + 1, 500):
        rows = [
            {
                "work": {"type": "uri", "value": w},
                "celex": cell(c),
                "ojDate": {
                    "type": "typed-literal",
                    "datatype": "http://www.w3.org/2001/XMLSchema#date",
                    "value": it["date"],
                },
                "types": cell(RT),
            }
            for w, c, it in works[page : page + 500]
        ]
        body = json.dumps({"head": {"vars": []}, "results": {"bindings": rows}}).encode()
        routes.append(Route(path="/sparql", contains=["FILTER(?oj >=", f"LIMIT 500 OFFSET {page}"], body=body))
    for b in range(0, n_acts, 25):
        rows = [
            {
                "work": {"type": "uri", "value": w},
                "celex": cell(c),
                ("title_fr" if it["lang"] == "fr" else "title_en"): cell(it["title"]),
                "eurovoc_en": cell("public health|medical device"),
                "legal_basis": cell("32021R2282"),
            }
            for w, c, it in works[b : b + 25]
        ]
        body = json.dumps({"head": {"vars": []}, "results": {"bindings": rows}}).encode()
        routes.append(Route(path="/sparql", contains=["VALUES ?work", f"<{works[b][0]}>"], body=body))
    return routes


def config(base: str, n_feeds: int) -> str:
    lines = ["[crawl]", "download_delay = 0.0", "concurrent_per_host = 8", "timeout = 60", "retries = 1", ""]
    lines += [
        "[[sources]]",
        'name = "bench-sparql"',
        'kind = "sparql"',
        f'url = "{base}/sparql"',
        'options = { query = "acts", page_size = 500, batch = 25 }',
        "",
    ]
    for f in range(n_feeds):
        lines += ["[[sources]]", f'name = "bench-rss-{f}"', 'kind = "rss"', f'url = "{base}/feed/{f}.xml"', ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=8)
    ap.add_argument("--per-feed", type=int, default=500)
    ap.add_argument("--acts", type=int, default=1500)
    ap.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a database URL")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="veille-bench-"))
    os.environ["VEILLE_HOME"] = str(tmp)
    from core.config import load_settings
    from storage.db import open_archive
    from veille.crawl import crawl

    items = titles()
    routes = [
        Route(
            path=f"/feed/{f}.xml", body=feed(f, args.per_feed, items), headers={"Content-Type": "application/rss+xml"}
        )
        for f in range(args.feeds)
    ]
    routes += sparql_routes(args.acts, items)
    expected = args.feeds * args.per_feed + args.acts
    with ReplayServer(routes) as srv:
        cfg = tmp / "veille.toml"
        cfg.write_text(config(srv.base_url, args.feeds), encoding="utf-8")
        settings = load_settings(cfg)
        engine = open_archive(f"sqlite:///{tmp / 'bench.db'}" if args.db == "sqlite" else args.db)
        print(
            f"archive: {expected} items ({args.feeds} feeds x {args.per_feed} + {args.acts} SPARQL acts), "
            f"{sum(len(r.body) for r in routes):,} bytes; db {engine.dialect.name}"
        )
        for run in (1, 2):
            t0 = time.perf_counter()
            results = crawl(settings, engine, since=date(2025, 1, 1))  # fixed: same SPARQL queries both runs
            dt = time.perf_counter() - t0
            failed = [r for r in results if not r.ok]
            new = sum(r.new for r in results)
            seen = sum(r.new + r.updated + r.unchanged for r in results)
            print(
                f"run {run}: {dt:6.1f} s  stored(new) {new:5d}  seen {seen:5d}  "
                f"{seen / dt:7.1f} notices/s  requests {sum(r.requests for r in results):4d}  "
                f"304 {sum(r.not_modified for r in results):4d}  bytes downloaded {sum(r.bytes for r in results):,}"
                + (f"  FAILED: {[(r.source, r.error) for r in failed]}" if failed else "")
            )


if __name__ == "__main__":
    main()
