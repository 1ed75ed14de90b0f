"""Helpers shared by the web tests: a seeded archive, accounts, logged-in clients, a live server."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from core.config import load_settings
from core.records import NoticeRecord
from storage.db import open_archive
from tests.conftest import ROOT
from web.app import create_app
from web.auth import add_user

PASSWORD = "correct horse battery"
XSS_TITLE = "<script>alert(1)</script>"

EXTRA = [
    NoticeRecord(
        source="other",
        external_id="xss-1",
        url="javascript:alert(2)",
        title_en=XSS_TITLE,
        summary_en='Medical devices <img src=x onerror="alert(3)"> & "quotes"',
        doc_type="news",
        kind="news",
        published_at=datetime(2025, 5, 2, tzinfo=UTC),
    ),
    NoticeRecord(
        source="eurlex-rss",
        external_id="impl-hta-1",
        celex="32024R9999",
        title_en="Implementing Regulation laying down rules for the application of Regulation (EU) 2021/2282",
        summary_en="Procedural rules for joint clinical assessments of medicinal products.",
        related_acts=["32021R2282"],
        procedure="2024/0001(NLE)",
        doc_type="REG",
        kind="act",
        published_at=datetime(2025, 3, 3, tzinfo=UTC),
    ),
    NoticeRecord(
        source="eurlex-rss",
        external_id="hta-reg",
        celex="32021R2282",
        title_en="Regulation (EU) 2021/2282 on health technology assessment",
        doc_type="REG",
        kind="act",
        published_at=datetime(2021, 12, 22, tzinfo=UTC),
    ),
]


def seed_small(engine, limit: int = 80, settings=None) -> dict[str, int]:
    from tests.web_seed import seed

    ids = seed(engine, limit, extra=EXTRA, settings=settings)
    ids.update({"xss": ids["xss-1"], "impl": ids["impl-hta-1"], "hta": ids["hta-reg"]})
    add_user(engine, "alice", "analyst", PASSWORD)
    add_user(engine, "rita", "reader", PASSWORD)
    return ids


def seeded_archive_file(folder: Path, limit: int | None = 80) -> tuple[Path, dict[str, int]]:
    """Seed a SQLite archive file once (for a module); tests take copies with :func:`copy_archive`."""
    path = folder / "archive.db"
    engine = open_archive(f"sqlite:///{path}")
    with pytest.MonkeyPatch.context() as mp:  # a module fixture runs before the per-test home is set
        mp.setenv("VEILLE_HOME", str(folder / "seed-home"))
        for var in ("VEILLE_CONFIG", "VEILLE_DATABASE_URL", "VEILLE_PROFILE"):
            mp.delenv(var, raising=False)
        ids = seed_small(engine, limit, load_settings())
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path, ids


def copy_archive(seeded: tuple[Path, dict[str, int]], folder: Path):  # Engine, ids
    path, ids = seeded
    copy = folder / "archive.db"
    shutil.copyfile(path, copy)
    return open_archive(f"sqlite:///{copy}"), ids


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "page has no CSRF field"
    return m.group(1)


def client(engine, settings=None, lang: str = "en") -> TestClient:
    """A client of the app; these tests read the English catalogue unless ``lang`` says otherwise."""
    headers = {"Accept-Language": lang} if lang else {}
    return TestClient(create_app(settings or load_settings(), engine), follow_redirects=False, headers=headers)


def login(c: TestClient, name: str) -> TestClient:
    page = c.get("/login")
    r = c.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/"})
    assert r.status_code == 303, r.text
    return c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_veille_serve(env: dict[str, str], log: Path, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """``veille serve`` in its own process on 127.0.0.1 and a free port, its output in ``log``; returns the
    process and its base URL once it answers. The port is free when chosen, but another process (a second
    test run) may take it before the server binds it: then another port is tried."""
    for attempt in range(10):
        port = free_port()
        cmd = [sys.executable, "-m", "veille", "serve", "--host", "127.0.0.1", "--port", str(port)]
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/login", timeout=2)
                return proc, base
            except httpx.TransportError:
                time.sleep(0.1)
        taken = proc.poll() is not None and "address already in use" in log.read_text(errors="replace").lower()
        if not taken or attempt == 9:
            proc.kill()
            raise AssertionError(f"veille serve did not start: {log.read_text(errors='replace')[-2000:]}")
    raise AssertionError("unreachable")


@contextmanager
def live_server(app) -> Iterator[str]:
    """uvicorn in a background thread on 127.0.0.1 and a free port; yields the base URL. The socket is bound
    here and handed to uvicorn: no other process can take the port in between (parallel test runs)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
