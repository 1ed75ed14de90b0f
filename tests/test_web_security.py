"""Workbench hardening (issue 20, points 5-7): sessions that can be closed, the Secure cookie, security
headers, login throttling, equal work for unknown names, bounded KDF concurrency, tokens kept out of the
access log, odd ids and query values answered with French 404/400 pages."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from core.config import load_settings
from storage.calendar_tokens import create_token
from storage.db import open_archive, session_scope
from storage.models import Feedback
from tests.conftest import ROOT
from tests.web_helpers import (
    PASSWORD,
    copy_archive,
    csrf_of,
    live_server,
    login,
    seeded_archive_file,
    start_veille_serve,
)
from web.app import create_app
from web.auth import KDF_SLOTS, add_user
from web.security import CSP, LoginThrottle

HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory):
    return seeded_archive_file(tmp_path_factory.mktemp("seeded"), limit=20)


@pytest.fixture
def archive(seeded_file, tmp_path):
    return copy_archive(seeded_file, tmp_path)


def make_client(app, address: str = "10.0.0.1", **kw) -> TestClient:
    return TestClient(app, follow_redirects=False, client=(address, 40000), **kw)


def copy_of(c: TestClient, app, address: str = "10.0.0.99") -> TestClient:
    """Another browser holding a copy of ``c``'s session cookie (captured, stolen, or a second tab)."""
    other = make_client(app, address)
    other.cookies.set("veille_session", c.cookies["veille_session"])
    return other


def n_feedback(engine) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(Feedback)).one()


def post_feedback(c: TestClient, notice_id: int, token: str) -> httpx.Response:
    return c.post(f"/notice/{notice_id}/feedback", data={"csrf_token": token, "label": "deai", "verdict": "right"})


def bad_login(c: TestClient, name: str, password: str = "wrong password") -> httpx.Response:
    return c.post("/login", data={"name": name, "password": password, "csrf_token": csrf_of(c.get("/login").text)})


def cli(*args: str, stdin: str | None = None):
    from veille.main import app

    return CliRunner().invoke(app, list(args), input=stdin)


@pytest.fixture
def cli_archive(archive, monkeypatch):
    """The archive, with the ``veille`` CLI (in process) pointed at the same SQLite file."""
    from veille.commands.base import state

    engine, ids = archive
    monkeypatch.setenv("VEILLE_DATABASE_URL", str(engine.url))
    monkeypatch.setattr(state, "_settings", None)
    return engine, ids


# --- point 5: sessions that can be closed ------------------------------------------------------------


def test_logout_ends_every_session_of_the_account_feedback_included(archive):
    engine, ids = archive
    app = create_app(load_settings(), engine)
    alice = login(make_client(app), "alice")
    thief = copy_of(alice, app)
    page = thief.get(f"/notice/{ids['impl']}")
    assert page.status_code == 200 and "role-analyst" in page.text  # the copy works while alice is logged in
    token = csrf_of(page.text)
    assert alice.post("/logout", data={"csrf_token": csrf_of(alice.get("/").text)}).status_code == 303
    r = thief.get(f"/notice/{ids['impl']}")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    before = n_feedback(engine)
    r = post_feedback(thief, ids["impl"], token)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert n_feedback(engine) == before
    # alice logs in again: a new session works; the old cookie still does not
    again = login(make_client(app), "alice")
    assert again.get("/").status_code == 200
    assert thief.get("/").status_code == 303


