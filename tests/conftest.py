"""Shared fixtures: a fresh VEILLE_HOME per test, SQLite and PostgreSQL archives, shipped data."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.pgserver import PgServer

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"  # copies of ../shared fixtures the tests use
_db_counter = itertools.count()


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
