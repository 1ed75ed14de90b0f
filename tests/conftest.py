"""Shared fixtures: a fresh VEILLE_HOME per test, SQLite and PostgreSQL archives, shipped data."""

from __future__ import annotations

import contextlib
import inspect
import itertools
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import PgServer

pytest_plugins = ["pytester"]  # tests/test_tiers.py runs pytest on a sample suite

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"  # copies of ../shared fixtures the tests use
_db_counter = itertools.count()

# Two tiers: ``pytest -m "not slow"`` while working, everything in CI. A test is slow when it starts a process
# (a crawl child, the CLI in a subprocess, Chromium, PostgreSQL), a server (replay, SMTP, Slack API, uvicorn) or a
# training. The hook below marks it by what it reaches: its fixtures, and the names its code and the test helpers
# it calls use (transitively). The audit hook after it fails a test left unmarked that still starts a process or
# binds a socket, so the fast tier stays fast.
SLOW_NAMES = frozenset(
    {
        "subprocess",  # the CLI or scheduler in a child process
        "crawl",  # veille.crawl.crawl: Scrapy in a child process, then the store step
        "fetch",  # crawlers.run.fetch: the crawl step alone
        "ReplayServer",
        "Controller",  # aiosmtpd
        "peers",
        "live_server",
        "sync_playwright",
        "make_tiny_model",
        "fit",  # nlp.train.fit
        "train_cmd",
        "PgServer",
        "run_veille",
        "run_measured",
        "ThreadingHTTPServer",
        "HTTPServer",
        "rules_worker",
    }
)
SLOW_FIXTURES = frozenset({"pg_server"})
SLOW_CONSTANTS = frozenset(
    {
        "demo",  # `veille demo`: the recorded sources through the crawl child and the whole pipeline
        "/rules/check",  # the workbench's rule checks run in a worker process (web/rules_worker.py)
        "/rules/save",
    }
)
_TEST_PACKAGE = Path(__file__).resolve().parent


def _own_code(obj: object) -> types.CodeType | None:
    """The code object of a function or fixture defined in tests/, else None (library code is not walked)."""
    func = getattr(obj, "__wrapped__", obj)
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    if code is None or not Path(code.co_filename).resolve().is_relative_to(_TEST_PACKAGE):
        return None
    return code


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    yield from code.co_freevars
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, lambdas, comprehensions
            yield from _names(const)


def _consts(code: types.CodeType) -> Iterator[object]:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _consts(const)
        else:
            yield const


def _reaches_slow(func: object, seen: set[types.CodeType]) -> bool:
    code = _own_code(func)
    if code is None or code in seen:
        return False
    seen.add(code)
    module_globals = getattr(inspect.unwrap(func), "__globals__", {})
    if any(isinstance(c, str) and c in SLOW_CONSTANTS for c in _consts(code)):
        return True
    for name in _names(code):
        if name in SLOW_NAMES:
            return True
        target = module_globals.get(name)
        if isinstance(target, type):
            if any(_reaches_slow(m, seen) for m in vars(target).values() if callable(m)):
                return True
        elif callable(target) and _reaches_slow(target, seen):
            return True
    return False


def _is_slow(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    if names & SLOW_FIXTURES:
        return True
    seen: set[types.CodeType] = set()
    if _reaches_slow(getattr(item, "function", None), seen):
        return True
    infos = getattr(item, "_fixtureinfo", None)
    defs = infos.name2fixturedefs if infos else {}
    return any(_reaches_slow(d.func, seen) for name in names for d in defs.get(name, ()))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("postgres") or _is_slow(item):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def veille_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("VEILLE_HOME", str(home))
    for var in ("VEILLE_CONFIG", "VEILLE_DATABASE_URL", "VEILLE_SMTP_PASSWORD", "VEILLE_SLACK_TOKEN", "VEILLE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session")
def pg_server():
    server = PgServer()
    if not server.available:
        pytest.skip("no PostgreSQL server binary (initdb/pg_ctl) on this machine")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'archive.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """Runs the test once on SQLite and once on a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.db'}"
    server = request.getfixturevalue("pg_server")
    return server.create_db(f"t{next(_db_counter)}")


@pytest.fixture
def engine(db_url):
    from storage.db import open_archive

    return open_archive(db_url)


_watched: list[str] = []  # the node id of the running fast-tier test (setup, call, teardown), if any
_offences: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if _watched and event in ("subprocess.Popen", "socket.bind", "os.fork", "os.posix_spawn"):
        _offences.append(f"{event} {args[0] if args else ''}")


# urllib3 (pulled in by spaCy through requests) probes IPv6 by binding a socket when first imported: done
# here, before any test is watched, so that the probe is never taken for a server.
with contextlib.suppress(ImportError):
    import urllib3.util.connection  # noqa: F401

sys.addaudithook(_audit)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Watch a fast-tier test from its first fixture (session ones included) to the end of its call."""
    _watched[:] = [] if item.get_closest_marker("slow") else [item.nodeid]
    _offences.clear()
    yield
    _watched.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Not in teardown: the last test of a run also finalises session fixtures (e.g. stops PostgreSQL)."""
    _watched.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A fast-tier test that started a process or bound a socket fails: mark it slow (SLOW_* above or explicitly)."""
    outcome = yield
    report = outcome.get_result()
    if _watched and _offences and not report.failed:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} is in the fast tier but did {_offences[0]} ({call.when}): mark it slow"
        _offences.clear()