def test_password_change_and_users_remove_end_sessions(cli_archive):
    engine, ids = cli_archive
    app = create_app(load_settings(), engine)
    alice, rita = login(make_client(app), "alice"), login(make_client(app, "10.0.0.2"), "rita")
    stolen, rita_copy = copy_of(alice, app), copy_of(rita, app, "10.0.0.98")
    token = csrf_of(stolen.get(f"/notice/{ids['impl']}").text)

    r = cli("users", "add", "alice", "--role", "analyst", "--password-stdin", stdin="a new password 2\n")
    assert r.exit_code == 0, r.output
    for c in (alice, stolen):
        assert c.get("/").status_code == 303
    before = n_feedback(engine)
    assert post_feedback(stolen, ids["impl"], token).status_code == 303 and n_feedback(engine) == before
    fresh = make_client(app, "10.0.0.3")
    r = fresh.post("/login", data={"name": "alice", "password": "a new password 2", "csrf_token": csrf_of(
        fresh.get("/login").text)})  # fmt: skip
    assert r.status_code == 303 and fresh.get("/").status_code == 200

    # a role change alone keeps the sessions (the role is read on every request)
    assert cli("users", "add", "rita", "--role", "reader", "--no-password").exit_code == 0
    assert rita_copy.get("/").status_code == 200

    r = cli("users", "remove", "rita")
    assert r.exit_code == 0 and "utilisateur rita supprimé" in r.output
    for c in (rita, rita_copy):
        assert c.get("/").status_code == 303
    # re-created under the same name: the old cookie names the old account, not the new one
    add_user(engine, "rita", "reader", PASSWORD)
    assert rita_copy.get("/").status_code == 303
    r = cli("users", "remove", "nobody")
    assert r.exit_code == 2 and "erreur : aucun utilisateur 'nobody'" in r.output and "Traceback" not in r.output
    assert re.search(r"alice\s+analyst", cli("users", "list").output)


def test_sessions_end_on_each_backend(db_url):
    """The session stamp (row, creation time, version) reads back the same on SQLite and PostgreSQL."""
    engine = open_archive(db_url)
    add_user(engine, "alice", "analyst", PASSWORD)
    app = create_app(load_settings(), engine)
    alice = login(make_client(app), "alice")
    copy = copy_of(alice, app)
    assert copy.get("/dashboard").status_code == 200
    assert alice.post("/logout", data={"csrf_token": csrf_of(alice.get("/dashboard").text)}).status_code == 303
    assert copy.get("/dashboard").status_code == 303
    again = login(make_client(app), "alice")
    assert again.get("/dashboard").status_code == 200
    add_user(engine, "alice", "analyst", "another password")
    assert again.get("/dashboard").status_code == 303


def test_cookie_is_secure_over_https_or_when_configured(archive):
    engine, _ = archive

    def cookie(settings, base_url: str = "http://testserver", **headers: str) -> str:
        c = TestClient(create_app(settings, engine), base_url=base_url, follow_redirects=False)
        r = c.get("/login", headers=headers)
        assert r.status_code == 200
        (value,) = [v for v in r.headers.get_list("set-cookie") if v.startswith("veille_session=")]
        return value.lower()

    plain = load_settings()
    assert "secure" not in cookie(plain)  # plain HTTP on 127.0.0.1: a Secure cookie would never come back
    assert "; secure" in cookie(plain, base_url="https://testserver")  # TLS straight to uvicorn
    assert "secure" not in cookie(plain, **{"X-Forwarded-Proto": "https"})  # nobody said to trust a proxy
    proxied = load_settings()
    proxied.web.trust_proxy = True
    assert "; secure" in cookie(proxied, **{"X-Forwarded-Proto": "https"})
    assert "secure" not in cookie(proxied, **{"X-Forwarded-Proto": "http"})
    forced = load_settings()
    forced.web.secure_cookie = True
    value = cookie(forced)
    assert "; secure" in value and "httponly" in value and "samesite=lax" in value


# --- point 5: security headers ---------------------------------------------------------------------------


def test_security_headers_on_pages_static_files_and_errors(archive):
    engine, ids = archive
    app = create_app(load_settings(), engine)
    rita = login(make_client(app), "rita")
    answers = {
        "login page": make_client(app, "10.0.0.5").get("/login"),
        "redirect to login": make_client(app, "10.0.0.5").get("/dashboard"),
        "search": rita.get("/", params={"q": "santé"}),
        "notice": rita.get(f"/notice/{ids['impl']}"),
        "static js": rita.get("/static/app.js"),
        "static css": rita.get("/static/style.css"),
        "404 unknown page": rita.get("/no/such/page"),
        "404 notice": rita.get("/notice/999999"),
        "403 reader feedback": post_feedback(rita, ids["impl"], csrf_of(rita.get("/").text)),
        "403 no csrf": rita.post("/logout"),
        "400 bad parameter": rita.get("/dashboard", params={"weeks": "many"}),
        "calendar 404": rita.get("/calendar/all.ics", params={"token": "nope"}),
    }
    expected = {"404 unknown page": 404, "404 notice": 404, "403 reader feedback": 403, "403 no csrf": 403,
                "400 bad parameter": 400, "calendar 404": 404, "redirect to login": 303}  # fmt: skip
    for what, r in answers.items():
        assert r.status_code == expected.get(what, 200), (what, r.status_code)
        for name, value in HEADERS.items():
            assert r.headers.get(name) == value, (what, name, r.headers.get(name))


