"""A realistic archive for the web tests, built by the real pipeline's stages: the labelled dev set (titles,
summaries, CELEX, dates of real EU items) ingested through ``storage.ingest`` inside crawl runs
(``storage.runs``), scored by the real classifier (``nlp.classify``, the shipped HAS rules, no model), and
delivered by the real alerts code (``alerts.jobs``: alerts and one digest per unit, to the file outbox).
No row here is written by hand: the stored scores, explanations and deliveries have the shape users see."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlmodel import select

from core.config import Settings, load_settings
from core.records import NoticeRecord
from nlp.dataset import DEV_SET
from storage.db import session_scope
from storage.ingest import ingest
from storage.models import Sighting
from storage.runs import finish_run, start_run

DATASET = DEV_SET  # the one copy of the development set, shipped with nlp/
SOURCES = {
    "eurlex": "eurlex-rss",
    "commission": "sante-news",
    "ai_office": "ai-office",
    "ema": "ema-news",
    "ep": "ep-oeil",
    "council": "council",
    "other": "other",
}
DOC_TYPES = {"R": "REG", "L": "DIR", "D": "DEC", "H": "RECO", "P": "PROP", "C": "COM", "X": "OTHER"}


def load_rows(limit: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def record(row: dict) -> NoticeRecord:
    lang = row.get("lang", "en")
    celex = row.get("celex")
    doc_type = DOC_TYPES.get(celex[5:6], "OTHER") if celex else "news"
    return NoticeRecord(
        source=SOURCES.get(row["source"], "other"),
        external_id=row["id"],
        url=row.get("url"),
        celex=celex,
        lang=lang,
        **{f"title_{lang}": row["title"], f"summary_{lang}": row.get("summary")},
        doc_type=doc_type,
        kind="act" if doc_type in ("REG", "DIR", "DEC") else ("proposal" if doc_type == "PROP" else "news"),
        published_at=datetime.fromisoformat(row["date"]).replace(tzinfo=UTC),
    )


def seed(
    engine,
    limit: int | None = None,
    extra: Iterable[NoticeRecord] = (),
    settings: Settings | None = None,
) -> dict[str, int]:
    """Crawl-run, ingest (two versions of the first items), classify and deliver the dev set and ``extra``.

    Returns external id -> notice id. ``settings``: the home whose rules score and whose outbox receives."""
    from alerts import send_alerts, send_digests
    from nlp.classify import classify

    settings = settings or load_settings()
    rows = load_rows(limit)
    for source in sorted({SOURCES.get(r["source"], "other") for r in rows}):
        batch = [r for r in rows if SOURCES.get(r["source"], "other") == source]
        run = start_run(engine, source, "rss")
        stats = ingest(engine, [record(r) for r in batch])
        finish_run(engine, run, ok=True, n_seen=stats.seen, n_new=stats.new, n_updated=stats.updated)
    extra = list(extra)
    if extra:
        run = start_run(engine, "other", "rss")
        stats = ingest(engine, extra)
        finish_run(engine, run, ok=True, n_seen=stats.seen, n_new=stats.new, n_updated=stats.updated)
    # A failing source, for the dashboard (the reason as the crawl words it: crawlers/middlewares.py).
    waf = "https://www.ema.europa.eu/en/news.xml : HTTP 202 au corps vide (défi anti-robot) de www.ema.europa.eu"
    finish_run(engine, start_run(engine, "ema-news", "rss"), ok=False, error=waf)
    # A second version of the first items: a summary that was later corrected.
    changed = []
    for r in rows[:3]:
        rec = record(r)
        field = f"summary_{rec.lang}"
        setattr(rec, field, (getattr(rec, field) or "") + " Corrected on publication in the Official Journal.")
        changed.append(rec)
    ingest(engine, changed)
    classify(engine, settings)  # the shipped rules, no model: real scores and explanations
    # An explicit period, as the demo does, so that the dev set's old dates are delivered rather than archived.
    since = date(2000, 1, 1)
    send_alerts(engine, settings, since=since)
    send_digests(engine, settings, since=since)
    with session_scope(engine) as s:
        return dict(s.exec(select(Sighting.external_id, Sighting.notice_id)).all())
