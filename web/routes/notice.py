"""The notice page (everything the archive knows about one notice) and the feedback form."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import String, cast, or_
from sqlmodel import Session, select

from nlp import verdicts
from nlp.classify import scoring_since, versions_in_force, why_outdated
from nlp.scoring import MODEL_ALONE, model_counts
from storage.db import session_scope
from storage.feedback import describe
from storage.identifiers import resolve_notice
from storage.models import Delivery, Feedback, LabelScore, Notice, NoticeVersion, Sighting
from storage.web_users import WebUser
from web.auth import checked_form, require_analyst, require_user
from web.i18n import N_, _, current
from web.pages import flash, render
from web.views import FieldChange, FiredRule, fired_rules, highlight, snapshot_changes

router = APIRouter()
LABEL_RE = re.compile(r"^[a-z0-9_]{1,40}$")
RELATED_LIMIT = 30
# A notice id the database can hold (64-bit): past it, SQLite raises OverflowError; the app answers 404.
NoticeId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@dataclass
class VersionView:
    row: NoticeVersion
    changes: list[FieldChange]


@dataclass
class ScoreView:
    row: LabelScore
    rules: list[FiredRule]
    words: list[str] = field(default_factory=list)
    verdict: dict | None = None  # an analyst's verdict in force (nlp.verdicts), with who and when

    @property
    def verdict_text(self) -> str:
        return describe(self.verdict, current()) if self.verdict else ""


def eurlex_url(celex: str) -> str:
    return f"https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:{quote(celex, safe='')}"


def safe_href(url: str | None) -> str | None:
    """Only http(s) links from crawled data (never ``javascript:`` and the like)."""
    return url if url and re.match(r"^https?://", url, re.I) else None


def _related(s: Session, n: Notice) -> list[tuple[Notice, str]]:
    """Notices of the same act or procedure, with why they are related."""
    conds, why = [], {}
    acts = {c for c in [*n.related_acts, *n.legal_basis] if c}
    if n.celex:
        # JSON lists compared as text: '"32024R1689"' inside related_acts / legal_basis.
        needle = f'%"{n.celex}"%'
        conds += [Notice.celex == n.celex, cast(Notice.related_acts, String).like(needle)]
        conds.append(cast(Notice.legal_basis, String).like(needle))
    if acts:
        conds.append(Notice.celex.in_(acts))
    if n.procedure:
        conds.append(Notice.procedure == n.procedure)
    if not conds:
        return []
    rows = s.exec(select(Notice).where(Notice.id != n.id, or_(*conds)).order_by(Notice.id.desc()).limit(RELATED_LIMIT))
    out = []
    for r in rows:
        if n.procedure and r.procedure == n.procedure:
            why[r.id] = _("same procedure %(ref)s", ref=n.procedure)
        elif r.celex and r.celex in acts:
            why[r.id] = _("this notice cites %(ref)s", ref=r.celex)
        elif n.celex and r.celex == n.celex:
            why[r.id] = _("same act %(ref)s", ref=n.celex)
        else:
            why[r.id] = _("cites %(ref)s", ref=n.celex)
        out.append((r, why[r.id]))
    return out


def _load(engine, notice_id: int) -> dict:
    with session_scope(engine) as s:
        n = s.get(Notice, notice_id)
        if n is None:
            raise HTTPException(404, _("No notice no. %(id)s.", id=notice_id))
        versions = list(
            s.exec(select(NoticeVersion).where(NoticeVersion.notice_id == n.id).order_by(NoticeVersion.version))
        )
        views, prev = [], None
        for v in versions:
            views.append(VersionView(v, snapshot_changes(prev, v.snapshot)))
            prev = v.snapshot
        scores = []
        for row in s.exec(select(LabelScore).where(LabelScore.notice_id == n.id).order_by(LabelScore.score.desc())):
            rules = fired_rules(row.explanation)
            words = list(dict.fromkeys(w for r in rules for w in r.words))
            scores.append(ScoreView(row, rules, words, verdicts.of(row.explanation)))
        return {
            "n": n,
            "sightings": list(s.exec(select(Sighting).where(Sighting.notice_id == n.id).order_by(Sighting.first_seen))),
            "versions": list(reversed(views)),
            "scores": scores,
            "feedback": list(s.exec(select(Feedback).where(Feedback.notice_id == n.id).order_by(Feedback.id.desc()))),
            "deliveries": list(s.exec(select(Delivery).where(Delivery.notice_id == n.id).order_by(Delivery.id))),
            "related": _related(s, n),
        }


def _outdated(request: Request, n: Notice, scores: list[ScoreView]) -> str | None:
    """Why the stored scores are outdated (made before the rules or model in force, before the text
    reading in force, or before the notice's last change), else None."""
    if not scores:
        return None
    rules, model = in_force = versions_in_force(request.app.state.settings)
    why = why_outdated(scores[0].row, n.updated_at, in_force, scoring_since(request.app.state.engine))
    if why == "versions" and model:
        return _("before the rules %(rules)s and model %(model)s now in force", rules=rules, model=model)
    if why == "versions":
        return _("before the rules %(rules)s now in force", rules=rules)
    reasons = {
        "reading": N_("before this version of veille's text reading and scoring (an upgrade)"),
        "changed": N_("before the notice last changed"),
    }
    return _(reasons[why]) if why in reasons else None


@router.get("/notice/{ref}")
def notice_page(ref: str, request: Request, user: WebUser = Depends(require_user)) -> Response:
    notice_id = resolve_notice(request.app.state.engine, ref)
    if notice_id is None:
        raise HTTPException(404, _("No notice « %(ref)s ».", ref=ref[:60]))
    if ref != str(notice_id):  # /notice/32025R0117: the page lives at its id (its forms post there)
        return RedirectResponse(f"/notice/{notice_id}", status_code=307)
    data = _load(request.app.state.engine, notice_id)
    n = data["n"]
    words = [w for sv in data["scores"] for w in sv.words]
    texts = [
        (name, highlight(getattr(n, attr), words))
        for name, attr in (
            (N_("Title (FR)"), "title_fr"),
            (N_("Title (EN)"), "title_en"),
            (N_("Summary (FR)"), "summary_fr"),
            (N_("Summary (EN)"), "summary_en"),
            (N_("Text"), "body"),
        )
        if getattr(n, attr)
    ]
    return render(
        request,
        "notice.html",
        user=user,
        texts=texts,
        outdated=_outdated(request, n, data["scores"]),
        model_alone=MODEL_ALONE,
        model_counts=model_counts,
        eurlex=eurlex_url(n.celex) if n.celex else None,
        href=safe_href,
        **data,
    )


def _form_label(request: Request, form: dict) -> str:
    """The label a feedback form names: one of the profile's, else a 400."""
    label = form.get("label", "").strip()
    known = request.app.state.labels
    if (known and label not in known) or not LABEL_RE.match(label):
        raise HTTPException(400, _("Unknown label: %(label)s.", label=repr(label[:40])))
    return label


def _must_exist(s, notice_id: int) -> None:
    if s.get(Notice, notice_id) is None:
        raise HTTPException(404, _("No notice no. %(id)s.", id=notice_id))


@router.post("/notice/{notice_id}/feedback")
def give_feedback(
    notice_id: NoticeId,
    request: Request,
    user: WebUser = Depends(require_analyst),
    form: dict = Depends(checked_form),
) -> Response:
    label, known = _form_label(request, form), request.app.state.labels
    verdict = {"right": True, "wrong": False}.get(form.get("verdict", ""))
    if verdict is None:
        raise HTTPException(400, _("The verdict must be 'right' or 'wrong'."))
    comment = form.get("comment", "").strip()[:2000] or None
    with session_scope(request.app.state.engine, write=True) as s:
        _must_exist(s, notice_id)
        verdicts.record(s, notice_id, label, verdict, user.name, comment)  # final for the notice: applied at once
    name = known.get(label, label)
    if verdict:
        flash(request, _("Recorded: “%(label)s” applies to this notice.", label=name))
    else:
        flash(request, _("Recorded: “%(label)s” does not apply to this notice.", label=name))
    return RedirectResponse(f"/notice/{notice_id}#feedback", status_code=303)


@router.post("/notice/{notice_id}/feedback/undo")
def undo_feedback(
    notice_id: NoticeId,
    request: Request,
    user: WebUser = Depends(require_analyst),
    form: dict = Depends(checked_form),
) -> Response:
    """Withdraw the verdict in force on a label: the score decides again (or the verdict before it)."""
    label = _form_label(request, form)
    with session_scope(request.app.state.engine, write=True) as s:
        _must_exist(s, notice_id)
        gone, now = verdicts.undo(s, notice_id, label)
    if gone is None:
        flash(request, _("No verdict on %(label)s for this notice.", label=label))
    elif now:
        then = describe(now.as_dict(), current())
        flash(request, _("Verdict withdrawn on %(label)s; verdict in force: %(then)s.", label=label, then=then))
    else:
        flash(request, _("Verdict withdrawn on %(label)s; the score decides again.", label=label))
    return RedirectResponse(f"/notice/{notice_id}#labels", status_code=303)
