"""Secrets never leak: ``veille run`` with an SMTP password and a Slack token set (distinctive values), with
DEBUG logging, against a real SMTP server requiring login and a server speaking the Slack API; then a
refused SMTP login and a Slack outage. Everything a person or a log collector could see is scanned for the
secrets (also base64-encoded, as SMTP AUTH sends them): stdout and stderr of every command, the logs, the
error messages stored in the outbox, every file under $VEILLE_HOME (archive, WAL, outbox, HTTP cache) and
a dump of the database. The crawl child, which parses untrusted content, does not even receive them.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult

from crawlers.replay.server import ReplayServer
from storage.db import open_archive
from tests.hardening_support import (
    CRITICAL,
    ROOT,
    corpus,
    deliveries,
    more_critical,
    peers,
    veille_env,
    write_run_config,
)

PASSWORD = "smtp-Pw-7f3c1d9e-SECRET"
WRONG = "smtp-Wrong-2b8a44c0-SECRET"
TOKEN = "xoxb-4242-SlackTok-9e71c0de-SECRET"
# Root logger at DEBUG for the real CLI (slack_sdk, urllib3, alembic, sqlalchemy... all log through it).
DEBUG_CLI = (
    "import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr); "
    "from veille.main import app; app()"
)


def forms(secret: str) -> list[bytes]:
    """The secret as it could appear: plain, and base64 as in SMTP AUTH PLAIN/LOGIN."""
    raw = secret.encode()
    plain, login = base64.b64encode(b"\0veille\0" + raw), base64.b64encode(b"veille\0veille\0" + raw)
    return [raw, base64.b64encode(raw), plain, login]


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"veille" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def cli(cfg: Path, home: Path, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
    env = veille_env(home, VEILLE_SMTP_PASSWORD=password, VEILLE_SLACK_TOKEN=TOKEN)
    return subprocess.run(
        [sys.executable, "-c", DEBUG_CLI, "--config", str(cfg), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=240,
    )


class ChildEnvWatch(threading.Thread):
    """Reads /proc/<pid>/environ of every crawl child that appears while it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.environs: list[bytes] = []
        self.stop = threading.Event()

    def run(self) -> None:
        seen: set[str] = set()
        while not self.stop.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit() or proc.name in seen:
                    continue
                try:
                    if b"crawlers.child" in (proc / "cmdline").read_bytes():
                        self.environs.append((proc / "environ").read_bytes())
                        seen.add(proc.name)
                except OSError:
                    continue
            time.sleep(0.05)


def test_no_secret_in_logs_errors_outbox_or_archive(tmp_path):
    home = tmp_path / "home"
    c = corpus(n_acts=10, n_news=8)
    outputs: list[bytes] = []
    watch = ChildEnvWatch()
    with ReplayServer(c.routes) as srv, peers(authenticator=authenticator) as p:
        cfg = write_run_config(home, srv.base_url, p, c.sources, smtp='user = "veille"')
        engine = open_archive(f"sqlite:///{home / 'veille.db'}")
        watch.start()

        # 1. Everything works: the secrets are used (login accepted, token sent), never shown.
        ok = cli(cfg, home, "run", "--all")
        outputs += [ok.stdout, ok.stderr]
        assert ok.returncode == 0, ok.stderr[-3000:]
        assert b"DEBUG" in ok.stderr  # the logs were really at DEBUG
        assert p.inbox.envelopes and all(post["auth"] == f"Bearer {TOKEN}" for post in p.slack.posts)
        n_mail, n_posts = len(p.inbox.envelopes), len(p.slack.posts)

        # 2. A refused login and a Slack outage (500 on every try): failed deliveries, with their errors.
        c2 = corpus(n_acts=10, n_news=8, critical=CRITICAL + more_critical(2))  # new critical acts: new alerts
        for route in c2.routes:
            srv.add(route)
        p.slack.scripts["/api/"] = [(500, {})] * 20
        bad = cli(cfg, home, "run", "--all", password=WRONG)
        outputs += [bad.stdout, bad.stderr]
        assert bad.returncode == 1, bad.stderr[-3000:]
        failed = [d for d in deliveries(engine) if d.status == "failed"]
        errors = " ".join(d.last_error or "" for d in failed)
        assert "connexion SMTP refusée (535)" in errors and "l'API Slack 500 : internal_error" in errors, errors
        assert len(p.inbox.envelopes) == n_mail and len(p.slack.posts) == n_posts  # nothing got through

        # 3. The commands a person runs to look at it.
        for args in (["deliveries", "--failed"], ["status"], ["config"], ["digest", "--dry-run"]):
            r = cli(cfg, home, *args, password=WRONG)
            outputs += [r.stdout, r.stderr]
            assert r.returncode == 0, (args, r.stderr[-2000:])
        watch.stop.set()
        watch.join(5)

    engine.dispose()
    with sqlite3.connect(home / "veille.db") as conn:
        outputs.append("\n".join(conn.iterdump()).encode())
    files = [f for f in home.rglob("*") if f.is_file()]
    assert any(f.suffix == ".db" for f in files) and any("httpcache" in f.parts for f in files)
    outputs += [f.read_bytes() for f in files]
    for secret in (PASSWORD, WRONG, TOKEN):
        for form in forms(secret):
            assert not any(form in out for out in outputs), f"{secret} found ({form!r})"
    # The crawl child parses hostile content: it runs without the secrets in its environment.
    assert watch.environs, "no crawl child was seen"
    for env in watch.environs:
        assert b"VEILLE_SMTP_PASSWORD" not in env and b"VEILLE_SLACK_TOKEN" not in env
        assert not any(form in env for s in (PASSWORD, WRONG, TOKEN) for form in forms(s))
    assert os.environ.get("VEILLE_SMTP_PASSWORD") is None  # the test process itself was never given them


def test_unreachable_database_is_one_line_without_its_password(tmp_path):
    """A PostgreSQL archive that cannot be reached: one line naming it, its password hidden, even in DEBUG logs."""
    from tests.alerts_support import free_port

    db_password = "pg-Pw-5d1e9a7b-SECRET"
    url = f"postgresql+psycopg://veille:{db_password}@127.0.0.1:{free_port()}/veille"  # nothing listens there
    cfg = tmp_path / "veille.toml"
    cfg.write_text('profile = "has"\n', encoding="utf-8")
    for args in (["status"], ["search", "santé"], ["db", "upgrade"]):
        res = subprocess.run(
            [sys.executable, "-c", DEBUG_CLI, "--config", str(cfg), *args],
            cwd=ROOT,
            env=veille_env(tmp_path, VEILLE_DATABASE_URL=url),
            capture_output=True,
            timeout=120,
        )
        out = (res.stdout + res.stderr).decode()
        assert res.returncode == 2, (args, out[-2000:])
        assert "erreur : archive postgresql+psycopg://veille:***@127.0.0.1" in out and "ouverture impossible" in out
        assert "Traceback" not in out and db_password not in out


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/veille/veille.db",
        "postgresql+psycopg://veille:s3cr%40t@db.example:5432/veille",
        "postgresql+psycopg://veille@db.example/veille",
        "postgresql+psycopg://veille:pw@db.example/veille?sslmode=require",
    ],
)
def test_the_printed_database_url_hides_the_password_as_sqlalchemy_does(url):
    """`veille config` prints the URL without loading SQLAlchemy: its rendering must agree with SQLAlchemy's."""
    from sqlalchemy.engine import make_url

    from storage.urls import display_url

    assert display_url(url) == make_url(url).render_as_string(hide_password=True)
    assert "s3cr" not in display_url(url) and ":pw@" not in display_url(url)