def test_a_crash_answers_a_french_500_page_with_the_headers(archive):
    engine, ids = archive
    with engine.begin() as conn:  # a damaged archive: the notice page's query fails
        conn.exec_driver_sql("DROP TABLE sighting")
    app = create_app(load_settings(), engine)
    rita = login(make_client(app, raise_server_exceptions=False), "rita")
    r = rita.get(f"/notice/{ids['impl']}")
    assert r.status_code == 500 and "Erreur interne" in r.text and "sighting" not in r.text
    for name, value in HEADERS.items():
        assert r.headers.get(name) == value


def test_templates_need_no_inline_script_or_style():
    """What the CSP forbids (script-src/style-src 'self'): inline <script>, on* handlers, style attributes."""
    templates = sorted((ROOT / "web" / "templates").glob("*.html"))
    assert len(templates) >= 7
    for path in templates:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path.name
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", text, re.I), path.name


# --- point 6: login throttling, equal work, bounded hashing -------------------------------------------------


def test_bad_logins_per_name_are_throttled_with_retry_after(archive):
    engine, _ = archive
    now = [1000.0]
    app = create_app(load_settings(), engine)
    app.state.login_throttle = LoginThrottle(clock=lambda: now[0])
    # five guesses at alice's password from five addresses, then any address is told to wait
    for i in range(5):
        assert bad_login(make_client(app, f"10.1.0.{i}"), "alice").status_code == 401
    other = make_client(app, "10.1.0.77")
    r = bad_login(other, "alice", PASSWORD)  # even the right password: the name is locked for now
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "Trop de tentatives" in r.text and r.headers["content-type"].startswith("text/html")
    assert r.headers["x-frame-options"] == "DENY"
    assert other.get("/").status_code == 303  # not logged in
    r = bad_login(other, " ALICE ")  # the same name differently written
    assert r.status_code == 429
    # another name from those addresses is not concerned
    assert bad_login(make_client(app, "10.1.0.1"), "rita").status_code == 401
    # a minute later one more try is allowed, and the right password works
    now[0] += 61
    c = make_client(app, "10.1.0.78")
    r = bad_login(c, "alice", PASSWORD)
    assert r.status_code == 303 and c.get("/").status_code == 200


def test_bad_logins_per_address_are_throttled_but_other_addresses_log_in(archive):
    engine, _ = archive
    now = [1000.0]
    app = create_app(load_settings(), engine)
    app.state.login_throttle = LoginThrottle(clock=lambda: now[0])
    attacker = make_client(app, "10.2.0.1")
    codes = [bad_login(attacker, f"user{i}").status_code for i in range(20)]
    assert codes == [401] * 20
    r = bad_login(attacker, "user99")
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 6
    assert bad_login(attacker, "rita", PASSWORD).status_code == 429  # this address must wait, whatever it sends
    # rita, from her own address, logs in at once
    rita = make_client(app, "10.2.0.2")
    assert bad_login(rita, "rita", PASSWORD).status_code == 303 and rita.get("/").status_code == 200
    # an IPv6 host owns its whole /64: changing the last bits does not give it more tries
    for i in range(20):
        assert bad_login(make_client(app, f"2001:db8:1:2::{i:x}"), f"v6user{i}").status_code == 401
    assert bad_login(make_client(app, "2001:db8:1:2:ffff::1"), "v6user99").status_code == 429
    assert bad_login(make_client(app, "2001:db8:1:3::1"), "rita", PASSWORD).status_code == 303
    # good logins cost nothing: rita can log in many times from one address
    for _ in range(25):
        assert bad_login(make_client(app, "10.2.0.3"), "rita", PASSWORD).status_code == 303


