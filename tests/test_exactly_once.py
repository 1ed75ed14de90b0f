"""Exactly once across processes: two ``veille run`` at once, a run beside the scheduler's jobs, and two
senders racing on the same outbox rows, against the real SMTP server (aiosmtpd) and the Slack API server.

The SMTP peer is a *gate*: it holds every session at ``RCPT TO`` (before the outbox's hand-over) until the
test opens it, so a second process really runs while the first one is in the middle of sending. Messages
are counted at the peers: each alert, reminder and digest exactly once, each e-mail's Message-ID once.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from alerts.email import message_id
from crawlers.replay.server import ReplayServer
from storage.db import open_archive, session_scope
from storage.models import CrawlRun, Delivery
from tests.alerts_support import Inbox, SlackServer, start_smtp
from tests.hardening_support import (
    ROOT,
    Peers,
    corpus,
    deliveries,
    delivery_keys,
    received,
    veille_cmd,
    veille_env,
    write_run_config,
)

DEADLINE = 240.0  # seconds: generous bound for a real `veille run` (Scrapy child, spaCy) on 2 busy cores
SENDER_DOMAIN = "has-sante.fr"  # smtp.sender's default domain (veille@has-sante.fr)


class GateInbox(Inbox):
    """An SMTP server that holds each session at RCPT TO until :attr:`gate` is set (then stays open)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.held = 0  # sessions that reached RCPT TO while the gate was closed

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.gate.is_set():
            self.held += 1
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, DEADLINE)
        envelope.rcpt_tos.append(address)
        return "250 OK"


@contextmanager
def gated_peers():
    inbox = GateInbox()
    ctl = start_smtp(inbox)
    try:
        with SlackServer() as slack:
            yield Peers(inbox, ctl.port, slack)
    finally:
        inbox.gate.set()
        ctl.stop()


def wait_for(cond, what: str, timeout: float = DEADLINE) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def config(home: Path, base_url: str, p: Peers, sources: list[dict], extra: str = "") -> Path:
    cfg = write_run_config(home, base_url, p, sources, extra=extra)
    # The gate holds sessions for seconds: the SMTP client must not time out meanwhile.
    text = cfg.read_text(encoding="utf-8").replace("starttls = false\ntimeout = 10", "starttls = false\ntimeout = 300")
    cfg.write_text(text, encoding="utf-8")
    return cfg


def start(cmd: list[str], home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=ROOT, env=veille_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def job_cmd(cfg: Path, call: str) -> list[str]:
    """The scheduler's job function, in its own process (as the scheduler's worker runs it)."""
    code = (
        "import logging, sys; import scheduler; "
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s'); "
        f"scheduler.{call}"
    )
    return [sys.executable, "-c", code, str(cfg)]


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=DEADLINE)
    return proc.returncode, out, err


def second_process_done(proc: subprocess.Popen, inbox: GateInbox, held_before: int) -> bool:
    """The second process exited, or (without a lock) got as far as the SMTP peer too."""
    return proc.poll() is not None or inbox.held > held_before


def assert_each_once(engine, p: Peers) -> None:
    rows = deliveries(engine)
    assert rows and {r.status for r in rows} == {"sent"}, [(r.batch, r.status, r.last_error) for r in rows]
    keys, got = delivery_keys(engine), received(p)
    twice = {k: n for k, n in got.items() if n != 1}
    assert not twice, f"delivered more than once: {twice}"
    assert set(got) == set(keys)
    ids = Counter(m["Message-ID"] for m in p.inbox.messages())
    assert set(ids.values()) == {1}, ids.most_common(3)
    # Each e-mail is one outbox batch, or the "nothing new" note (no notice, so no row), once a day.
    batches = Counter(m["X-Veille-Batch"] for m in p.inbox.messages())
    notes = {m["X-Veille-Batch"] for m in p.inbox.messages() if m["Subject"].endswith("rien de nouveau")}
    assert set(batches.values()) == {1}
    assert set(batches) - notes == {r.batch for r in rows if r.channel == "email"}
    assert set(ids) == {message_id(b, SENDER_DOMAIN) for b in batches}


def critical_alerts(engine, p: Peers) -> Counter:
    """(To, CELEX of the notice) of the alert e-mails the peer received."""
    from storage.models import Notice

    with session_scope(engine) as s:
        celex = {n.id: n.celex for n in s.exec(select(Notice))}
    return Counter(
        (m["To"], celex[int(m["X-Veille-Batch"].split(":")[1])])
        for m in p.inbox.messages()
        if m["X-Veille-Batch"].startswith("alert:")
    )


# --- two `veille run` at once ------------------------------------------------------------------------------


