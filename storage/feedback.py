"""Analysts' verdicts on a notice's labels: one row per (notice, label, analyst), the latest verdict.

The verdicts in force are read with SQL text through ``storage.reader`` (docs/decisions.md, *Two ways to read
the archive*): by ``veille feedback list`` with sqlite3 alone, and by ``nlp.verdicts`` (classify, record, undo)
inside its SQLAlchemy session. This module imports no SQLAlchemy at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from storage.reader import Reader, instant

if TYPE_CHECKING:
    from sqlmodel import Session

KEY = ["notice_id", "label", "user"]
# "user" quoted: a reserved word of PostgreSQL (alone, it is the session's user).
_IN_FORCE = (
    'SELECT notice_id, label, verdict, "user", created_at, id FROM feedback WHERE notice_id IN :ids'
    " ORDER BY created_at, id"
)


@dataclass(frozen=True)
class Verdict:
    applies: bool
    user: str
    at: datetime
    feedback_id: int

    def as_dict(self) -> dict:
        return {"applies": self.applies, "user": self.user, "at": instant(self.at).isoformat(), "id": self.feedback_id}


def verdicts_in_force(r: Reader, notice_ids: list[int]) -> dict[tuple[int, str], Verdict]:
    """The verdict in force per (notice, label): the latest feedback row."""
    out: dict[tuple[int, str], Verdict] = {}
    if not notice_ids:
        return out
    for row in r.all(_IN_FORCE, {"ids": list(notice_ids)}):
        # SQLite gives the boolean as 0/1: a bool, as it is stored in a score row's explanation (JSON)
        out[(row.notice_id, row.label)] = Verdict(bool(row.verdict), row.user, instant(row.created_at), row.id)
    return out


def describe(v: dict, lang: str = "fr") -> str:
    """``« ne s'applique pas » selon alice, le 07/12/2026 à 17:40 CET`` (Europe/Paris time, with its zone)."""
    from zoneinfo import ZoneInfo

    at = datetime.fromisoformat(v["at"]).astimezone(ZoneInfo("Europe/Paris"))
    if lang == "fr":
        what = "s'applique" if v["applies"] else "ne s'applique pas"
        return f"« {what} » selon {v['user']}, le {at:%d/%m/%Y} à {at:%H:%M} {at.tzname()}"
    what = "applies" if v["applies"] else "does not apply"
    return f"“{what}” according to {v['user']}, on {at:%Y-%m-%d} at {at:%H:%M} {at.tzname()}"


def record_feedback(
    s: Session, notice_id: int, label: str, verdict: bool, user: str, comment: str | None, now: datetime
) -> None:
    """Insert the verdict, or replace this analyst's earlier one on the same (notice, label).

    One statement (``INSERT … ON CONFLICT DO UPDATE``), so a double click, even two requests at once,
    leaves one row.
    """
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from storage.models import Feedback

    insert = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
    values = {"notice_id": notice_id, "label": label, "verdict": verdict, "user": user, "comment": comment}
    stmt = insert(Feedback).values(**values, created_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=KEY, set_={"verdict": verdict, "comment": comment, "created_at": now}
    )
    s.connection().execute(stmt)
