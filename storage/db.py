"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, create_engine

from veille.errors import UserError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers (web, search) never block the writer (crawl) and vice versa.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # Wait for a concurrent writer rather than failing with "database is locked".
    cur.execute("PRAGMA busy_timeout=30000")
    # Full-text doclists of frequent terms are megabytes: map the file and keep more pages in memory
    # (64 MiB) than SQLite's 2 MiB default, so a common query does not re-read them every time.
    cur.execute("PRAGMA mmap_size=1073741824")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def _sqlite_begin(conn) -> None:  # noqa: ANN001
    # pysqlite's own transaction handling is off (isolation_level=None); begin explicitly, as the
    # SQLAlchemy docs recommend. Writers take the lock up front (BEGIN IMMEDIATE) so that they wait
    # on busy_timeout instead of failing mid-batch; readers stay deferred and never block in WAL.
    immediate = conn.get_execution_options().get("sqlite_immediate")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_connect(dbapi_conn, record) -> None:  # noqa: ANN001
    dbapi_conn.isolation_level = None
    _sqlite_pragmas(dbapi_conn, record)


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig  # Alembic loads only to migrate: `veille config` is quicker

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


_MIGRATING = threading.Lock()


def display_url(url: str) -> str:
    """The database URL as it may be printed or logged: the password replaced by ***."""
    return make_url(url).render_as_string(hide_password=True)


class ArchiveUnavailable(UserError):
    """The archive's database cannot be opened: server down, wrong host or credentials, unreadable file."""


def upgrade(url: str, revision: str = "head") -> None:
    # Alembic runs env.py through module-global proxies (alembic.context): two threads migrating at
    # once, even different archives, tear them down under each other (KeyError: 'script').
    try:
        with _MIGRATING:
            from alembic import command

            command.upgrade(alembic_config(url), revision)
    except (OperationalError, InterfaceError) as exc:
        reason = (str(exc.orig or exc).strip().splitlines() or ["?"])[0]
        raise ArchiveUnavailable(f"archive {display_url(url)}: cannot open: {reason}") from None


@cache
def _engine_for(url: str) -> Engine:
    engine = make_engine(url)
    try:
        upgrade(url)
    except ArchiveUnavailable:
        engine.dispose()
        raise
    return engine


def open_archive(url: str) -> Engine:
    """The engine for ``url``, with the schema migrated to the latest revision (once per process)."""
    return _engine_for(url)


@contextmanager
def session_scope(engine: Engine, write: bool = False) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error (nothing half-written)."""
    bind = engine.execution_options(sqlite_immediate=True) if write and is_sqlite(engine) else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
