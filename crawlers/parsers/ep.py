"""European Parliament procedure files: EP Open Data JSON-LD and OEIL HTML -> one record each.

A procedure is one notice (kind ``procedure``) whose text lists its events; a new event changes the
text, so storage keeps it as a new version of the same notice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime

import lxml.html
from lxml import etree
from pydantic import ValidationError

from core.records import NoticeRecord
from crawlers.parsers import ParseError, Skipped, json_type, schemas
from crawlers.parsers.normalise import celex_from_text, clean_text, to_utc, without_controls

OEIL_URL = "https://oeil.secure.europarl.europa.eu/oeil/en/procedure-file?reference={ref}"
PROCEDURE_RE = re.compile(r"\b(\d{4})[/-](\d{4})\(?([A-Z]{3})?\)?")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_EVENTS = 60


def oeil_url(procedure: str) -> str:
    return OEIL_URL.format(ref=procedure)


def _event_name(event: dict) -> str:
    """``def/ep-activities/PLENARY_VOTE`` -> "plenary vote"; an event without an activity type is named
    by its own type and the document it decided on ("decision TA-9-2024-0315"), never left empty."""
    activity = event.get("had_activity_type")
    if isinstance(activity, str) and activity.strip():
        return activity.rsplit("/", 1)[-1].replace("_", " ").lower()
    name = str(event.get("type") or "event").replace("_", " ").lower()
    docs = event.get("decided_on_a_realization_of") or event.get("recorded_in_a_realization_of") or []
    docs = [d.rsplit("/", 1)[-1] for d in (docs if isinstance(docs, list) else [docs]) if isinstance(d, str)]
    return " ".join([name, *docs[:2]])


def _events(proc: dict, warn: Callable[[str], None]) -> list[dict]:
    """The dated events of a procedure, oldest first; what cannot be read is skipped and reported."""
    raw = proc.get("consists_of") or []
    if not isinstance(raw, list):
        warn(f"consists_of est {json_type(raw)}, pas une liste d'événements : événements ignorés")
        return []
    events, skipped = [], Skipped("événements")
    for e in raw:
        if isinstance(e, dict) and isinstance(e.get("activity_date"), str) and DATE_RE.match(e["activity_date"]):
            events.append(e)
        elif not (isinstance(e, dict) and e.get("activity_date") is None):  # an undated event is not an error
            skipped.add(e.get("id") if isinstance(e, dict) else e)
    if msg := skipped.message(len(raw)):
        warn(msg)
    return sorted(events, key=lambda e: (e["activity_date"], str(e.get("activity_id", ""))))


def _lead_committees(proc: dict) -> list[str]:
    out = []
    for p in proc.get("had_participation") or []:
        if isinstance(p, dict) and str(p.get("participation_role") or "").endswith("COMMITTEE_LEAD"):
            orgs = p.get("had_participant_organization") or []
            out += [o.rsplit("/", 1)[-1] for o in (orgs if isinstance(orgs, list) else [orgs]) if isinstance(o, str)]
    return out


def parse_ep_odp(body: bytes, *, source: str, warn: Callable[[str], None] | None = None) -> list[NoticeRecord]:
    """``/api/v2/procedures/{id}?format=application/ld+json`` -> one procedure record. An event that
    cannot be read is skipped and reported through ``warn``: one odd event never loses the procedure."""
    if not body.strip():
        raise ParseError("réponse vide au lieu du JSON EP Open Data attendu")
    try:
        data = json.loads(body)
        proc = data["data"][0]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise ParseError(f"pas un document de procédure EP Open Data ({type(exc).__name__})") from None
    schemas.check(schemas.OdpAnswer, data, "procédure EP Open Data")
    if not isinstance(proc, dict):
        raise ParseError(f"EP Open Data : data[0] est {json_type(proc)}, pas un objet procédure")
    try:
        return [_odp_record(proc, source, warn or (lambda _msg: None))]
    except (AttributeError, TypeError, KeyError, ValidationError) as exc:  # a field of another type than documented
        raise ParseError(f"procédure EP Open Data de forme inattendue ({type(exc).__name__}: {exc})") from None


def _odp_record(proc: dict, source: str, warn: Callable[[str], None]) -> NoticeRecord:
    label = proc.get("label") or proc.get("process_id")
    if not label:
        raise ParseError("procédure EP Open Data sans label")
    titles = proc.get("process_title") or {}
    events = _events(proc, lambda msg: warn(f"procédure {label} : {msg}"))
    lines = [f"{e['activity_date']}: {_event_name(e)}" for e in events[-MAX_EVENTS:]]
    latest = events[-1] if events else None
    return NoticeRecord(
        source=source,
        external_id=f"procedure:{label}",
        url=oeil_url(label),
        procedure=label,
        lang="en",
        title_en=clean_text(titles.get("en")) or None,
        title_fr=clean_text(titles.get("fr")) or None,
        summary_en=f"Latest event {latest['activity_date']}: {_event_name(latest)}" if latest else None,
        body="\n".join(lines) or None,
        doc_type=(proc.get("process_type") or "").rsplit("/", 1)[-1] or None,
        kind="procedure",
        published_at=to_utc(latest["activity_date"]) if latest else None,
        authors=_lead_committees(proc),  # lead committee, e.g. ECON
        extra={"stage": (proc.get("current_stage") or "").rsplit("/", 1)[-1]},
    )


def _oeil_events(doc: lxml.html.HtmlElement) -> list[tuple[datetime | None, str, str]]:
    events = []
    for tr in doc.cssselect("#section3 tr"):
        cells = [clean_text(td.text_content()) for td in tr.cssselect("td")]
        if len(cells) >= 2 and re.match(r"\d{2}/\d{2}/\d{4}", cells[0]):
            d, m, y = cells[0][:10].split("/")
            events.append((to_utc(f"{y}-{m}-{d}"), cells[1], cells[2] if len(cells) > 2 else ""))
    return events


def _note_oeil_gaps(events: list, title: list) -> None:
    """An HTML page has no declared answer model: a key-events table or a title heading that is no longer
    where we read it is counted on the run (docs/sources-health.md), never a silent procedure without them."""
    what = "pages de procédure OEIL"
    schemas.note(schemas.Gap(what, "", 0, 1))
    schemas.note(schemas.Gap(what, "événements clés (tableau #section3)", 0 if events else 1, 1))
    schemas.note(schemas.Gap(what, "titre (h2.es_title-h2)", 0 if title else 1, 1))


def parse_oeil(body: bytes, *, source: str) -> list[NoticeRecord]:
    """OEIL procedure-file page -> one procedure record (title, key events, final act CELEX)."""
    if not body.strip():
        raise ParseError("réponse vide au lieu de la page de procédure OEIL attendue")
    try:
        doc = lxml.html.document_fromstring(without_controls(body))
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"page OEIL illisible : {exc}") from None
    ref = doc.cssselect("h2.es_title-h1")
    title = doc.cssselect("h2.es_title-h2")
    if not ref or not PROCEDURE_RE.search(ref[0].text_content()):
        raise ParseError("pas une page de procédure OEIL (aucun titre avec la référence de la procédure)")
    label = clean_text(ref[0].text_content())
    events = _oeil_events(doc)
    _note_oeil_gaps(events, title)
    hrefs = doc.xpath("//a/@href")
    final_celex = next((c for c in (celex_from_text(h.replace("numdoc=", "CELEX:")) for h in hrefs) if c), None)
    lines = [f"{when.date().isoformat() if when else '?'}: {what} {ref_}".strip() for when, what, ref_ in events]
    dated = [e for e in events if e[0]]
    latest = max(dated, key=lambda e: e[0]) if dated else None
    return [
        NoticeRecord(
            source=source,
            external_id=f"procedure:{label}",
            url=oeil_url(label),
            procedure=label,
            lang="en",
            title_en=clean_text(title[0].text_content()) if title else None,
            summary_en=f"Latest event {latest[0].date().isoformat()}: {latest[1]}" if latest else None,
            body="\n".join(lines[-MAX_EVENTS:]) or None,
            doc_type=label[-4:-1] if label.endswith(")") else None,
            kind="procedure",
            published_at=latest[0] if latest else None,
            related_acts=[final_celex] if final_celex else [],
        )
    ]