def test_second_run_exits_75_while_the_first_sends_and_a_waiting_run_follows(tmp_path):
    c = corpus()
    home = tmp_path / "home"
    with ReplayServer(c.routes) as srv, gated_peers() as p:
        cfg = config(home, srv.base_url, p, c.sources)
        first = start(veille_cmd(cfg, "run", "--all"), home)
        wait_for(lambda: p.inbox.held >= 1 or first.poll() is not None, "the first run at the SMTP peer")
        assert first.poll() is None, finish(first)
        second = start(veille_cmd(cfg, "run", "--all"), home)
        wait_for(lambda: second_process_done(second, p.inbox, 1), "the second run to exit or send")
        third = start(veille_cmd(cfg, "run", "--all", "--wait", str(DEADLINE)), home)
        p.inbox.gate.set()
        code1, out1, err1 = finish(first)
        code2, out2, err2 = finish(second)
        code3, out3, err3 = finish(third)
        engine = open_archive(f"sqlite:///{home / 'veille.db'}")
        assert_each_once(engine, p)
        assert code1 == 0, out1[-2000:] + err1[-2000:]
        # One line, in French first, and nothing done (no crawl run of its own).
        assert code2 == 75, out2[-2000:] + err2[-2000:]
        assert out2.strip() == ""  # (a transient progress bar leaves a newline)
        assert err2.strip().splitlines() == [
            f"une exécution est déjà en cours sur l'archive {home / 'veille.db'}.lock ; rien n'a été fait"
        ]
        assert code3 == 0, out3[-2000:] + err3[-2000:]
        with session_scope(engine) as s:
            runs = list(s.exec(select(CrawlRun).order_by(CrawlRun.id)))
            last_sent = max(r.sent_at for r in s.exec(select(Delivery)))
        # Two runs of 3 sources: the first's and the waiting one's, which started after the first had sent.
        assert Counter(r.source for r in runs) == {s["name"]: 2 for s in c.sources}
        assert all(r.status == "ok" for r in runs)
        assert min(r.started_at for r in runs[3:]) > last_sent
        alerts = critical_alerts(engine, p)
        assert alerts[("veille-deai@has-sante.fr", "32026R0101")] == 1
        assert alerts[("veille-deai@has-sante.fr", "32026R0103")] == 1
        assert {m["X-Veille-Batch"].split(":")[0] for m in p.inbox.messages()} == {"alert", "digest"}
        engine.dispose()


# --- a run beside the scheduler's jobs -----------------------------------------------------------------------


def test_run_beside_the_scheduler_jobs(tmp_path):
    c = corpus()
    home = tmp_path / "home"
    with ReplayServer(c.routes) as srv, gated_peers() as p:
        cfg = config(home, srv.base_url, p, c.sources, extra='misfire_grace = "4m"')
        job = start(job_cmd(cfg, "poll_source('eurlex-oj', sys.argv[1])"), home)  # alerts of the critical acts
        wait_for(lambda: p.inbox.held >= 1 or job.poll() is not None, "the scheduler's poll at the SMTP peer")
        assert job.poll() is None, finish(job)
        run = start(veille_cmd(cfg, "run", "--all"), home)
        wait_for(lambda: second_process_done(run, p.inbox, 1), "the manual run to exit or send")
        held = p.inbox.held
        poll = start(job_cmd(cfg, "poll_source('sante-news', sys.argv[1])"), home)
        wait_for(lambda: second_process_done(poll, p.inbox, held), "the second poll to skip or send")
        digest = start(job_cmd(cfg, "send_digests_job(sys.argv[1])"), home)  # waits for the lock (misfire grace)
        p.inbox.gate.set()
        results = {name: finish(proc) for name, proc in (("job", job), ("run", run), ("poll", poll))}
        code, out, err = finish(digest)
        engine = open_archive(f"sqlite:///{home / 'veille.db'}")
        assert_each_once(engine, p)
        assert results["job"][0] == 0, results["job"]
        assert results["run"][0] == 75, results["run"]
        assert "une exécution est déjà en cours" in results["run"][2]
        assert results["poll"][0] == 0, results["poll"]
        assert (
            "WARNING veille.scheduler: poll of sante-news skipped: une exécution est déjà en cours"
            in (results["poll"][2])
        )
        assert code == 0 and "INFO veille.scheduler: digests:" in err, err[-2000:]
        with session_scope(engine) as s:
            assert [r.source for r in s.exec(select(CrawlRun))] == ["eurlex-oj"]  # the others did nothing
        alerts = critical_alerts(engine, p)
        assert alerts[("veille-deai@has-sante.fr", "32026R0102")] == 1
        assert alerts[("mission-numerique@has-sante.fr", "32026R0104")] == 1
        digests = [m for m in p.inbox.messages() if m["X-Veille-Batch"].startswith("digest:")]
        assert digests and len({m["To"] for m in digests}) == len(digests)  # one digest per recipient
        engine.dispose()


