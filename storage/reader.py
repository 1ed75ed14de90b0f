"""Reading the archive with SQL text, through SQLAlchemy or through the standard library's ``sqlite3``.

The read queries of ``veille status``, ``search``, ``deliveries`` and ``digest`` (previews and dry runs), and
of the web and the pipeline, which call the same functions, are written once, as SQL text with ``:name``
parameters, and run through a :class:`Reader`: :class:`SqlaReader` on a SQLAlchemy connection (PostgreSQL, the
web, the pipeline), :class:`SqliteReader` on a plain ``sqlite3`` connection. The second is the CLI's fast path:
importing SQLAlchemy and SQLModel alone costs more than half the 0.5 s a command may take (docs/benchmarks.md).
It is taken only for a SQLite file already at the newest migration (:func:`fast_archive`); anything else opens
with SQLAlchemy, which migrates (docs/decisions.md, *Two ways to read the archive*).

Rows are tuples with their columns as attributes on both paths; values are what the driver gives (SQLite:
text for dates and JSON), so readers convert them with :func:`day`, :func:`instant` and :func:`json_value`.
This module imports no SQLAlchemy at load time.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from core.dates import as_day
from core.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_MAGIC = b"SQLite format 3\x00"


class ArchiveUnavailable(UserError):
    """The archive's database cannot be opened: server down, wrong host or credentials, unreadable file."""


class Reader:
    """Runs SQL text (``:name`` parameters; a list or tuple value expands ``IN :name``) and returns rows."""

    dialect: str  # "sqlite" | "postgresql"

    def all(self, sql: str, params: dict | None = None) -> list[Any]:
        raise NotImplementedError

    def first(self, sql: str, params: dict | None = None) -> Any:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: dict | None = None) -> Any:
        row = self.first(sql, params)
        return None if row is None else row[0]

    def at(self, value: datetime) -> object:
        """An instant as a parameter compared with stored ones: SQLite keeps naive UTC text
        (``storage.types.UTCDateTime``), which an aware value's ``+00:00`` would not sort with."""
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self.dialect == "sqlite" else value

    def on(self, value: date) -> object:
        """A day as a parameter (SQLite keeps ``2025-01-24`` text)."""
        return value.isoformat() if self.dialect == "sqlite" else value


class SqlaReader(Reader):
    def __init__(self, conn: Connection) -> None:
        self.conn, self.dialect = conn, conn.dialect.name

    def all(self, sql: str, params: dict | None = None) -> list[Any]:
        from sqlalchemy import bindparam, text

        params = params or {}
        stmt = text(sql)
        lists = [k for k, v in params.items() if isinstance(v, list | tuple)]
        if lists:
            stmt = stmt.bindparams(*(bindparam(k, expanding=True) for k in lists))
        return self.conn.execute(stmt, params).all()


_PARAM = re.compile(r"(?<![:\w]):(\w+)")


@cache
def _row_type(names: tuple[str, ...]) -> type:
    return namedtuple("Row", names, rename=True)


class SqliteReader(Reader):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def all(self, sql: str, params: dict | None = None) -> list[Any]:
        params = dict(params or {})
        for name, value in list(params.items()):  # IN :name -> IN (:name_0, :name_1, ...), as SQLAlchemy expands it
            if isinstance(value, list | tuple):
                del params[name]
                params.update({f"{name}_{i}": v for i, v in enumerate(value)})
                expanded = "(" + ", ".join(f":{name}_{i}" for i in range(len(value))) + ")"
                sql = _PARAM.sub(lambda m, n=name, e=expanded: e if m.group(1) == n else m.group(0), sql)
        cursor = self.conn.execute(sql, params)
        rows = cursor.fetchall()
        if not rows:
            return rows
        return list(map(_row_type(tuple(c[0] for c in cursor.description))._make, rows))


def sqlite_pragmas(dbapi_conn, _record=None) -> None:
    """The archive's connection settings, on both paths (SQLAlchemy's connect event and the fast path)."""
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


