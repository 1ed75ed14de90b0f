"""Comitology Register (draft implementing acts) and Register of delegated acts (RegDel).

Comitology follows a real capture of ``documents/search`` items (tests/data/fixtures/comitology/); RegDel
follows its documented shape (docs/research/signals.md §4, §6: no public capture).

Comitology: ``/core/api/front/committees`` (lookup: code, ``committeeTitles[{title}]``) and
``/core/api/front/documents/search`` (Spring page: ``content[]`` with ``documentReference, version,
title, committeeCode, committeeTitle, creationDate, meetingStartDate, meetingEndDate,
documentType{label,letter}``). Its dates are Brussels midnights in UTC (``2026-07-27T22:00:00Z`` is the
28 July); most meetings are written procedures, whose end is the deadline.
A document is keyed on its reference; a new version is an update of the same notice. When the
API is down it answers 200 with HTML: that is a ParseError, never an empty register.

RegDel: ``POST /regdel/web/delegatedActs`` -> ``{list:[{id, cCode, celexNumber, delegatedActStatus,
completeTitle, plannedAdoptionDate, basicLegislativeAct, ...}]}`` (the Excel export's columns in
the JSON API's camelCase). Planned acts (no CCode yet) and adopted-but-unpublished acts (the
scrutiny window) are the early signal; published ones are in the Official Journal anyway.
"""

from __future__ import annotations

import json
import re
from datetime import date

from core.celex import bare_celex_in_text, normalise_celex
from core.records import NoticeRecord
from crawlers.parsers import ParseError, schemas
from crawlers.parsers.normalise import to_date

DOC_URL = "https://ec.europa.eu/transparency/comitology-register/screen/documents/{ref}/{version}/consult?lang=en"
REGDEL_URL = "https://webgate.ec.europa.eu/regdel/#/delegatedActs/{id}?lang=en"
DRAFT_LETTERS = {"D"}
# How the failure reasons name the register's answers.
COMMITTEES, DOCUMENTS = "comités de comitologie", "documents de comitologie"
REGDEL_KEEP = {"planned", "adopted", "scrutiny", "objection", "extended"}
BASIC_ACT_RE = re.compile(r"\b(?:Regulation|Directive)\s*\((?:EU|EC)\)\s*(?:No\s*)?(\d{4})/(\d{1,4})")


def _json(body: bytes, what: str) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        head = body[:60].decode("utf-8", "replace").strip().replace("\n", " ")
        raise ParseError(f"{what} : pas du JSON (commence par {head!r})") from None


def parse_committees(body: bytes) -> dict[str, str]:
    """Committee code -> its (first) title, from the lookup (a list or a Spring page)."""
    data = _json(body, COMMITTEES)
    rows = data.get("content") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ParseError(f"{COMMITTEES} : ni une liste ni une page avec content[]")
    schemas.check_committees(rows)
    out = {}
    for c in rows:
        if not isinstance(c, dict) or not c.get("code"):
            continue
        titles = [t.get("title") for t in c.get("committeeTitles") or [] if isinstance(t, dict) and t.get("title")]
        out[str(c["code"])] = titles[0] if titles else str(c.get("title") or c["code"])
    return out


def match_committees(committees: dict[str, str], wanted: dict[str, str]) -> dict[str, str]:
    """Committee code -> the watched act's CELEX, for committees whose title names a watched act."""
    out = {}
    for code, title in committees.items():
        for words, celex in wanted.items():
            if code == words or words.lower() in title.lower():
                out[code] = celex
                break
    return out


def parse_documents(body: bytes, source: str, acts: dict[str, str]) -> tuple[list[NoticeRecord], bool]:
    """One page of document search -> (draft implementing acts, last page?)."""
    data = _json(body, DOCUMENTS)
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise ParseError(f"{DOCUMENTS} : pas de content[] dans la réponse")
    schemas.check(schemas.ComitologyPage, data, DOCUMENTS)
    out = []
    for doc in data["content"]:
        dtype = doc.get("documentType") or {}
        letter = str(dtype.get("letter") or "")
        if letter not in DRAFT_LETTERS and "draft" not in str(dtype.get("label") or "").lower():
            continue
        ref, version = str(doc.get("documentReference") or ""), str(doc.get("version") or "1")
        if not ref:
            continue
        code = str(doc.get("committeeCode") or "")
        # Dates come as Brussels midnight in UTC (``…T22:00:00Z``): to_date gives the Brussels day. Most
        # "meetings" are written procedures lasting days or weeks: the opinion is due at their end.
        start, end = to_date(doc.get("meetingStartDate")), to_date(doc.get("meetingEndDate"))
        out.append(
            NoticeRecord(
                source=source,
                external_id=ref,
                url=DOC_URL.format(ref=ref, version=version),
                lang="en",
                title_en=str(doc.get("title") or ref),
                summary_en=f"Draft implementing act for the committee {doc.get('committeeTitle') or code}",
                doc_type="DRAFT_IMPL",
                kind="draft_act",
                document_date=to_date(doc.get("creationDate")),
                opens=to_date(doc.get("creationDate")),
                deadline=end or start,  # the end of the committee's meeting or written procedure
                related_acts=[acts[code]] if code in acts else [],
                extra={
                    "committee": code,
                    "version": version,
                    "meeting": doc.get("meetingCode"),
                    "meeting_start": start.isoformat() if start else None,
                },
            )
        )
    return out, bool(data.get("last", True))


def _basic_celex(text: str | None) -> str | None:
    m = BASIC_ACT_RE.search(text or "")
    return f"3{m.group(1)}R{int(m.group(2)):04d}" if m else None


def parse_regdel(body: bytes, source: str, watched: list[str]) -> list[NoticeRecord]:
    """Planned and adopted-not-yet-published delegated acts of the watched basic acts."""
    data = _json(body, "RegDel delegatedActs")
    rows = data.get("list") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ParseError("RegDel delegatedActs : pas de list[] dans la réponse")
    schemas.check(schemas.RegDelList, data, "RegDel delegatedActs")
    out = []
    for row in rows:
        status = str(row.get("delegatedActStatus") or row.get("status") or "")
        if not any(k in status.lower() for k in REGDEL_KEEP) or row.get("id") is None:
            continue
        basic = str(row.get("basicLegislativeAct") or "")
        basis = bare_celex_in_text(basic) or [c for c in [_basic_celex(basic)] if c]
        if watched and not set(basis) & set(watched):
            continue
        celex = str(row.get("celexNumber") or "").strip() or None
        planned: date | None = to_date(row.get("plannedAdoptionDate"))
        out.append(
            NoticeRecord(
                source=source,
                external_id=f"regdel-{row['id']}",
                url=REGDEL_URL.format(id=row["id"]),
                lang="en",
                celex=normalise_celex(celex),
                title_en=str(row.get("completeTitle") or row.get("title") or f"Delegated act {row['id']}"),
                summary_en=f"Delegated act — {status}"
                + (f"; planned adoption {planned.isoformat()}" if planned else ""),
                doc_type="REG_DEL",
                kind="draft_act",
                related_acts=basis,
                authors=[str(row["leadingService"])] if row.get("leadingService") else [],
                extra={"regdel_status": status, "ccode": row.get("cCode"), "planned_adoption": str(planned or "")},
            )
        )
    return out
