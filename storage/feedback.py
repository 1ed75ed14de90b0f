"""Analysts' verdicts on a notice's labels: one row per (notice, label, analyst), the latest verdict."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from storage.models import Feedback

KEY = ["notice_id", "label", "user"]


def record_feedback(
    s: Session, notice_id: int, label: str, verdict: bool, user: str, comment: str | None, now: datetime
) -> None:
    """Insert the verdict, or replace this analyst's earlier one on the same (notice, label).

    One statement (``INSERT … ON CONFLICT DO UPDATE``), so a double click, even two requests at once,
    leaves one row.
    """
    insert = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
    values = {"notice_id": notice_id, "label": label, "verdict": verdict, "user": user, "comment": comment}
    stmt = insert(Feedback).values(**values, created_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=KEY, set_={"verdict": verdict, "comment": comment, "created_at": now}
    )
    s.connection().execute(stmt)
