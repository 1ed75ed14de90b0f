"""The analysts' loop: what to label next (``veille review``) and how the classifier agrees with the verdicts
given so far (``veille eval --feedback``).

A few minutes of labelling a day teach the model most where its decision is least certain: a stored score
close to its label's threshold, or rules and model that disagree (one selects, the other does not).
Verdicts are ``Feedback`` rows; the next ``veille train`` learns from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from core.dates import as_day
from core.profiles import unknown_label
from nlp.model_files import current_meta
from nlp.rules_load import thresholds_in_force
from storage.reader import Archive, day, instant, reading

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.config import Settings

PARIS = ZoneInfo("Europe/Paris")
MARGIN = 0.15  # a score this close to its threshold is an uncertain decision


@dataclass
class ReviewItem:
    notice_id: int
    label: str
    title: str
    day: date | None  # the notice's date (publication, else first seen), Europe/Paris
    score: float
    threshold: float
    rule_score: float | None
    model_score: float | None
    selected: bool
    reasons: list[str]  # "incertain" (close to the threshold), "règles ≠ modèle"


def _thresholds(settings: Settings) -> dict[str, tuple[float, float, float]]:
    """Per label: (combined threshold, rules' threshold, model's threshold), as the scores were selected with:
    the rules in force and the current model's ``veille_meta.json`` (neither spaCy nor the model loaded)."""
    meta = current_meta(settings)
    out = {}
    for lb, rt in thresholds_in_force(settings).items():
        t = meta["thresholds"].get(lb, rt) if meta else rt
        mt = meta["model_thresholds"].get(lb, 0.5) if meta else 2.0  # no model: no disagreement
        out[lb] = (t, rt, mt)
    return out


# One SQL text for both ways of reading (storage.reader): sqlite3 on the CLI's fast path, SQLAlchemy elsewhere.
_REVIEW = """
SELECT n.id, ls.label, n.title_fr, n.title_en, n.published_at, n.first_seen,
       ls.score, ls.rule_score, ls.model_score, ls.selected
FROM label_score AS ls JOIN notice AS n ON n.id = ls.notice_id
WHERE ({near_or_disagree})
  AND NOT EXISTS (SELECT 1 FROM feedback AS f WHERE f.notice_id = ls.notice_id AND f.label = ls.label)
ORDER BY coalesce(n.published_at, n.first_seen) DESC, n.id DESC, ls.label
LIMIT :n
"""
_LABEL = (
    "(ls.label = :lb{i} AND (ls.score BETWEEN :lo{i} AND :hi{i} OR (ls.model_score IS NOT NULL"
    " AND (coalesce(ls.rule_score, 0.0) >= :rt{i}) <> (ls.model_score >= :mt{i}))))"
)


def review(
    db: Archive, settings: Settings, label: str | None = None, n: int = 20, margin: float = MARGIN
) -> list[ReviewItem]:
    """Up to ``n`` (notice, label) decisions to check, newest notices first: stored scores within ``margin`` of
    their threshold, or where the rules and the model disagree; those an analyst already judged are left out."""
    thresholds = _thresholds(settings)
    if label is not None and label not in thresholds:
        raise ValueError(unknown_label(label, thresholds))
    conds, params = [], {"n": n}
    for i, (lb, (t, rt, mt)) in enumerate(thresholds.items()):
        if label is None or lb == label:
            conds.append(_LABEL.format(i=i))
            params.update({f"lb{i}": lb, f"lo{i}": t - margin, f"hi{i}": t + margin, f"rt{i}": rt, f"mt{i}": mt})
    if not conds:  # a rules file without labels
        return []
    with reading(db) as r:
        rows = r.all(_REVIEW.format(near_or_disagree=" OR ".join(conds)), params)
    return [_item(row, thresholds[row.label], margin) for row in rows]


def _item(row, thresholds: tuple[float, float, float], margin: float) -> ReviewItem:
    t, rt, mt = thresholds
    reasons = []
    if abs(row.score - t) <= margin:
        reasons.append("incertain")
    if row.model_score is not None and ((row.rule_score or 0) >= rt) != (row.model_score >= mt):
        reasons.append("règles ≠ modèle")
    when = day(row.published_at) or as_day(instant(row.first_seen))  # a Brussels day either way
    return ReviewItem(
        row.id,
        row.label,
        row.title_fr or row.title_en or "",
        when,
        row.score,
        t,
        row.rule_score,
        row.model_score,
        bool(row.selected),
        reasons,
    )


@dataclass
class MonthAgreement:
    month: str  # YYYY-MM of the verdicts (Europe/Paris)
    verdicts: int
    agree: int
    false_alerts: int  # selected, the analyst said no
    missed: int  # not selected, the analyst said yes

    @property
    def rate(self) -> float:
        return self.agree / self.verdicts if self.verdicts else 0.0


def feedback_agreement(engine: Engine, settings: Settings) -> list[MonthAgreement]:
    """The classifier in force (rules + model, re-scored now) against the analysts' latest verdict per notice
    and label, by month of the verdict."""
    from sqlmodel import col, select

    from nlp.rules import active_rules
    from nlp.scoring import load_model, score_parsed
    from nlp.text import parse_notice
    from storage.db import session_scope
    from storage.models import Feedback, Notice

    rules = active_rules(settings)
    model = load_model(settings)
    latest: dict[tuple[int, str], Feedback] = {}
    with session_scope(engine) as s:
        for fb in s.exec(select(Feedback).order_by(col(Feedback.created_at), col(Feedback.id))):
            if fb.label in rules.labels:
                latest[(fb.notice_id, fb.label)] = fb
        ids = sorted({nid for nid, _ in latest})
        notices = {n.id: n for n in s.exec(select(Notice).where(col(Notice.id).in_(ids)))} if ids else {}
        rows = dict(zip(ids, score_parsed(rules, model, [parse_notice(notices[i]) for i in ids]), strict=True))
    months: dict[str, MonthAgreement] = {}
    for (nid, lb), fb in sorted(latest.items(), key=lambda kv: kv[1].created_at):
        month = _month(fb.created_at)
        m = months.setdefault(month, MonthAgreement(month, 0, 0, 0, 0))
        selected = rows[nid][lb].selected
        m.verdicts += 1
        m.agree += selected == fb.verdict
        m.false_alerts += selected and not fb.verdict
        m.missed += fb.verdict and not selected
    return [months[k] for k in sorted(months)]


def _month(when: datetime) -> str:
    return when.astimezone(PARIS).strftime("%Y-%m")
