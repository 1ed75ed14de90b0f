"""Draw the stream set ``nlp/data/stream_sample.jsonl`` from the repo's real recorded payloads.

    python bench/stream_draw.py            # rewrite the set (labels from nlp/data/stream_labels.json)
    python bench/stream_draw.py --unlabelled   # list the drawn items no label decision covers yet

Whole payloads are taken (every item a parser returns, no filtering on topic), parsed by the real
parsers of ``crawlers/parsers`` into NoticeRecords, and written in the development set's schema with
their provenance. Labels are an analyst's reading of title, summary and subject, kept apart in
``nlp/data/stream_labels.json`` (id -> labels, rationale) so that a redraw never loses them. Each item
is on the ``tune`` or the ``check`` half by a hash of its id, fixed before any measurement.
See nlp/data/README.md, "The stream set".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose nlp.py would shadow the package

from core.records import NoticeRecord  # noqa: E402
from crawlers.parsers import ep, feed, hys, registers  # noqa: E402

FIX = ROOT / "tests" / "data" / "fixtures"
BUNDLE = ROOT / "crawlers" / "replay" / "bundle" / "bodies"
OUT = ROOT / "nlp" / "data" / "stream_sample.jsonl"
LABELS = ROOT / "nlp" / "data" / "stream_labels.json"
TODAY = date(2026, 12, 7)  # the day the set was drawn: HYS feedback windows are read as of then
BODY_CHARS = 2000  # the classifier reads the body's start; the set keeps what it would read

# (payload, source name, parser): every payload here is a real capture (PROVENANCE.md, replay README).
FEEDS = [
    (FIX / "commission" / "commission_newsroom-sandbox-fullrss-2015-06.xml", "commission_newsroom"),
    (FIX / "commission" / "commission_newsroom-cnect-acc-feedfull-2022-01.xml", "commission_newsroom"),
    (BUNDLE / "digital-strategy-REAL-newsroom-dae-2014.xml", "digital_strategy"),
]
ODP = [*sorted((FIX / "ep_odp").glob("*.json")), BUNDLE / "REAL-odp_procedure_2025-0581.json"]
OEIL = [*sorted((FIX / "oeil").glob("*.html")), *sorted(BUNDLE.glob("REAL-oeil_*.html"))]
HYS = [
    FIX / "have_your_say" / "hys_searchInitiatives_text-gender_size2_2026-09-01.json",
    BUNDLE / "REAL-hys_searchInitiatives_nofilter_size3.json",
]
COMITOLOGY = FIX / "comitology" / "cordisdata_documents_87890c7.json"
SPARQL_TITLES = FIX / "sparql" / "cellar_sparql_titles_dates_eurovoc_20230724-045243.json"


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def records() -> Iterator[tuple[NoticeRecord, str]]:
    """(record, payload path) for every item of every payload, in a fixed order."""
    for path, source in FEEDS:
        for rec in feed.parse_feed(path.read_bytes(), source=source, lang="en"):
            yield rec, _rel(path)
    for path in ODP:
        for rec in ep.parse_ep_odp(path.read_bytes(), source="ep_odp"):
            yield rec, _rel(path)
    for path in OEIL:
        for rec in ep.parse_oeil(path.read_bytes(), source="oeil"):
            yield rec, _rel(path)
    for path in HYS:
        for item in hys.parse_search(path.read_bytes()).items:
            for rec in hys.initiative_records("have_your_say", item, None, TODAY):
                yield rec, _rel(path)
    # The stored items without their page envelope (PROVENANCE.md): wrapped as the API sends them.
    page = json.dumps({"content": json.loads(COMITOLOGY.read_bytes()), "last": True}).encode()
    for rec in registers.parse_documents(page, "comitology", {})[0]:
        yield rec, _rel(COMITOLOGY)
    yield from _sparql_titles()


def _sparql_titles() -> Iterator[tuple[NoticeRecord, str]]:
    """A real Cellar answer in another query's shape (title, date, EuroVoc labels, CELEX): read field
    by field, as parse_details reads ours."""
    from crawlers.parsers.sparql import load_results, split_concat, value

    for b in load_results(SPARQL_TITLES.read_bytes()):
        celex = value(b, "celexIds")
        rec = NoticeRecord(
            source="cellar_sparql",
            external_id=celex or value(b, "cellarURIs") or "",
            url=f"https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:{celex}" if celex else None,
            celex=celex,
            lang="en",
            title_en=value(b, "workTitles"),
            document_date=value(b, "workDates"),
            eurovoc=split_concat(value(b, "subjects")),
        )
        yield rec, _rel(SPARQL_TITLES)


def item_id(rec: NoticeRecord) -> str:
    return "stream-" + hashlib.sha1(f"{rec.source}|{rec.external_id}".encode()).hexdigest()[:10]


def half(item_id_: str) -> str:
    """tune or check: a hash of the id, so that the halves never depend on the file's order or size."""
    return "tune" if int(hashlib.sha256(item_id_.encode()).hexdigest(), 16) % 2 == 0 else "check"


def to_item(rec: NoticeRecord, payload: str) -> dict:
    day = rec.published_at or rec.document_date
    item = {
        "id": item_id(rec),
        "source": rec.source,
        "lang": "fr" if (rec.title_fr and not rec.title_en) else "en",
        "title": rec.title_en or rec.title_fr or rec.external_id,
        "summary": rec.summary_en or rec.summary_fr or "",
        "body": (rec.body or "")[:BODY_CHARS],
        "date": day.isoformat()[:10] if day else None,
        "url": rec.url,
        "celex": rec.celex,
        "doc_type": rec.doc_type,
        "kind": rec.kind,
        "eurovoc": rec.eurovoc,
        "legal_basis": rec.legal_basis,
        "related_acts": rec.related_acts,
        "payload": payload,
        "external_id": rec.external_id,
    }
    item["split"] = half(item["id"])
    return {k: v for k, v in item.items() if v not in (None, "", [])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--unlabelled", action="store_true", help="print the items without a label decision")
    a = ap.parse_args()
    decided = json.loads(LABELS.read_text(encoding="utf-8")) if LABELS.exists() else {}
    items, seen = [], set()
    for rec, payload in records():
        it = to_item(rec, payload)
        if it["id"] in seen:  # the same item in two payloads (a feed recorded twice) counts once
            continue
        seen.add(it["id"])
        items.append(it)
    if a.unlabelled:
        for it in items:
            if it["id"] not in decided:
                print(f"{it['id']}\t{it['source']}\t{it['title'][:160]}\t| {it.get('summary', '')[:200]}")
        return
    missing = [it["id"] for it in items if it["id"] not in decided]
    if missing:
        sys.exit(f"{len(missing)} drawn item(s) have no label decision in {_rel(LABELS)}, e.g. {missing[0]}")
    with OUT.open("w", encoding="utf-8") as fh:
        for it in items:
            labels, rationale = decided[it["id"]]
            fh.write(json.dumps({**it, "labels": labels, "rationale": rationale}, ensure_ascii=False) + "\n")
    print(f"{len(items)} items -> {_rel(OUT)}")


if __name__ == "__main__":
    main()