def test_behind_a_trusted_proxy_the_forwarded_address_is_throttled(archive):
    engine, _ = archive
    settings = load_settings()
    settings.web.trust_proxy = True
    app = create_app(settings, engine)
    proxy = make_client(app, "127.0.0.1")  # every request comes from the proxy
    for i in range(20):
        r = proxy.post("/login", headers={"X-Forwarded-For": "203.0.113.9"}, data={
            "name": f"u{i}", "password": "x", "csrf_token": csrf_of(proxy.get("/login").text)})  # fmt: skip
        assert r.status_code == 401
    r = proxy.post("/login", headers={"X-Forwarded-For": "203.0.113.9"}, data={
        "name": "u99", "password": "x", "csrf_token": csrf_of(proxy.get("/login").text)})  # fmt: skip
    assert r.status_code == 429
    r = proxy.post("/login", headers={"X-Forwarded-For": "198.51.100.4"}, data={
        "name": "rita", "password": PASSWORD, "csrf_token": csrf_of(proxy.get("/login").text)})  # fmt: skip
    assert r.status_code == 303


@pytest.fixture
def kdf_calls(monkeypatch):
    """Counts (and otherwise runs) every scrypt call: the KDF the passwords go through."""
    real, calls = hashlib.scrypt, []

    def counting(*args, **kw):
        calls.append(kw.get("n"))
        return real(*args, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


def test_unknown_names_cost_one_kdf_call_like_known_ones(archive, kdf_calls):
    engine, _ = archive
    add_user(engine, "proxied", "reader", None)  # an account without password (trusted-header mode)
    app = create_app(load_settings(), engine)
    for name in ("alice", "nobody", "proxied", "x" * 100):
        c = make_client(app, f"10.3.0.{len(kdf_calls)}")
        page = c.get("/login")
        kdf_calls.clear()
        r = c.post("/login", data={"name": name, "password": "wrong password", "csrf_token": csrf_of(page.text)})
        assert r.status_code == 401
        assert kdf_calls == [2**14], (name, kdf_calls)  # one hash, with the same cost parameter
    kdf_calls.clear()
    assert login(make_client(app, "10.3.0.200"), "alice") and kdf_calls == [2**14]


def test_hashing_concurrency_is_bounded_and_the_loop_stays_free(archive, monkeypatch):
    engine, _ = archive
    app = create_app(load_settings(), engine)
    real, lock, gate = hashlib.scrypt, threading.Lock(), threading.Event()
    now, peak = [0], [0]

    def held(*args, **kw):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        try:
            gate.wait(30)  # hold the KDF until every login has arrived
            return real(*args, **kw)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(hashlib, "scrypt", held)
    n = 12

    def attempt(i: int) -> int:
        with httpx.Client(base_url=base, timeout=60) as c:
            form = {"name": f"guess{i}", "password": "x", "csrf_token": csrf_of(c.get("/login").text)}
            return c.post("/login", data=form).status_code

    with live_server(app) as base, ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(attempt, i) for i in range(n)]
        deadline = time.monotonic() + 30
        limiter = getattr(app.state, "kdf_limiter", None)
        while now[0] + (limiter.statistics().tasks_waiting if limiter else 0) < n:
            assert time.monotonic() < deadline, "the logins never all arrived"
            time.sleep(0.01)
        # every login is in the KDF or queued for it, and the server still answers
        assert httpx.get(f"{base}/static/style.css", timeout=10).status_code == 200
        gate.set()
        codes = [f.result() for f in futures]
    assert codes == [401] * n
    assert peak[0] == KDF_SLOTS, f"{peak[0]} passwords hashed at once (limit {KDF_SLOTS})"


# --- point 7: tokens out of the access log, odd ids and query values ---------------------------------------


