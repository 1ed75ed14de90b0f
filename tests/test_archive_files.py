"""The archive file itself: a broken ``veille.db`` is refused in one line and left untouched; a run killed
mid-crawl is closed as failed by the next run and shown by ``veille status``; a new archive, its lock and
the outbox files are readable by their owner only."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from crawlers.replay.server import ReplayServer, Route
from storage.db import open_archive, session_scope
from storage.models import CrawlRun, Source
from tests.hardening_support import ROOT, run_veille, veille_cmd, veille_env
from tests.test_scheduler import HTA_ITEM, NEWS_ITEM, feed, source

RSS = {"Content-Type": "application/rss+xml"}
NO_SLACK = ""  # an empty VEILLE_SLACK_TOKEN is no token: Slack messages go to the outbox folder


def veille(cfg: Path, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_veille(cfg, home, *args, VEILLE_SLACK_TOKEN=NO_SLACK, **env)


def write_config(home: Path, replay: ReplayServer, extra_sources: str = "") -> Path:
    """Two sources on the replay server; no SMTP/Slack: messages go to the outbox folder."""
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "veille.toml"
    cfg.write_text(
        '[crawl]\ndownload_delay = 0\nretries = 0\ntimeout = 30\n[schedule]\ndigest_time = "00:00"\n'
        'digest_days = "every"\n' + source("oj", replay.url("/oj.xml"), "1h") + extra_sources,
        encoding="utf-8",
    )
    return cfg


@pytest.fixture
def replay():
    with ReplayServer() as server:
        server.add(Route(path="/oj.xml", body=feed([HTA_ITEM, NEWS_ITEM]), headers=RSS))
        yield server


# --- a broken archive file ----------------------------------------------------------------------------------


def filled_archive(home: Path, replay: ReplayServer) -> Path:
    """A real archive written by `veille run` (checkpointed: the process closed it)."""
    cfg = write_config(home, replay)
    done = veille(cfg, home, "run")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not (home / "veille.db-wal").exists()
    return cfg


def truncate(db: Path) -> str:
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.truncate(size // 2)
    return f"le fichier est tronqué ({size // 2} octets ; son en-tête en annonce {size})"


def empty(db: Path) -> str:
    db.write_bytes(b"")
    return "le fichier est vide (0 octet)"


def garbage(db: Path) -> str:
    db.write_bytes(b"<html><body>502 Bad Gateway</body></html>\n" * 200)  # a bad download over the archive
    return "le fichier n'est pas une base SQLite (contenu étranger ou en-tête tronqué)"


@pytest.mark.parametrize("damage", [empty, garbage, truncate], ids=["zero-length", "garbage", "truncated"])
def test_broken_archive_is_refused_in_one_line_and_left_untouched(tmp_path, replay, damage):
    home = tmp_path / "home"
    cfg = filled_archive(home, replay)
    db = home / "veille.db"
    why = damage(db)
    before = db.read_bytes()
    outbox = sorted(p.name for p in (home / "outbox").rglob("*"))
    for command in (["run"], ["status"], ["digest", "--send"]):
        done = veille(cfg, home, *command)
        assert done.returncode == 2, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert done.stdout.strip() == "", command
        refused = f"erreur : archive {db} : {why} ; ouverture refusée (fichier laissé intact)"
        assert done.stderr.splitlines() == [refused]
        assert db.read_bytes() == before, command
        assert not (home / "veille.db-wal").exists() and not (home / "veille.db-shm").exists()
    # No "rien de nouveau" or any other message went out from an empty archive.
    assert sorted(p.name for p in (home / "outbox").rglob("*")) == outbox


# --- a run killed mid-crawl -----------------------------------------------------------------------------------


def running_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return conn.execute("SELECT count(*) FROM crawl_run WHERE status = 'running'").fetchone()[0]
        except sqlite3.OperationalError:  # schema not created yet
            return 0


def test_run_killed_mid_crawl_is_closed_as_failed_by_the_next_run(tmp_path, replay):
    home = tmp_path / "home"
    hang = replay.add(Route(path="/slow.xml", fault="hang", hang_seconds=120))
    cfg = write_config(home, replay, source("slow", replay.url("/slow.xml"), "1h"))
    db = home / "veille.db"
    proc = subprocess.Popen(
        veille_cmd(cfg, "run", "--all"),
        cwd=ROOT,
        env=veille_env(home, VEILLE_SLACK_TOKEN=NO_SLACK),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 120
        # Both runs recorded "running", and the crawl reached the hanging source (it is mid-crawl).
        while not (running_rows(db) == 2 and replay.requests_for("/slow.xml")):
            assert proc.poll() is None and time.monotonic() < end, "the run ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its crawl child, as a power cut would
        proc.wait(30)
    assert running_rows(db) == 2
    killed_at = datetime.now(UTC)

    replay.remove(hang)
    replay.add(Route(path="/slow.xml", body=feed([]), headers=RSS))
    done = veille(cfg, home, "run", "--source", "oj")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "source oj : un relevé laissé inachevé par un processus arrêté a été clos en échec" in done.stdout
    assert "source slow : un relevé laissé inachevé par un processus arrêté a été clos en échec" in done.stdout

    engine = open_archive(f"sqlite:///{db}")
    with session_scope(engine) as s:
        runs = [(r.source, r.status, r.error) for r in s.exec(select(CrawlRun).order_by(CrawlRun.id))]
        slow = s.get(Source, "slow")
    abandoned = (
        "interrompu : le processus s'est arrêté avant la fin de la collecte (interrupted: the process stopped mid-run)"
    )
    assert sorted(runs[:2]) == [("oj", "failed", abandoned), ("slow", "failed", abandoned)]
    assert runs[2:] == [("oj", "ok", None)]
    assert slow.last_error == abandoned and slow.last_failure.replace(tzinfo=UTC) < killed_at
    status = veille(cfg, home, "status", COLUMNS="250")
    assert status.returncode == 0, status.stderr
    line = next(row for row in status.stdout.splitlines() if "│ slow" in row)
    shown = slow.last_failure.replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))  # times shown in Paris
    assert "interrompu : le processus s'est arrêté" in line and shown.strftime("%Y-%m-%d %H:%M") in line
    engine.dispose()


# --- file modes -----------------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_archive_lock_and_outbox_are_owner_only(tmp_path, replay):
    old = os.umask(0o022)  # the usual umask: the modes must not depend on the user's own
    try:
        home = tmp_path / "fresh" / "home"  # does not exist yet: veille creates it
        cfg_dir = tmp_path / "cfg"
        cfg_dir.mkdir()
        cfg = write_config(cfg_dir, replay)
        proc = subprocess.Popen(
            veille_cmd(cfg, "run"),
            cwd=ROOT,
            env=veille_env(home, VEILLE_SLACK_TOKEN=NO_SLACK),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
        assert mode(home) == 0o700
        assert mode(home / "veille.db") == 0o600
        assert mode(home / "veille.db.lock") == 0o600
        files = [p for p in (home / "outbox").rglob("*") if p.is_file()]
        assert {p.suffix for p in files} == {".eml", ".json"}  # the alert and the digest, as files
        assert {mode(p) for p in files} == {0o600}
        assert {mode(p) for p in (home / "outbox").rglob("*") if p.is_dir()} | {mode(home / "outbox")} == {0o700}
        # While the archive is open, SQLite's -wal and -shm files take the database's mode.
        engine = open_archive(f"sqlite:///{home / 'veille.db'}")
        with session_scope(engine, write=True) as s:
            s.add(Source(name="probe", kind="rss"))
        assert mode(home / "veille.db-wal") == 0o600 and mode(home / "veille.db-shm") == 0o600
        engine.dispose()
    finally:
        os.umask(old)


def test_archives_created_at_the_same_moment_are_never_seen_half_made(tmp_path):
    """Many openers of a new archive at once: each sees no file or a whole one, none refuses it as empty."""
    import threading

    from storage.db import make_engine

    db = tmp_path / "new" / "veille.db"
    barrier, errors = threading.Barrier(12), []

    def open_it() -> None:
        barrier.wait()
        try:
            make_engine(f"sqlite:///{db}").dispose()
        except Exception as exc:  # collected and shown by the assertion
            errors.append(repr(exc))

    threads = [threading.Thread(target=open_it) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(p.name for p in db.parent.iterdir()) == ["veille.db"]
    assert mode(db) == 0o600 and db.read_bytes().startswith(b"SQLite format 3\x00")
