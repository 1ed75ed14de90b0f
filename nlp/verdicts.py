"""An analyst's verdict on a notice's label is final for that notice.

The verdict is the latest ``Feedback`` row for (notice, label). It overrides the score's selection in the
stored ``LabelScore`` row (``selected``; ``explanation["verdict"]`` says who and when, and
``explanation["score_selected"]`` keeps what the score alone decided), so everything that reads the
selection follows it: search facets, routing of alerts and digests, the notice page, ``veille explain``.
``classify`` applies it again after each re-scoring; undoing it restores the score's own selection (or the
previous verdict). The rows also feed training (``nlp.train.feedback_examples``).
"""

from __future__ import annotations

from sqlalchemy import delete as sa_delete
from sqlalchemy import text
from sqlmodel import Session, col, select

from core.dates import now_utc
from storage.feedback import Verdict, record_feedback, verdicts_in_force
from storage.models import Feedback, LabelScore
from storage.reader import SqlaReader

_LOCK = 0x76657264  # "verd": PostgreSQL advisory lock between verdict writes and re-scoring


def serialise(s: Session) -> None:
    """On PostgreSQL, a verdict being written and a batch being re-scored wait for each other (till commit):
    otherwise ``classify`` could read the verdicts just before one is committed and store its batch after,
    dropping the override. SQLite writers are serialised already."""
    if s.connection().dialect.name == "postgresql":
        s.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_LOCK))


def latest(s: Session, notice_ids: list[int]) -> dict[tuple[int, str], Verdict]:
    """The verdict in force per (notice, label): the latest feedback row (the query of ``veille feedback list``)."""
    if notice_ids:
        s.flush()  # what the session holds, as a query of its own would (autoflush)
    return verdicts_in_force(SqlaReader(s.connection()), notice_ids)


def overridden(explanation: dict, selected: bool, verdict: Verdict | None) -> tuple[bool, dict]:
    """(selected, explanation) of a score row once ``verdict`` (or none) is applied."""
    expl = dict(explanation or {})
    own = expl.pop("score_selected", selected) if "verdict" in expl else selected
    expl.pop("verdict", None)
    if verdict is None:
        return bool(own), expl
    expl["verdict"], expl["score_selected"] = verdict.as_dict(), bool(own)
    return verdict.applies, expl


def apply_to_rows(s: Session, rows: list[dict]) -> None:
    """Apply the verdicts in force to freshly scored rows (dicts with notice_id, label, selected, explanation)."""
    serialise(s)
    verdicts = latest(s, sorted({r["notice_id"] for r in rows}))
    if not verdicts:
        return
    for r in rows:
        v = verdicts.get((r["notice_id"], r["label"]))
        if v is not None:
            r["selected"], r["explanation"] = overridden(r["explanation"], r["selected"], v)


def sync(s: Session, notice_id: int, label: str) -> Verdict | None:
    """Bring the stored score row of (notice, label) in line with the verdict in force; returns it."""
    serialise(s)
    s.flush()
    verdict = latest(s, [notice_id]).get((notice_id, label))
    row = s.exec(select(LabelScore).where(LabelScore.notice_id == notice_id, LabelScore.label == label)).first()
    if row is not None:
        row.selected, row.explanation = overridden(row.explanation, row.selected, verdict)  # a new dict: saved
        s.add(row)
        s.flush()  # the search index's label filter follows (storage.fulltext's flush hook)
    return verdict


def record(s: Session, notice_id: int, label: str, applies: bool, user: str, comment: str | None = None) -> Verdict:
    """Store a verdict (this analyst's earlier one on the same label is replaced) and apply it."""
    record_feedback(s, notice_id, label, applies, user, comment, now_utc())
    verdict = sync(s, notice_id, label)
    assert verdict is not None
    return verdict


def undo(s: Session, notice_id: int, label: str) -> tuple[Verdict | None, Verdict | None]:
    """Withdraw the verdict in force on (notice, label): (the one withdrawn, the one now in force or None)."""
    gone = latest(s, [notice_id]).get((notice_id, label))
    if gone is None:
        return None, None
    s.exec(sa_delete(Feedback).where(col(Feedback.id) == gone.feedback_id))
    return gone, sync(s, notice_id, label)


def of(explanation: dict | None) -> dict | None:
    """The verdict stored with a score row, if any: {"applies", "user", "at", "id"}."""
    v = (explanation or {}).get("verdict")
    return v if isinstance(v, dict) and "applies" in v else None