class SqliteArchive:
    """A SQLite archive at the newest schema, read with ``sqlite3`` (the CLI's fast path).

    One connection for the process's reads (a digest preview makes a hundred), opened on first use."""

    def __init__(self, url: str, path: Path) -> None:
        self.url, self.path = url, path
        self._conn: sqlite3.Connection | None = None
        self._depth = 0  # read transactions open on it (a reader may call another reader)

    @contextmanager
    def connect(self) -> Iterator[SqliteReader]:
        """One read transaction (a consistent snapshot, as SQLAlchemy's deferred BEGIN gives); a nested one
        shares it."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            sqlite_pragmas(self._conn)
        conn = self._conn
        if self._depth == 0:
            conn.execute("BEGIN")
        self._depth += 1
        try:
            yield SqliteReader(conn)
        finally:
            self._depth -= 1
            if self._depth == 0:
                conn.execute("ROLLBACK")  # nothing was written: ending the transaction lets the next one see news

    def engine(self) -> Engine:
        """The SQLAlchemy engine, for the rare write on a read path (a relearned cross-language lexicon)."""
        from storage.db import open_archive

        return open_archive(self.url)


Archive = Any  # a SqliteArchive or a SQLAlchemy Engine: what the read functions take


@contextmanager
def reading(db: Archive) -> Iterator[Reader]:
    """A reader on ``db``, a :class:`SqliteArchive` or a SQLAlchemy ``Engine``, for one read transaction."""
    if isinstance(db, SqliteArchive):
        with db.connect() as reader:
            yield reader
    else:
        with db.connect() as conn:
            yield SqlaReader(conn)


def errors(db: Archive) -> tuple[type[Exception], ...]:
    """What a failed statement on ``db`` raises (a missing table, say)."""
    if isinstance(db, SqliteArchive):
        return (sqlite3.Error,)
    from sqlalchemy.exc import DBAPIError

    return (DBAPIError,)


def as_engine(db: Archive) -> Engine:
    return db.engine() if isinstance(db, SqliteArchive) else db


# --- values as the drivers give them -------------------------------------------------------------


def day(value: object) -> date | None:
    """A stored day (SQLite: ``'2023-12-05'`` text; PostgreSQL: a date)."""
    return as_day(value)


def instant(value: object) -> datetime | None:
    """A stored instant as an aware UTC datetime (SQLite: naive UTC text, as ``storage.types.UTCDateTime`` wrote it)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_value(value: object) -> Any:
    """A JSON column (SQLite: its text; PostgreSQL: already decoded)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


# --- the fast path: a SQLite file at the newest migration -----------------------------------------


_REVISION = re.compile(r"""^(down_)?revision(?:\s*:[^=]+)?\s*=\s*(?:["']([^"']+)["']|None)""", re.M)


@cache
def migrations_head() -> str | None:
    """The newest migration's revision, read from the migration files without importing Alembic (about 1 s of
    imports); None when they do not name exactly one head, so that Alembic decides."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for down, rev in _REVISION.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).add(rev)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not a whole SQLite database (never "repair" it: that would overwrite it).

    SQLite itself treats an empty file as a new database, and an unreadable one fails on first use
    with a traceback; both are refused here, in one line naming the file.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise ArchiveUnavailable(f"archive {path} : lecture impossible : {exc.strerror}") from None
    why = None
    if size == 0:
        why = "le fichier est vide (0 octet)"
    elif len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        why = "le fichier n'est pas une base SQLite (contenu étranger ou en-tête tronqué)"
    else:
        page_size = int.from_bytes(head[16:18], "big") or 1  # 1 means 65536
        page_size = 65536 if page_size == 1 else page_size
        pages, counter, valid_for = (int.from_bytes(head[i : i + 4], "big") for i in (28, 24, 92))
        if counter == valid_for and size < pages * page_size:  # the header's size is trustworthy then
            why = f"le fichier est tronqué ({size} octets ; son en-tête en annonce {pages * page_size})"
    if why:
        raise ArchiveUnavailable(f"archive {path} : {why} ; ouverture refusée (fichier laissé intact)")


def _plain_sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL; None for anything else (options, memory, another database)."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = unquote(url[len("sqlite:///") :])
    return Path(path) if path and path != ":memory:" and not path.startswith("file:") else None


def fast_archive(url: str) -> SqliteArchive | None:
    """The archive read with ``sqlite3`` when that is safe: a SQLite file whose schema is the newest migration.
    None otherwise (PostgreSQL, no file yet, an older schema): open it with ``storage.db.open_archive``, which
    creates and migrates. A file that is not a whole SQLite database is refused (ArchiveUnavailable) as there."""
    path = _plain_sqlite_file(url)
    if path is None or not path.exists():
        return None
    check_sqlite_file(path)
    archive = SqliteArchive(url, path)
    try:
        with archive.connect() as r:
            stored = [row[0] for row in r.all("SELECT version_num FROM alembic_version")]
    except sqlite3.Error:  # no table yet, a damaged file: SQLAlchemy and Alembic say what is wrong
        return None
    head = migrations_head()
    return archive if head is not None and stored == [head] else None
