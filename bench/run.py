"""Full-run benchmark: ``veille run --all`` over a replay of N notices, then the same run again.

    python bench/run.py [--notices 10000] [--db sqlite|URL]

The replay is built like bench/crawl.py's (real titles and summaries of the development set): RSS feeds of
1,000 items and Cellar SPARQL answers for a fifth of the notices, served on 127.0.0.1. Each run is the real
command in its own process (crawl child, storage, classification, alerts, digests to the outbox folder);
its wall time and peak RSS (parent + crawl child, from ``os.wait4``) are printed. The baseline is the
second, incremental run over the unchanged replay: conditional GETs (304), nothing stored, nothing to
classify or send, so it shows the fixed cost of a cycle.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from crawl import feed, sparql_routes, titles  # noqa: E402  (bench/crawl.py: the same archive shape)
from peak_rss import measure  # noqa: E402

from crawlers.replay.server import ReplayServer, Route  # noqa: E402

PER_FEED = 1000


def routes_for(n: int) -> tuple[list[Route], int, int]:
    items = titles()
    n_acts = n // 5
    n_feeds = max(1, (n - n_acts) // PER_FEED)
    per_feed = (n - n_acts) // n_feeds
    routes = [
        Route(path=f"/feed/{f}.xml", body=feed(f, per_feed, items), headers={"Content-Type": "application/rss+xml"})
        for f in range(n_feeds)
    ]
    return routes + sparql_routes(n_acts, items), n_feeds, per_feed


def config(base: str, n_feeds: int, db: str) -> str:
    lines = [
        'profile = "has"',
        "[crawl]",
        "download_delay = 0.0",
        "concurrent_per_host = 8",
        "timeout = 60",
        "retries = 1",
        "max_run_seconds = 3600",
        "[schedule]",
        'digest_time = "00:00"',  # digests are due: part of the run
        'digest_days = "every"',
        "[storage]",
        f'url = "{db}"',
        "",
        "[[sources]]",
        'name = "bench-sparql"',
        'kind = "sparql"',
        f'url = "{base}/sparql"',
        'options = { query = "acts", page_size = 500, batch = 25, initial_days = 2500 }',
    ]
    for f in range(n_feeds):
        lines += ["[[sources]]", f'name = "bench-rss-{f}"', 'kind = "rss"', f'url = "{base}/feed/{f}.xml"']
    return "\n".join(lines) + "\n"


def timed_run(cfg: Path, home: Path) -> tuple[float, float, int, str]:
    """One ``veille run --all`` process: wall seconds, peak RSS (MiB) of it and its crawl child, exit code."""
    env = {**os.environ, "VEILLE_HOME": str(home), "COLUMNS": "160"}
    env.pop("VEILLE_SMTP_PASSWORD", None)
    env.pop("VEILLE_SLACK_TOKEN", None)  # deliveries go to the outbox folder
    cmd = [sys.executable, "-m", "veille", "--config", str(cfg), "run", "--all"]
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        # Through the launcher: started from this process, which holds the replay corpus, the figure
        # would include this process's own size.
        code, rss = measure(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - t0
        out.seek(0)
        return wall, rss, code, out.read().decode("utf-8", "replace")


def archive_counts(db: str) -> dict[str, int]:
    from sqlmodel import func, select

    from storage.db import open_archive, session_scope
    from storage.models import Delivery, LabelScore, Notice

    engine = open_archive(db)
    sent = select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
    with session_scope(engine) as s:
        out = {
            "notices": s.exec(select(func.count()).select_from(Notice)).one(),
            "label scores": s.exec(select(func.count()).select_from(LabelScore)).one(),
            "deliveries sent": s.exec(sent).one(),
        }
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notices", type=int, default=10_000)
    ap.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a database URL")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="veille-bench-run-"))
    db = f"sqlite:///{home / 'bench.db'}" if args.db == "sqlite" else args.db
    routes, n_feeds, per_feed = routes_for(args.notices)
    with ReplayServer(routes) as srv:
        cfg = home / "veille.toml"
        cfg.write_text(config(srv.base_url, n_feeds, db), encoding="utf-8")
        print(
            f"replay: {n_feeds} feeds x {per_feed} items + {args.notices // 5} SPARQL acts "
            f"({sum(len(r.body) for r in routes):,} bytes); archive {db.split(':')[0]}; home {home}"
        )
        print(f"{'run':34} {'wall s':>8} {'notices/s':>10} {'peak RSS MiB':>13}  result")
        for name in ("first run (everything new)", "baseline: second run (incremental)"):
            wall, rss, code, output = timed_run(cfg, home)
            counts = archive_counts(db)
            rate = counts["notices"] / wall
            print(f"{name:34} {wall:8.1f} {rate:10.1f} {rss:13.0f}  exit {code}, {counts}")
            if code != 0:
                print(output[-3000:])
    outbox = home / "outbox"
    files = sum(1 for p in outbox.rglob("*") if p.is_file()) if outbox.exists() else 0
    print(f"outbox: {files} messages written (e-mails and Slack posts as files); notices/s = archive size / wall")


if __name__ == "__main__":
    main()