@pytest.mark.postgres
def test_second_run_on_postgres_exits_75_by_the_advisory_lock(tmp_path, pg_server):
    url = pg_server.create_db("exactly_once")
    c = corpus()
    home = tmp_path / "home"
    with ReplayServer(c.routes) as srv, gated_peers() as p:
        cfg = config(home, srv.base_url, p, c.sources, extra=f'[storage]\nurl = "{url}"')
        first = start(veille_cmd(cfg, "run", "--all"), home)
        wait_for(lambda: p.inbox.held >= 1 or first.poll() is not None, "the first run at the SMTP peer")
        assert first.poll() is None, finish(first)
        second = start(veille_cmd(cfg, "run", "--all"), home)
        wait_for(lambda: second_process_done(second, p.inbox, 1), "the second run to exit or send")
        p.inbox.gate.set()
        code1, out1, err1 = finish(first)
        code2, out2, err2 = finish(second)
        engine = open_archive(url)
        assert_each_once(engine, p)
        assert code1 == 0, out1[-2000:] + err1[-2000:]
        assert code2 == 75, out2[-2000:] + err2[-2000:]
        assert err2.strip().splitlines() == [f"une exécution est déjà en cours sur l'archive {url} ; rien n'a été fait"]
        assert not (home / "veille.db").exists() and not (home / "veille.db.lock").exists()
        assert critical_alerts(engine, p)[("veille-deai@has-sante.fr", "32026R0101")] == 1
        engine.dispose()


# --- the atomic claim alone (no lock): two senders on the same rows -------------------------------------------


RACE = """
import sys
from datetime import datetime, UTC
from alerts import send_alerts
from alerts.reminders import send_reminders
from storage.db import open_archive
from core.config import load_settings

settings = load_settings(sys.argv[1])
engine = open_archive(settings.database_url)
now = datetime.fromisoformat(sys.argv[2])
a, r = send_alerts(engine, settings, now=now), send_reminders(engine, settings, now=now)
print(f"alerts sent {a.sent} failed {a.failed} uncertain {a.uncertain}; "
      f"reminders sent {r.sent} failed {r.failed} uncertain {r.uncertain}")
for note in a.notes + r.notes:
    print("note:", note)
"""


def test_two_senders_racing_on_the_same_rows_send_each_once(tmp_path):
    from core.records import NoticeRecord
    from storage.ingest import ingest
    from tests.alerts_support import add_notice, classify_as

    home = tmp_path / "home"
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday; the consultation closes Wednesday 9
    with gated_peers() as p:
        cfg = config(home, "http://127.0.0.1:9", p, [])
        engine = open_archive(f"sqlite:///{home / 'veille.db'}")
        ehds = add_notice(
            engine,
            "32026R0100",
            celex="32026R0100",
            title_fr="Règlement d'exécution relatif au format européen d'échange des dossiers médicaux",
            legal_basis=["32025R0327"],
            published_at=now - timedelta(hours=2),
        )
        classify_as(engine, ehds, "numerique")
        hys = NoticeRecord(
            source="hys",
            external_id="14567",
            url="https://ec.europa.eu/info/law/better-regulation/have-your-say/initiatives/14567_en",
            title_en="European Health Data Space: secondary use of electronic health data",
            kind="consultation",
            opens=date(2026, 11, 1),
            deadline=date(2026, 12, 9),
        )
        consult = ingest(engine, [hys]).changed_ids[0]
        classify_as(engine, consult, "numerique")
        # The two senders never take the archive lock: only the compare-and-set claim separates them.
        procs = [start([sys.executable, "-c", RACE, str(cfg), now.isoformat()], home) for _ in range(2)]
        wait_for(lambda: p.inbox.held >= 2, "both senders at RCPT TO of the same first message")
        p.inbox.gate.set()
        outs = [finish(proc) for proc in procs]
        assert all(code == 0 for code, _, _ in outs), outs
        with session_scope(engine) as s:
            rows = list(s.exec(select(Delivery).order_by(Delivery.id)))
        assert {(r.notice_id, r.recipient, r.channel, r.purpose, r.status) for r in rows} == {
            (ehds, "mission-numerique@has-sante.fr", "email", "alert", "sent"),
            (ehds, "#veille-numerique", "slack", "alert", "sent"),
            (consult, "mission-numerique@has-sante.fr", "email", "reminder-3@2026-12-09", "sent"),
            (consult, "#veille-numerique", "slack", "reminder-3@2026-12-09", "sent"),
        }
        got = Counter(m["Message-ID"] for m in p.inbox.messages())
        assert got == Counter(
            {message_id(f"alert:{ehds}:email:mission-numerique@has-sante.fr", SENDER_DOMAIN): 1}
            | {message_id(f"reminder-3@2026-12-09:{consult}:email:mission-numerique@has-sante.fr", SENDER_DOMAIN): 1}
        )
        posts = Counter(post["channel"] for post in p.slack.posts)
        assert posts == Counter({"#veille-numerique": 2})  # the alert and the reminder, once each
        sent = sum(int(out.split("alerts sent ")[1].split()[0]) for _, out, _ in outs)
        assert sent == 2  # the two alert rows were counted sent by exactly one of the processes
        # The one that lost the held message's claim said so, in French (`veille run` prints the notes).
        rcpt = r"(email:mission-numerique@has-sante\.fr|slack:#veille-numerique)"
        batches = rf"(alert:{ehds}|reminder-3@2026-12-09:{consult}):{rcpt}"
        lost = re.compile(rf"note: {batches} : pris par un autre processus \(0 lignes libres sur 1\)")
        notes = [line for _, out, _ in outs for line in out.splitlines() if line.startswith("note:")]
        assert notes and all(lost.fullmatch(n) for n in notes), outs
        engine.dispose()
