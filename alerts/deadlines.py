"""Deadlines: open consultations, draft-act feedback windows and funding calls, per recipient.

A notice is *open* while its deadline is today or later; an announced window with no dates yet
(Have Your Say UPCOMING draft act) is listed after the dated ones. Closed ones are never listed.
Working days are counted in Europe/Paris with French public holidays off (``alerts.days``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from alerts.config import Routing
from alerts.digest import KIND_NAMES, fr_date
from alerts.escape import clean, safe_url
from alerts.routing import Candidate, load_candidates, routed_labels
from storage.reader import Archive, json_value, reading

SIGNAL_KINDS = ("consultation", "draft_act", "funding_call")


@dataclass
class DeadlineItem:
    notice_id: int
    title: str
    url: str | None
    kind: str
    opens: date | None
    deadline: date | None
    days_left: int | None
    label: str

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, self.kind)

    @property
    def deadline_text(self) -> str:
        return fr_date(self.deadline) if self.deadline else "date à venir"

    @property
    def left_text(self) -> str:
        if self.days_left is None:
            return "fenêtre annoncée"
        if self.days_left == 0:
            return "dernier jour"
        return f"J-{self.days_left}"


def open_candidates(db: Archive, today: date) -> list[Candidate]:
    """Signal notices still open on ``today`` (or announced without dates), with their scores."""
    sql = "SELECT id, deadline, extra FROM notice WHERE kind IN :kinds AND (deadline >= :today OR deadline IS NULL)"
    with reading(db) as r:
        rows = r.all(sql, {"kinds": SIGNAL_KINDS, "today": r.on(today)})
    upcoming = {i for i, _, extra in rows if (json_value(extra) or {}).get("feedback_status") == "UPCOMING"}
    ids = [i for i, dl, _ in rows if dl is not None or i in upcoming]
    return list(load_candidates(db, ids=ids).values()) if ids else []


def deadline_items(
    cands: list[Candidate], routing: Routing, wanted: tuple[str, ...], today: date
) -> list[DeadlineItem]:
    """The open items routed to one of ``wanted`` labels, by deadline (undated announcements last)."""
    out = []
    for c in cands:
        mine = [k for k in routed_labels(routing, c) if k in wanted]
        if not mine or (c.deadline and c.deadline < today):
            continue
        out.append(
            DeadlineItem(
                notice_id=c.id,
                title=clean(c.title_fr or c.title_en, 300) or f"(sans titre) #{c.id}",
                url=safe_url(c.url),
                kind=c.kind,
                opens=c.opens,
                deadline=c.deadline,
                days_left=(c.deadline - today).days if c.deadline else None,
                label=mine[0],
            )
        )
    return sorted(out, key=lambda i: (i.deadline or date.max, i.notice_id))
