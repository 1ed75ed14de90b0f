"""The scheduler end to end: real APScheduler, real Scrapy child processes against a local replay
server, real SQLite job store, and a local server speaking the Slack Web API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlmodel import select

import scheduler
from alerts import send_digests
from core.config import load_settings
from crawlers.replay.server import ReplayServer, Route
from storage.db import open_archive, session_scope
from storage.models import CrawlRun, Delivery, Notice
from tests.alerts_support import SlackServer
from tests.conftest import ROOT
from veille.pipeline import run_cycle

HTA_ITEM = (
    "32026R0101",
    "Commission Implementing Regulation (EU) 2026/101 laying down rules for the application of "
    "Regulation (EU) 2021/2282 as regards joint clinical assessments of medicinal products for human use",
)
NEWS_ITEM = ("52026DC0042", "Communication on the European Health Union: state of play of the cancer plan")
LATE_ITEM = (
    "32026R0155",
    "Commission Implementing Regulation (EU) 2026/155 on the procedural rules for joint scientific "
    "consultations under Regulation (EU) 2021/2282 on health technology assessment",
)


def feed(items: list[tuple[str, str]]) -> bytes:
    """An EUR-Lex predefined feed, in the documented item shape (docs/research/sources.md §2), published today: new acts
    that the digests send (older ones would be archived unsent, alerts/jobs.py plan_digests)."""
    today = format_datetime(datetime.now(ZoneInfo("Europe/Paris")).replace(hour=0, minute=0, second=0, microsecond=0))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>',
        "<title>5 - Acts of the Official Journal L</title><link>https://eur-lex.europa.eu</link>",
    ]
    for celex, title in items:
        out.append(
            f"<item><title>CELEX:{celex}: {title}</title><description/>"
            f"<link>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:{celex}</link>"
            f"<guid>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELLAR:{celex}</guid>"
            f"<pubDate>{today}</pubDate></item>"
        )
    out.append("</channel></rss>")
    return "".join(out).encode()


def write_config(home: Path, replay: ReplayServer, slack: SlackServer, sources: str, digest_in: float) -> Path:
    at = datetime.now(ZoneInfo("Europe/Paris")) + timedelta(seconds=digest_in)
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "veille.toml"
    cfg.write_text(
        f"""profile = "has"
