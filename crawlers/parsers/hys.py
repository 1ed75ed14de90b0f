"""Have Your Say (``brpapi``): calls for evidence, public consultations, draft-act feedback windows.

Pitfalls handled here (docs/research/signals.md §2):
1. two list envelopes: ``initiativeResultDtoPage.content`` (current) and HAL ``_embedded.initiativeResultDtoes``;
2. the wrong path answers 200 with the HTML app shell: no envelope means a ParseError, never "no news";
3. ids are floats in the list (``18805.0``) and ints in the detail: always ``int(float(x))``;
4. several live periods on one initiative: status, start and end always come from ONE period
   (:func:`pick_period`); an OPEN period whose end has passed is closed; a window whose start is
   after its end has no usable dates;
5. an UPCOMING ``*_DRAFT`` publication (or ``DRAFT_TO_BE_PUBLISHED``) announces a draft-act window:
   it becomes a ``draft_act`` notice of its own before the window opens.
Dates are ``"2026/09/28 23:59:59"`` with no time zone (Brussels time): the calendar day is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime

from core.records import NoticeRecord
from crawlers.parsers import ParseError, json_type, schemas
from crawlers.parsers.normalise import html_to_text

PAGE_URL = "https://ec.europa.eu/info/law/better-regulation/have-your-say/initiatives/{id}_en"
DRAFT_STAGES = {"ISC_WORKFLOW"}
STAGE_NAMES = {
    "PLANNING_WORKFLOW": "call for evidence",
    "OPC_LAUNCHED": "public consultation",
    "ISC_WORKFLOW": "draft act",
    "ADOPTION_WORKFLOW": "feedback on the adopted proposal or act",
    "INIT_PLANNED": "planned initiative",
}
ACT_RE = re.compile(r"\b(Regulation|Directive|Decision)\s*\((EU|EC|EEC|Euratom)\)\s*(?:No\s*)?(\d{4})/(\d{1,4})\b")
ACT_LETTER = {"Regulation": "R", "Directive": "L", "Decision": "D"}


@dataclass(frozen=True)
class Period:
    stage: str
    status: str  # OPEN | CLOSED | UPCOMING | DISABLED
    start: date | None
    end: date | None
    doc_type: str | None = None  # the publication type (CALL_FOR_EVIDENCE, REG_DEL_DRAFT...)

    @property
    def is_draft(self) -> bool:
        return self.stage in DRAFT_STAGES or bool(self.doc_type and self.doc_type.endswith("_DRAFT"))


def hys_id(value: object) -> int:
    """``18805.0`` (list) and ``18805`` (detail) are the same initiative."""
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParseError(f"id d'initiative qui n'est pas un nombre : {value!r}") from None


def hys_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.strip()[:10], "%Y/%m/%d").date()
    except ValueError:
        return None


def _json(body: bytes, what: str) -> dict:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        head = body[:80].decode("utf-8", "replace").strip().replace("\n", " ")
        raise ParseError(f"{what} : pas du JSON (commence par {head!r})") from None
    if not isinstance(data, dict):
        raise ParseError(f"{what} : le JSON est {json_type(data)}, pas un objet")
    return data


@dataclass
class SearchPage:
    items: list[dict]
    last: bool
    total: int | None


def parse_search(body: bytes) -> SearchPage:
    """One ``searchInitiatives`` page, in either envelope; anything else is a ParseError."""
    data = _json(body, "searchInitiatives")
    schemas.check_hys_search(data)
    if "initiativeResultDtoPage" in data:
        page = data["initiativeResultDtoPage"] or {}
        items = page.get("content") or []
        last = bool(page.get("last", True))
        total = page.get("totalElements")
    elif "_embedded" in data or "page" in data:  # the old HAL shape
        items = (data.get("_embedded") or {}).get("initiativeResultDtoes") or []
        info = data.get("page") or {}
        number, pages = info.get("number", 0), info.get("totalPages", 0)
        last, total = number + 1 >= pages, info.get("totalElements")
    else:
        raise ParseError(f"searchInitiatives : réponse sans initiativeResultDtoPage (clés : {sorted(data)[:6]})")
    if not isinstance(items, list):
        raise ParseError("searchInitiatives : content n'est pas une liste")
    return SearchPage(items, last, total)


def _valid(start: date | None, end: date | None) -> tuple[date | None, date | None]:
    if start and end and start > end:  # 14641: a window that ends before it starts has no usable dates
        return None, None
    return start, end


def periods_from_statuses(item: dict) -> list[Period]:
    out = []
    for st in item.get("currentStatuses") or []:
        start, end = _valid(hys_date(st.get("feedbackStartDate")), hys_date(st.get("feedbackEndDate")))
        out.append(Period(st.get("frontEndStage") or "", (st.get("receivingFeedbackStatus") or "").upper(), start, end))
    return out


def periods_from_publications(detail: dict) -> list[Period]:
    out = []
    for pub in detail.get("publications") or []:
        start = hys_date(pub.get("publishedDate")) or hys_date(pub.get("plannedStartDate"))
        start, end = _valid(start, hys_date(pub.get("endDate")))
        stage = pub.get("frontEndStage") or pub.get("stage") or ""
        out.append(Period(stage, (pub.get("receivingFeedbackStatus") or "").upper(), start, end, pub.get("type")))
    return out


def effective_status(p: Period, today: date) -> str:
    """OPEN with a passed end date is closed; UPCOMING with a passed window (12131) is stale."""
    if p.status == "OPEN" and p.end and p.end < today:
        return "CLOSED"
    if p.status == "UPCOMING" and p.end and p.end < today:
        return "STALE"
    return p.status


def pick_period(periods: list[Period], today: date) -> Period | None:
    """The one period an initiative's status and dates come from.

    Open first (the one closing soonest), then upcoming (the one opening soonest), then the
    most recently closed. Disabled slots never count.
    """

    def rank(p: Period) -> tuple:
        status = effective_status(p, today)
        order = {"OPEN": 0, "UPCOMING": 1, "CLOSED": 2, "STALE": 3}.get(status, 9)
        if order == 0:
            return (0, p.end or date.max)
        if order == 1:
            return (1, p.start or date.max)
        return (order, -(p.end or date.min).toordinal())

    usable = [p for p in periods if p.status not in ("DISABLED", "")]
    return min(usable, key=rank) if usable else None


def related_acts(*texts: str | None) -> list[str]:
    """CELEX of the acts an initiative names ("supplements Regulation (EU) 2026/1388" -> 32026R1388)."""
    out = []
    for text in texts:
        for kind, _, year, num in ACT_RE.findall(text or ""):
            out.append(f"3{year}{ACT_LETTER[kind]}{int(num):04d}")
    return list(dict.fromkeys(out))


def _translation(item: dict, lang: str, field: str = "SHORT_TITLE") -> str | None:
    for t in item.get("initiativeTranslations") or []:
        if (t.get("language") or "").upper() == lang and t.get("field", field) == field and t.get("value"):
            return html_to_text(t["value"])
    return None


def _record(
    source: str, item: dict, detail: dict | None, period: Period | None, kind: str, suffix: str, today: date
) -> NoticeRecord:
    iid = hys_id(item.get("id") if item.get("id") is not None else (detail or {}).get("id"))
    info = {**item, **(detail or {})}
    title_en = _translation(info, "EN") or html_to_text(info.get("shortTitle")) or f"Initiative {iid}"
    summary = html_to_text(info.get("dossierSummary")) if info.get("dossierSummary") else None
    status = effective_status(period, today) if period else None
    stage = STAGE_NAMES.get(period.stage, period.stage) if period else None
    open_window = period and status in ("OPEN", "UPCOMING", "CLOSED")
    return NoticeRecord(
        source=source,
        external_id=f"{iid}{suffix}",
        # Its own URL (the page's draft-act anchor): storage merges notices that share a URL.
        url=PAGE_URL.format(id=iid) + ("#draft-act" if suffix else ""),
        lang="en",
        title_en=title_en + (" — draft act" if suffix else ""),
        title_fr=_translation(info, "FR"),
        summary_en=summary,
        doc_type=(period.doc_type if period and period.doc_type else None) or info.get("foreseenActType"),
        kind=kind,  # type: ignore[arg-type]
        opens=period.start if open_window else None,
        deadline=period.end if open_window else None,
        related_acts=related_acts(title_en, summary, *(info.get("legalBasis") or [])),
        authors=[f"DG {info['dg']}"] if info.get("dg") else [],
        extra={
            "hys_id": iid,
            "reference": info.get("reference"),
            "feedback_status": status,
            "stage": stage,
            "dg": info.get("dg"),
            "act_type": info.get("foreseenActType"),
            "topics": [t.get("code") for t in info.get("topics") or [] if t.get("code")],
        },
    )


def initiative_records(source: str, item: dict, detail: dict | None, today: date) -> list[NoticeRecord]:
    """The consultation (call for evidence, public consultation...) and, when one is announced or open,
    the draft-act feedback window of one initiative: each with status and dates from one period."""
    periods = periods_from_publications(detail) if detail else periods_from_statuses(item)
    consult = pick_period([p for p in periods if not p.is_draft], today)
    draft = pick_period([p for p in periods if p.is_draft], today)
    out = []
    if consult or not draft:
        out.append(_record(source, item, detail, consult, "consultation", "", today))
    announced = "DRAFT_TO_BE_PUBLISHED" in ((detail or {}).get("betterRegulationRequirement") or [])
    if draft or announced:
        upcoming = draft or Period("ISC_WORKFLOW", "UPCOMING", None, None)
        out.append(_record(source, item, detail, upcoming, "draft_act", "-draft", today))
    return out


def parse_detail(body: bytes) -> dict:
    """``groupInitiatives/{id}``: the detail object (with ``publications``), checked."""
    data = _json(body, "groupInitiatives")
    schemas.check(schemas.HysDetail, data, "groupInitiatives")
    if "publications" not in data or "id" not in data:
        raise ParseError(f"groupInitiatives : pas de publications/id dans la réponse (clés : {sorted(data)[:6]})")
    hys_id(data["id"])
    return data
