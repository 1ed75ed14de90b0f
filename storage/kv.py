"""The ``kv`` table as readers see it: one JSON value per key (storage.reader: with or without SQLAlchemy)."""

from __future__ import annotations

from typing import Any

from storage.reader import Archive, json_value, reading


def kv_value(db: Archive, key: str) -> Any:
    """The value stored under ``key``, None when there is none."""
    with reading(db) as r:
        return json_value(r.scalar("SELECT value FROM kv WHERE key = :k", {"k": key}))
