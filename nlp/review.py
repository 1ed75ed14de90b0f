"""The analysts' loop: what to label next (``veille review``) and how the classifier agrees with the verdicts
given so far (``veille eval --feedback``).

A few minutes of labelling a day teach the model most where its decision is least certain: a stored score
close to its label's threshold, or rules and model that disagree (one selects, the other does not).
Verdicts are ``Feedback`` rows; the next ``veille train`` learns from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.config import Settings
from core.dates import as_day
from core.profiles import unknown_label
from nlp.rules import active_rules
from nlp.scoring import Model, load_model, score_parsed
from nlp.text import parse_notice
from storage.db import session_scope
from storage.models import Feedback, LabelScore, Notice

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


def _thresholds(settings: Settings, model: Model | None) -> dict[str, tuple[float, float, float]]:
    """Per label: (combined threshold, rules' threshold, model's threshold)."""
    rules = active_rules(settings)
    out = {}
    for lb, rt in rules.labels.items():
        t = model.thresholds.get(lb, rt) if model else rt
        mt = model.model_thresholds.get(lb, 0.5) if model else 2.0  # no model: no disagreement
        out[lb] = (t, rt, mt)
    return out


def review(
    engine: Engine, settings: Settings, label: str | None = None, n: int = 20, margin: float = MARGIN
) -> list[ReviewItem]:
    """Up to ``n`` (notice, label) decisions to check, newest notices first: stored scores within ``margin`` of
    their threshold, or where the rules and the model disagree; those an analyst already judged are left out."""
    model = load_model(settings)
    thresholds = _thresholds(settings, model)
    if label is not None and label not in thresholds:
        raise ValueError(unknown_label(label, thresholds))
    conds = []
    for lb, (t, rt, mt) in thresholds.items():
        if label is not None and lb != label:
            continue
        rules_yes = func.coalesce(col(LabelScore.rule_score), 0.0) >= rt
        model_yes = col(LabelScore.model_score) >= mt
        disagree = and_(col(LabelScore.model_score).is_not(None), rules_yes != model_yes)
        near = col(LabelScore.score).between(t - margin, t + margin)
        conds.append(and_(LabelScore.label == lb, or_(near, disagree)))
    judged = select(Feedback.id).where(Feedback.notice_id == LabelScore.notice_id, Feedback.label == LabelScore.label)
    day = func.coalesce(col(Notice.published_at), col(Notice.first_seen))
    q = (
        select(LabelScore, Notice)
        .join(Notice, col(Notice.id) == col(LabelScore.notice_id))
        .where(or_(*conds), ~judged.exists())
        .order_by(day.desc(), col(Notice.id).desc(), col(LabelScore.label))
        .limit(n)
    )
    out = []
    with session_scope(engine) as s:
        for ls, notice in s.exec(q):
            t, rt, mt = thresholds[ls.label]
            reasons = []
            if abs(ls.score - t) <= margin:
                reasons.append("incertain")
            if ls.model_score is not None and ((ls.rule_score or 0) >= rt) != (ls.model_score >= mt):
                reasons.append("règles ≠ modèle")
            when = as_day(notice.published_at) or as_day(notice.first_seen)  # a Brussels day either way
            out.append(
                ReviewItem(
                    notice.id,
                    ls.label,
                    notice.title,
                    when,
                    ls.score,
                    t,
                    ls.rule_score,
                    ls.model_score,
                    ls.selected,
                    reasons,
                )
            )
    return out


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
