"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DatabaseError, InterfaceError
from sqlmodel import Session, create_engine

from storage.reader import (
    MIGRATIONS,
    ArchiveUnavailable,
    check_sqlite_file,
    migrations_head,
    sqlite_pragmas,
)
from storage.urls import display_url

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_begin(conn) -> None:
    # pysqlite's own transaction handling is off (isolation_level=None); begin explicitly, as the
    # SQLAlchemy docs recommend. Writers take the lock up front (BEGIN IMMEDIATE) so that they wait
    # on busy_timeout instead of failing mid-batch; readers stay deferred and never block in WAL.
    immediate = conn.get_execution_options().get("sqlite_immediate")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_connect(dbapi_conn, record) -> None:
    dbapi_conn.isolation_level = None
    sqlite_pragmas(dbapi_conn, record)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and in-memory databases."""
    if not url.startswith("sqlite"):
        return None
    db = make_url(url).database
    return Path(db) if db and db != ":memory:" and not db.startswith("file:") else None


def _create_sqlite_file(path: Path) -> None:
    """A new archive, readable by its owner only: the file (and so its -wal and -shm, which SQLite
    creates with the same mode) 0600, a folder created for it 0700. It is made whole (header written
    by switching to WAL) under a temporary name and linked into place, so another process starting at
    the same moment sees no file or a valid one, never an empty file it must refuse."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile: keep theirs
            os.link(tmp, path)  # unlike a rename, never replaces an existing archive
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            _create_sqlite_file(path)
        check_sqlite_file(path)
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


def upgrade(url: str, revision: str = "head") -> None:
    # Alembic runs env.py through module-global proxies (alembic.context): two threads migrating at
    # once, even different archives, tear them down under each other (KeyError: 'script').
    try:
        with _MIGRATING:
            from alembic import command

            command.upgrade(alembic_config(url), revision)
    except (DatabaseError, InterfaceError) as exc:  # also "file is not a database", "malformed"
        reason = (str(exc.orig or exc).strip().splitlines() or ["?"])[0]
        raise ArchiveUnavailable(f"archive {display_url(url)} : ouverture impossible : {reason}") from None


def at_head(engine: Engine) -> bool:
    """Whether the archive's schema is already the newest one (then opening it needs no Alembic)."""
    head = migrations_head()
    try:
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    except (DatabaseError, InterfaceError):  # no table yet, damaged file, server down: Alembic says what is wrong
        return False
    finally:
        # No pooled connection left open by this look, as when Alembic (its own engine) did it: with one left
        # from before the cycle's lock, a run that waited for another one resent what it had sent
        # (tests/test_exactly_once.py; cause inside SQLite/pysqlite not pinned down).
        engine.dispose()
    return head is not None and stored == [head]


@cache
def _engine_for(url: str) -> Engine:
    engine = make_engine(url)
    try:
        if not at_head(engine):
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