def test_access_log_of_veille_serve_has_no_calendar_token(archive, veille_home, tmp_path):
    engine, _ = archive
    feed_id, token = create_token(engine, "all")
    assert feed_id > 0 and len(token) >= 24
    env = {**os.environ, "VEILLE_HOME": str(veille_home), "VEILLE_DATABASE_URL": str(engine.url),
           "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}  # fmt: skip
    veille_home.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "serve.log"
    server, base = start_veille_serve(env, log)
    try:
        r = httpx.get(f"{base}/calendar/all.ics", params={"token": token})
        assert r.status_code == 200 and r.text.startswith("BEGIN:VCALENDAR")
        assert httpx.get(f"{base}/calendar/all.ics?x=1&token={token}x").status_code == 404
        wait_for(lambda: log.read_text().count("/calendar/all.ics") >= 2, server, log)
    finally:
        server.terminate()
        server.wait(30)
    text = log.read_text()
    assert token not in text and token[:12] not in text
    assert re.search(r'"GET /calendar/all\.ics\?token=\[redacted\] HTTP/1\.1" 200', text), text[-2000:]
    assert re.search(r'"GET /calendar/all\.ics\?x=1&token=\[redacted\] HTTP/1\.1" 404', text), text[-2000:]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(condition, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert server.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)


def test_odd_ids_and_query_values_get_french_404_and_400_pages(archive):
    engine, ids = archive
    app = create_app(load_settings(), engine)
    alice = login(make_client(app), "alice")
    token = csrf_of(alice.get("/").text)
    for path in ("/notice/9223372036854775808", "/notice/99999999999999999999999", "/notice/abc", "/notice/-3",
                 "/notice/0", "/notice/1.5", "/notice/9223372036854775807"):  # fmt: skip
        r = alice.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), (path, r.status_code)
        assert "Désolé" in r.text and ("Page introuvable" in r.text or "Aucune notice" in r.text), path
    before = n_feedback(engine)
    for notice in ("9223372036854775808", "abc"):
        r = post_feedback(alice, notice, token)  # type: ignore[arg-type]
        assert r.status_code == 404 and "Page introuvable" in r.text
    assert n_feedback(engine) == before
    r = alice.get("/dashboard", params={"weeks": "x"})
    assert r.status_code == 400 and "Paramètre invalide : weeks" in r.text
    for year in ("0000", "²⁰²⁵", "99999", "-1"):
        r = alice.get("/", params={"q": "santé", "year": year})
        assert r.status_code == 200 and "une année AAAA" in r.text, year
    r = alice.get("/", params={"q": "", "page": "99999999999999999999"})
    assert r.status_code == 200
    r = alice.get("/", params={"q": "", "year": "2025"})
    assert r.status_code == 200 and "une année AAAA" not in r.text


# --- the CSP in a real browser ------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (.ci/run does)")
def test_pages_work_in_chromium_under_the_csp(archive):
    from playwright.sync_api import sync_playwright

    engine, ids = archive
    with live_server(create_app(load_settings(), engine)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.add_init_script(RECORD_VIOLATIONS)
        page.goto(url + "/login")
        page.fill("input[name=name]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector(".flash")
        for path in ("/?q=sant%C3%A9", f"/notice/{ids['impl']}", f"/notice/{ids['xss']}", "/dashboard", "/rules"):
            page.goto(url + path)
            assert page.evaluate("window.__csp") == [], path
        # /static/app.js runs: the rules editor selects the faulty line of a broken file
        page.fill("#rules-text", page.input_value("#rules-text").rstrip("\n") + "\n  - [unclosed\n")
        page.click("#check")
        page.wait_for_selector("#rules-error")
        line = int(page.get_attribute("#rules-text", "data-error-line"))
        start = page.evaluate("document.getElementById('rules-text').selectionStart")
        assert line > 1 and page.input_value("#rules-text")[:start].count("\n") == line - 1
        assert page.evaluate("window.__csp") == []
        # and the browser enforces the policy: an injected inline script does not run
        ran = page.evaluate("""() => { const s = document.createElement("script");
            s.textContent = "window.__ran = 1"; document.body.appendChild(s); return window.__ran; }""")
        assert ran is None
        page.wait_for_function("window.__csp.length > 0")
        assert page.evaluate("window.__csp")[0].startswith("script-src")
        browser.close()
