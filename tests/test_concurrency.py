"""The web workbench (uvicorn on 127.0.0.1, in a thread) answers 20 concurrent searches, and analysts'
feedback, while ``veille run`` (a real subprocess) crawls, ingests and classifies a few thousand notices
into the same archive: no request fails, no "database is locked" reaches a user. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import func, select

from core.config import load_settings
from crawlers.replay.server import ReplayServer
from storage.db import open_archive, session_scope
from storage.models import Feedback, Notice
from tests.hardening_support import ROOT, bulk_routes, peers, veille_cmd, veille_env, write_run_config
from tests.web_helpers import PASSWORD, csrf_of, live_server, seed_small
from web.app import create_app

QUERIES = [
    {"q": "dispositifs médicaux"},
    {"q": "health technology assessment", "sort": "date"},
    {"q": "medical devices", "label": "deai"},
    {"q": "santé publique"},
    {"q": '"joint clinical"'},
    {"q": "regulation -veterinary"},
    {"q": "", "source": "bulk-0"},
    {"q": "data OR données", "year": "2025"},
    {"q": "cancer", "page": "2"},
    {"q": "artificial intelligence"},
]


def login(base: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
    page = c.get("/login")
    r = c.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/"})
    assert r.status_code == 303, r.text
    return c


def feedback(c: httpx.Client, notice_id: int, n: int) -> httpx.Response:
    page = c.get(f"/notice/{notice_id}")
    assert page.status_code == 200, page.text[-500:]
    form = {
        "label": "deai",
        "verdict": "right" if n % 2 else "wrong",
        "comment": f"round {n}",
        "csrf_token": csrf_of(page.text),
    }
    return c.post(f"/notice/{notice_id}/feedback", data=form)


def check(r: httpx.Response, expected: int) -> str | None:
    if r.status_code != expected or re.search(r"(?i)database is locked|OperationalError|Internal Server Error", r.text):
        return f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:300]}"
    return None


def ingest_while_searching(tmp_path, home, db_url: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    engine = open_archive(db_url)
    ids = seed_small(engine, 60)  # some notices, a reader and an analyst
    seeded = _count(engine)
    routes, sources = bulk_routes(3, 250)
    with ReplayServer(routes) as srv, peers() as p:
        # No digest in this run (its time is not reached): the point is the ingest and the classification.
        extra = f'[storage]\nurl = "{db_url}"\n'
        cfg = write_run_config(home, srv.base_url, p, sources, extra=extra, digest_time="23:59:59")
        settings = load_settings(cfg)
        app = create_app(settings, engine)
        with live_server(app) as base:
            reader, analyst = login(base, "rita"), login(base, "alice")
            run = subprocess.Popen(veille_cmd(cfg, "run", "--all"), cwd=ROOT, env=veille_env(home),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
            errors, rounds, during_ingest = [], 0, 0
            with ThreadPoolExecutor(max_workers=22) as pool:
                while run.poll() is None or rounds < 2:
                    futures = [pool.submit(reader.get, "/", params=QUERIES[i % len(QUERIES)]) for i in range(20)]
                    futures += [pool.submit(feedback, analyst, ids["impl"], rounds * 2 + k) for k in range(2)]
                    results = [f.result() for f in futures]
                    errors += [e for e in (check(r, 200) for r in results[:20]) if e]
                    errors += [e for e in (check(r, 303) for r in results[20:]) if e]
                    rounds += 1
                    # the run was storing or classifying (its first batch had landed, it had not finished)
                    during_ingest += run.poll() is None and _count(engine) > seeded
                    time.sleep(0.4)  # a burst of 20 users, then the run gets the CPU back (2 cores)
            out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out[-2000:] + err[-2000:]
    assert not errors, errors[:5]
    assert during_ingest >= 2, "searches did not overlap the ingest and classification"
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(Notice)).one() >= 750
        # One analyst's verdict on (notice, label) is one row, updated by each write: the last round's is kept.
        [kept] = s.exec(select(Feedback)).all()
        assert kept.comment in {f"round {2 * (rounds - 1) + k}" for k in range(2)}, kept.comment
    print(f"\nconcurrency ({engine.dialect.name}): {rounds} rounds of 20 searches + 2 feedback writes, "
          f"{during_ingest} while the run was storing or classifying; no error")  # fmt: skip


def _count(engine) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(Notice)).one()


def test_searches_during_ingest_on_sqlite(tmp_path, veille_home):
    ingest_while_searching(tmp_path, veille_home, f"sqlite:///{veille_home / 'veille.db'}")


@pytest.mark.postgres
def test_searches_during_ingest_on_postgres(tmp_path, veille_home, pg_server):
    ingest_while_searching(tmp_path, veille_home, pg_server.create_db("concurrency"))
