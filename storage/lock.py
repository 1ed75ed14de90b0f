"""One writer cycle per archive at a time, across processes.

A cycle (crawl, classify, alerts, reminders, digests) holds the archive's lock from start to end:

- SQLite: ``fcntl.flock`` on ``<archive>.lock`` next to the database file (created 0600). The kernel
  drops the lock when the holder's process dies, even under SIGKILL, so a lock is never left behind.
- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection kept open for the
  cycle; the server drops it when that connection ends (process death included).

Taking the lock is "try, then poll until a deadline": ``wait=0`` answers at once. A second process
gets :class:`RunInProgress` and decides: ``veille run`` says so in one line (exit code 75), the
scheduler skips that cycle with a log line. Two threads of one process exclude each other too (each
acquisition opens its own file description or connection).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from storage.db import display_url, is_sqlite, sqlite_path

# pg advisory locks are per database: one fixed key ("veille" cycle) is enough. int8 of b"veille:c".
PG_LOCK_KEY = int.from_bytes(b"veille:c", "big", signed=True)
POLL = 0.1  # seconds between two tries while waiting for the holder to finish
EXIT_IN_PROGRESS = 75  # EX_TEMPFAIL (sysexits.h): try again later


class RunInProgress(Exception):
    """Another process (or thread) holds the archive's lock: a cycle is running there."""


def lock_path(engine: Engine) -> Path | None:
    """``<archive>.lock`` for a SQLite file archive; None for PostgreSQL or an in-memory database."""
    path = sqlite_path(str(engine.url)) if is_sqlite(engine) else None
    return Path(f"{path}.lock") if path else None


def _busy(engine: Engine) -> RunInProgress:
    where = lock_path(engine) or display_url(str(engine.url))
    return RunInProgress(f"une exécution est déjà en cours sur l'archive {where}")


def _retry(try_once, wait: float) -> bool:  # () -> bool
    deadline = time.monotonic() + max(wait, 0.0)
    while not try_once():
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(POLL, max(deadline - time.monotonic(), 0.0)))
    return True


@contextmanager
def _file_lock(path: Path, wait: float) -> Iterator[bool]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:

        def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        got = _retry(try_once, wait)
        if got:  # who holds it, for a person looking (the lock itself is the flock, not this text)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield got
    finally:
        os.close(fd)  # releases the flock


@contextmanager
def _pg_lock(engine: Engine, wait: float) -> Iterator[bool]:
    # AUTOCOMMIT: the session lock outlives transactions; no transaction stays open for the whole cycle.
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    got = False
    try:
        got = _retry(
            lambda: bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_KEY}).scalar()), wait
        )
        yield got
    finally:
        if got:
            with contextlib.suppress(Exception):  # a dead connection released it already
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
        conn.close()


@contextmanager
def archive_lock(engine: Engine, wait: float = 0.0) -> Iterator[None]:
    """Hold the archive's cycle lock; raise :class:`RunInProgress` if not free within ``wait`` seconds."""
    path = lock_path(engine)
    if is_sqlite(engine) and path is None:  # in-memory database: no other process can see it
        yield
        return
    with _file_lock(path, wait) if path else _pg_lock(engine, wait) as got:
        if not got:
            raise _busy(engine)
        yield
