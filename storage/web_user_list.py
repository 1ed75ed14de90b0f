"""The workbench's accounts as their readers see them (the table: ``storage.web_users``), read with SQL text
through ``storage.reader``: ``veille users list`` answers with sqlite3 alone (docs/decisions.md, *Two ways to
read the archive*). No password hash is read. This module imports no SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.reader import Archive, instant, reading


@dataclass(frozen=True)
class Account:
    name: str
    role: str  # reader | analyst (storage.web_users.ROLES)
    last_login: datetime | None


def accounts(db: Archive) -> list[Account]:
    """Every account, by name."""
    with reading(db) as r:
        rows = r.all("SELECT name, role, last_login FROM web_user ORDER BY name")
    return [Account(row.name, row.role, instant(row.last_login)) for row in rows]