[crawl]
download_delay = 0
retries = 0
timeout = 5
max_run_seconds = 120
[slack]
base_url = "{slack.base}/api/"
[schedule]
digest_time = "{at:%H:%M:%S}"
digest_days = "every"
misfire_grace = "1h"
{sources}
""",
        encoding="utf-8",
    )
    return cfg


def source(name: str, url: str, interval: str) -> str:
    return f'[[sources]]\nname = "{name}"\nkind = "rss"\nurl = "{url}"\nlanguages = ["en"]\ninterval = "{interval}"\n'


def runs(engine, name: str) -> list[CrawlRun]:
    with session_scope(engine) as s:
        return list(s.exec(select(CrawlRun).where(CrawlRun.source == name).order_by(CrawlRun.id)))


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start(cfg: Path) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run_forever, args=(str(cfg),), kwargs={"stop": stop}, daemon=True)
    thread.start()
    return thread, stop


def posts_mentioning(slack: SlackServer, text: str) -> list[dict]:
    return [p for p in slack.posts if text in str(p)]


@pytest.fixture
def peers(monkeypatch):
    monkeypatch.setenv("VEILLE_SLACK_TOKEN", "xoxb-test-token")
    with ReplayServer() as replay, SlackServer() as slack:
        yield replay, slack
    replay.close()


def test_two_cycles_incremental_and_each_alert_and_digest_delivered_once(veille_home, peers, capsys):
    replay, slack = peers
    route = replay.add(
        Route(path="/oj.xml", body=feed([HTA_ITEM, NEWS_ITEM]), headers={"Content-Type": "application/rss+xml"})
    )
    cfg = write_config(veille_home, replay, slack, source("oj", replay.url("/oj.xml"), "3s"), digest_in=25)
    settings = load_settings(cfg)
    engine = open_archive(settings.database_url)
    thread, stop = start(cfg)
    try:
        wait_for(lambda: len([r for r in runs(engine, "oj") if r.status == "ok"]) >= 2, 90, "two poll cycles")
        wait_for(lambda: posts_mentioning(slack, HTA_ITEM[0]), 30, "the critical alert")
        # A new critical act appears at T: how long until its Slack alert arrives?
        t0 = time.monotonic()
        route.body = feed([LATE_ITEM, HTA_ITEM, NEWS_ITEM])
        wait_for(lambda: posts_mentioning(slack, LATE_ITEM[0]), 60, "the late act's alert")
        latency = time.monotonic() - t0  # within the 0.2 s polling of wait_for
        with capsys.disabled():
            print(f"\nfreshness: new critical act -> Slack alert in {latency:.1f} s (poll interval 3 s)")
        wait_for(lambda: _digests_sent(engine) > 0, 60, "the digest")
        polls = len(runs(engine, "oj"))
        wait_for(lambda: _finished(runs(engine, "oj")) > polls, 60, "one more poll after the digest")
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive(), "SIGTERM-like stop did not finish the scheduler"

    oj = runs(engine, "oj")
    assert all(r.status == "ok" for r in oj), [r.error for r in oj]
    assert oj[0].n_new == 2
    later = [r for r in oj[1:] if r.n_new == 0 and r.n_updated == 0]
    assert later and all(r.n_not_modified >= 1 and r.bytes_downloaded == 0 for r in later)  # incremental

    # Each critical act reached the HTA unit's Slack channel exactly once, and nothing was sent twice.
    assert len(posts_mentioning(slack, HTA_ITEM[0])) == 1
    assert len(posts_mentioning(slack, LATE_ITEM[0])) == 1
    with session_scope(engine) as s:
        rows = list(s.exec(select(Delivery)))
        hta = s.exec(select(Notice).where(Notice.celex == HTA_ITEM[0])).one()
    assert all(r.status == "sent" for r in rows), [(r.status, r.last_error) for r in rows]
    alert_rows = [r for r in rows if r.notice_id == hta.id and r.purpose == "alert"]
    assert {(r.recipient, r.channel) for r in alert_rows} >= {("#veille-deai", "slack")}
    assert len({(r.notice_id, r.recipient, r.channel) for r in rows}) == len(rows)
    # One .eml per message, never a resend (plus a "nothing new" note for the recipient who asked).
    eml = [p.name.rsplit("-", 1)[0] for p in settings.outbox.rglob("*.eml")]
    assert len(eml) == len(set(eml))
    for batch in {r.batch for r in rows if r.channel == "email"}:
        assert batch.replace(":", "_").replace("@", "_") in eml

    # A further cycle and digest run the same day send nothing more.
    before = len(slack.posts)
    summary = run_cycle(engine, settings, sources=["oj"], digests=False)
    assert summary.alerts.sent == 0 and send_digests(engine, settings).sent == 0
    assert len(slack.posts) == before


def _finished(rows: list[CrawlRun]) -> int:
    return sum(r.status != "running" for r in rows)


def _idle(engine, settings, name: str) -> bool:
    nxt = dict(scheduler.next_runs(settings)).get(f"poll:{name}")
    rows = runs(engine, name)
    return nxt is not None and nxt > datetime.now(UTC) and _finished(rows) == len(rows)


def _digests_sent(engine) -> int:
    with session_scope(engine) as s:
        return len(list(s.exec(select(Delivery).where(Delivery.purpose == "digest", Delivery.status == "sent"))))


def test_hanging_and_broken_sources_do_not_stop_the_others(veille_home, peers):
    replay, slack = peers
    replay.add(Route(path="/good.xml", body=feed([NEWS_ITEM]), headers={"Content-Type": "application/rss+xml"}))
    replay.add(Route(path="/hang.xml", fault="hang", hang_seconds=30))
    replay.add(Route(path="/broken.xml", body=b"<rss><channel><item><title>cut", headers={"Content-Type": "text/xml"}))
    sources = "".join(
        [
            source("good", replay.url("/good.xml"), "2s"),
            source("hang", replay.url("/hang.xml"), "2s"),
            source("broken", replay.url("/broken.xml"), "2s"),
        ]
    )
    cfg = write_config(veille_home, replay, slack, sources, digest_in=3600)
    engine = open_archive(load_settings(cfg).database_url)
    thread, stop = start(cfg)
    try:
        wait_for(
            lambda: len(runs(engine, "good")) >= 3 and any(r.status == "failed" for r in runs(engine, "hang")),
            120,
            "good polls while another source hangs",
        )
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert all(r.status == "ok" for r in runs(engine, "good"))
    hang = [r for r in runs(engine, "hang") if r.status != "running"]
    assert hang and all(r.status == "failed" and r.error for r in hang)
    assert all(r.status == "failed" for r in runs(engine, "broken") if r.status != "running")
    # max_instances=1: a run of the hanging source never started before the previous one ended.
    for a, b in zip(hang, hang[1:], strict=False):
        assert b.started_at >= a.finished_at


def test_catch_up_after_downtime_runs_once(veille_home, peers):
    replay, slack = peers
    replay.add(Route(path="/oj.xml", body=feed([NEWS_ITEM]), headers={"Content-Type": "application/rss+xml"}))
    cfg = write_config(veille_home, replay, slack, source("oj", replay.url("/oj.xml"), "10m"), digest_in=3600)
    settings = load_settings(cfg)
    engine = open_archive(settings.database_url)
    thread, stop = start(cfg)
    wait_for(lambda: any(r.status == "ok" for r in runs(engine, "oj")), 60, "the first poll")
    stop.set()
    thread.join(60)

    # The machine is off for 35 minutes: three and a half polls are missed. (The job store is edited
    # directly: a second scheduler doing it would itself process the due job.)
    store = SQLAlchemyJobStore(url=settings.database_url, tablename=scheduler.JOBS_TABLE)
    store.start(scheduler.build_scheduler(settings), "default")  # never started: only lends its timezone
    job = store.lookup_job("poll:oj")
    job._modify(next_run_time=datetime.now(UTC) - timedelta(minutes=35))
    store.update_job(job)
    store.shutdown()

    thread, stop = start(cfg)
    try:
        wait_for(lambda: len(runs(engine, "oj")) >= 2, 60, "the catch-up poll")
        # Nothing is due any more once the catch-up run ended and the job's next run is in the future:
        # a wrongly queued extra run would have started by then.
        wait_for(lambda: _idle(engine, settings, "oj"), 60, "the scheduler to have nothing due")
    finally:
        stop.set()
        thread.join(60)
    assert len(runs(engine, "oj")) == 2  # once, not four times
    nxt = dict(scheduler.next_runs(settings))["poll:oj"]
    assert nxt > datetime.now(UTC)  # the missed runs are not queued up


def test_python_scheduler_without_veille_config_reads_the_home_config(veille_home):
    """``python scheduler.py`` with no VEILLE_CONFIG uses $VEILLE_HOME/veille.toml (it once passed "." as the path)."""
    veille_home.mkdir(parents=True)
    (veille_home / "veille.toml").write_text('profile = "has"\nsources = []\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "VEILLE_CONFIG"}
    env.update(VEILLE_HOME=str(veille_home), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "scheduler.py"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, encoding="utf-8"
    )
    lines: list[str] = []
    try:
        for line in proc.stderr:  # ends when the process exits (an error) or once it logs its start
            lines.append(line)
            if "scheduler started with" in line:
                break
        assert any("scheduler started with 1 jobs" in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
