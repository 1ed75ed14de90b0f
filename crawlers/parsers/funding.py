"""Funding & Tenders: grant topics from the bulk file ``grantsTenders.json`` or the SEDIA search API.

Pitfalls handled here (docs/research/signals.md §3):
- the bulk file is ~130 MB: :class:`BulkStream` parses it incrementally with ijson (fed chunk by
  chunk as they arrive), keeping only the wanted topics, never the whole document;
- one notice per topic identifier, whatever the number of languages the search API indexes it in;
- the ``status`` field is unreliable: the deadline comes from the dates, the next cut-off still in
  the future (several cut-offs: ``deadlineDatesLong`` / ``deadlineDate[]``); all past = closed;
- bulk dates are epoch milliseconds, numbers or strings; nested fields (``actions``) may be Python
  reprs inside a string; search-API metadata values are lists of strings;
- tenders (``type`` 0) and stubs without an identifier are skipped.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase

import ijson

from core.dates import brussels_day
from core.records import NoticeRecord
from crawlers.parsers import UNREADABLE, ParseError, Skipped, schemas
from crawlers.parsers.normalise import html_to_text

TOPIC_URL = "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/topic-details/{id}"
BULK_PREFIX = "fundingData.GrantTenderObj.item"


@dataclass
class TopicFilter:
    """Which topics a source keeps: identifier globs, programme divisions, and health-only globs."""

    topics: list[str] = field(default_factory=lambda: ["EU4H-*", "HORIZON-HLTH-*", "HORIZON-MISS-*-CANCER-*"])
    divisions: list[str] = field(default_factory=lambda: ["HORIZON.2.1"])
    health_topics: list[str] = field(default_factory=lambda: ["DIGITAL-*"])  # kept only if about health
    health_terms: list[str] = field(
        default_factory=lambda: ["health", "medical", "patient", "clinical", "hospital", "care", "cancer"]
    )

    @classmethod
    def from_options(cls, options: dict) -> TopicFilter:
        keys = ("topics", "divisions", "health_topics", "health_terms")
        return cls(**{k: list(options[k]) for k in keys if k in options})

    def wants(self, identifier: str, divisions: list[str], text: str) -> bool:
        if any(fnmatchcase(identifier, g) for g in self.topics) or set(divisions) & set(self.divisions):
            return True
        if any(fnmatchcase(identifier, g) for g in self.health_topics):
            low = text.lower()
            return any(t.lower() in low for t in self.health_terms)
        return False


def ms_date(value: object) -> date | None:
    """Epoch milliseconds (number or string) or an ISO timestamp -> its calendar day in Brussels."""
    if value in (None, ""):
        return None
    try:
        return brussels_day(datetime.fromtimestamp(int(float(value)) / 1000, UTC))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        pass
    return brussels_day(str(value).replace("+0000", "+00:00"))


def next_cutoff(cutoffs: Iterable[date | None], today: date) -> tuple[date | None, bool]:
    """(the next cut-off still ahead, or the last one if all passed; closed?)."""
    days = sorted(d for d in cutoffs if d)
    ahead = [d for d in days if d >= today]
    if ahead:
        return ahead[0], False
    return (days[-1] if days else None), bool(days)


def _nested(value: object) -> object:
    """``actions`` and friends: a list, or its JSON / Python repr inside a string."""
    if not isinstance(value, str):
        return value
    for loads in (json.loads, ast.literal_eval):
        try:
            return loads(value)
        except (ValueError, SyntaxError):
            continue
    return None


def _abbr(value: object) -> list[str]:
    value = _nested(value)
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    return [str(v.get("abbreviation")) for v in items if isinstance(v, dict) and v.get("abbreviation")]


def _text_list(value: object) -> list[str]:
    """Keywords and tags, in both modes: a list of strings, a JSON (or Python) list inside a string, or a
    list holding such a string (the search API's ``keywords: ["[\\"Gender research\\", ...]"]``)."""
    value = _nested(value)
    out: list[str] = []
    for item in value if isinstance(value, list) else []:
        inner = _nested(item) if isinstance(item, str) and item.lstrip().startswith("[") else None
        out += [str(v).strip() for v in inner] if isinstance(inner, list) else [str(item).strip()]
    return [v for v in out if v]


def bulk_topic(rec: dict, source: str, wanted: TopicFilter, today: date) -> NoticeRecord | None:
    """One ``GrantTenderObj`` record -> a ``funding_call`` notice, or None (tender, stub, unwanted, closed)."""
    if str(rec.get("type")) != "1" or not rec.get("identifier"):
        return None
    ident = str(rec["identifier"]).strip()
    divisions = _abbr(rec.get("programmeDivision"))
    programme = (_abbr(rec.get("frameworkProgramme")) or [""])[0]
    tags, keywords = _text_list(rec.get("tags")), _text_list(rec.get("keywords"))
    text = " ".join([str(rec.get("title") or ""), str(rec.get("callTitle") or ""), *tags, *keywords])
    if not wanted.wants(ident, divisions, text):
        return None
    cutoffs = [ms_date(v) for v in rec.get("deadlineDatesLong") or []]
    if not cutoffs:  # older records: only inside ``actions``
        for action in _nested(rec.get("actions")) or []:
            if isinstance(action, dict):
                cutoffs += [ms_date(v) for v in action.get("deadlineDates") or []]
    deadline, closed = next_cutoff(cutoffs, today)
    if closed:
        return None
    return _topic_record(
        source,
        ident,
        title=str(rec.get("title") or ident),
        call=rec.get("callIdentifier"),
        call_title=rec.get("callTitle"),
        programme=programme,
        divisions=divisions,
        opens=ms_date(rec.get("plannedOpeningDateLong")),
        published=ms_date(rec.get("publicationDateLong")),
        deadline=deadline,
        cutoffs=cutoffs,
        status=(rec.get("status") or {}).get("abbreviation") if isinstance(rec.get("status"), dict) else None,
        keywords=tags + keywords,
    )


def _topic_record(source: str, ident: str, **f: object) -> NoticeRecord:
    cutoffs = sorted({d for d in f["cutoffs"] if d})  # type: ignore[union-attr]
    summary = f"{f['call_title']} ({f['call']})" if f.get("call_title") else None
    return NoticeRecord(
        source=source,
        external_id=ident,
        url=TOPIC_URL.format(id=ident),
        lang="en",
        title_en=f"{f['title']} [{ident}]",
        summary_en=summary,
        body=str(f.get("description") or "") or None,
        doc_type=f"funding:{f['programme']}" if f.get("programme") else "funding",
        kind="funding_call",
        document_date=f.get("published"),  # type: ignore[arg-type]
        opens=f.get("opens"),  # type: ignore[arg-type]
        deadline=f.get("deadline"),  # type: ignore[arg-type]
        eurovoc=list(dict.fromkeys(f.get("keywords") or []))[:30],  # type: ignore[arg-type]
        extra={
            "topic": ident,
            "call": f.get("call"),
            "programme": f.get("programme"),
            "divisions": f.get("divisions"),
            "cutoffs": [d.isoformat() for d in cutoffs],
            "portal_status": f.get("status"),  # as the portal says; never used for the deadline
        },
    )


class BulkStream:
    """Feed ``grantsTenders.json`` in chunks as they arrive; keeps only the wanted topics' records."""

    def __init__(self, source: str, wanted: TopicFilter, today: date):
        self.records: list[NoticeRecord] = []
        self.seen = 0
        self.skipped = Skipped("fiches de sujet")
        self._source, self._wanted, self._today = source, wanted, today
        self._ids: set[str] = set()
        self._coro = ijson.items_coro(self, BULK_PREFIX, use_float=True)
        self.shapes = schemas.GapCounter(schemas.BulkRecord, "enregistrements grantsTenders")

    def send(self, obj: dict) -> None:  # ijson's sink: one GrantTenderObj at a time
        self.seen += 1
        if isinstance(obj, dict):
            self.shapes.add(obj)
        try:
            rec = bulk_topic(obj, self._source, self._wanted, self._today) if isinstance(obj, dict) else None
        except UNREADABLE as exc:  # one odd record never fails the file
            self.skipped.add(obj.get("identifier") if isinstance(obj, dict) else obj, exc)
            return
        if rec and rec.external_id not in self._ids:
            self._ids.add(rec.external_id)
            self.records.append(rec)

    def feed(self, chunk: bytes) -> None:
        try:
            self._coro.send(chunk)
        except ijson.JSONError as exc:
            raise ParseError(f"grantsTenders.json : JSON invalide : {exc}") from None

    def close(self) -> list[NoticeRecord]:
        try:
            self._coro.close()
        except ijson.JSONError as exc:  # an incomplete body
            raise ParseError(f"grantsTenders.json : JSON invalide : {exc}") from None
        if self.seen == 0:
            raise ParseError(f"grantsTenders.json : aucun {BULK_PREFIX.replace('.item', '')} dans la réponse")
        if self.shapes.missing.get("identifier", 0) == self.seen:
            raise ParseError(f"grantsTenders.json : {BULK_PREFIX}.identifier : absent des {self.seen} enregistrements")
        self.shapes.flush()
        return self.records


def parse_bulk(chunks: Iterable[bytes], source: str, wanted: TopicFilter, today: date) -> list[NoticeRecord]:
    stream = BulkStream(source, wanted, today)
    for chunk in chunks:
        stream.feed(chunk)
    return stream.close()


# --- SEDIA search API (multipart POST) ---------------------------------------------------------


def _first(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    if isinstance(value, list):
        return str(value[0]) if value else None
    return str(value) if value is not None else None


@dataclass
class SearchPage:
    records: list[NoticeRecord]
    results: int
    total: int
    skipped: Skipped = field(default_factory=lambda: Skipped("résultats de recherche"))


def parse_search(body: bytes, source: str, wanted: TopicFilter, today: date, lang: str = "en") -> SearchPage:
    """One page of ``search-api/prod/rest/search``: one record per topic identifier, ``lang`` preferred."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ParseError("recherche SEDIA : pas du JSON") from None
    if not isinstance(data, dict) or "results" not in data:
        raise ParseError("recherche SEDIA : pas de results dans la réponse")
    schemas.check(schemas.SediaSearch, data, "recherche SEDIA")
    best: dict[str, dict] = {}
    skipped = Skipped("résultats de recherche")
    for row in data["results"] or []:
        try:
            meta = row.get("metadata") or {}
            ident = _first(meta, "identifier")
        except UNREADABLE as exc:  # one odd result never fails the page
            skipped.add(row, exc)
            continue
        if not ident or _first(meta, "type") not in ("1", "2", "8"):
            continue  # stubs and tenders
        if ident not in best or (row.get("language") == lang and best[ident].get("language") != lang):
            best[ident] = row
    records = []
    for ident, row in best.items():
        try:
            rec = _search_record(source, ident, row.get("metadata") or {}, row, wanted, today)
        except UNREADABLE as exc:
            skipped.add(ident, exc)
            continue
        if rec is not None:
            records.append(rec)
    return SearchPage(records, len(data["results"] or []), int(data.get("totalResults") or 0), skipped)


def _search_record(
    source: str, ident: str, meta: dict, row: dict, wanted: TopicFilter, today: date
) -> NoticeRecord | None:
    """One search result -> a ``funding_call`` notice, or None (unwanted, closed)."""
    divisions = [str(d) for d in meta.get("programmeDivision") or []]
    keywords = _text_list(meta.get("tags")) + _text_list(meta.get("keywords"))
    text = " ".join([_first(meta, "title") or "", _first(meta, "callTitle") or "", *keywords])
    if not wanted.wants(ident, divisions, text):
        return None
    cutoffs = [ms_date(v) for v in meta.get("deadlineDate") or []]
    deadline, closed = next_cutoff(cutoffs, today)
    if closed:
        return None
    return _topic_record(
        source,
        ident,
        title=_first(meta, "title") or row.get("summary") or ident,
        call=_first(meta, "callIdentifier"),
        call_title=_first(meta, "callTitle"),
        programme=_first(meta, "frameworkProgramme"),
        divisions=divisions,
        opens=ms_date(_first(meta, "startDate")),
        published=None,
        deadline=deadline,
        cutoffs=cutoffs,
        status=_first(meta, "status"),
        keywords=keywords,
        description=html_to_text(_first(meta, "descriptionByte")),
    )


def multipart(fields: dict[str, object], boundary: str) -> bytes:
    """The SEDIA request body: each field a *file* part named "blob" of type application/json."""
    out = []
    for name, value in fields.items():
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="blob"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(value)}\r\n"
        )
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode("utf-8")
