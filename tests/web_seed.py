"""A realistic archive for the web tests: the labelled dev set (titles, summaries, CELEX, dates of
real EU items), ingested through storage.ingest, with label scores, versions, crawl runs and
deliveries. The scores are synthetic (the gold labels with a deterministic score and an explanation
naming the words that a seed rule would match); nlp writes the real ones."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from nlp.dataset import DEV_SET
from storage.db import session_scope
from storage.ingest import ingest
from storage.models import Delivery, LabelScore, Notice, Sighting
from storage.runs import finish_run, start_run
from veille.records import NoticeRecord

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
KEYWORDS = {
    "deai": [
        "évaluation des technologies de la santé",
        "health technology assessment",
        "HTA",
        "dispositifs médicaux",
        "medical devices",
        "joint clinical assessment",
        "évaluations cliniques communes",
        "medicinal products",
        "diagnostic in vitro",
        "consultations scientifiques communes",
        "vaccine",
    ],
    "sante_publique": [
        "santé publique",
        "public health",
        "cancer",
        "vaccination",
        "antimicrobial",
        "prevention",
        "mental health",
        "tobacco",
        "health threats",
    ],
    "daqss": [
        "patient safety",
        "sécurité des patients",
        "quality of care",
        "substances of human origin",
        "SoHO",
        "soins transfrontaliers",
        "cross-border healthcare",
        "antimicrobial",
    ],
    "diqasm": [
        "disability",
        "handicap",
        "persons with disabilities",
        "long-term care",
        "older persons",
        "personnes handicapées",
        "social inclusion",
        "child guarantee",
    ],
    "numerique": [
        "European Health Data Space",
        "espace européen des données de santé",
        "artificial intelligence",
        "intelligence artificielle",
        "health data",
        "données de santé",
        "AI Act",
        "interoperability",
    ],
    "international": [
        "Council conclusions",
        "conclusions du Conseil",
        "WHO",
        "EU4Health",
        "cooperation",
        "global health",
    ],
    "deontologie": [
        "conflicts of interest",
        "conflits d'intérêts",
        "transparency",
        "declarations of interests",
        "whistleblowers",
        "ethics",
    ],
}


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


def _unit(*parts: str) -> float:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _explanation(label: str, text: str) -> dict:
    low = text.lower()
    hits = [k for k in KEYWORDS[label] if k.lower() in low]
    rules = [
        {
            "rule": f"{label}/seed:{k}",
            "label": label,
            "weight": round(0.3 + 0.4 * _unit(label, k), 2),
            "words": [k],
            "field": "title",
        }
        for k in hits
    ]
    return {"fired": rules}


def seed(engine, limit: int | None = None) -> dict[str, int]:
    """Ingest the dev set, then score, version, crawl-run and deliver some of it. Returns dev id -> notice id."""
    rows = load_rows(limit)
    ids: dict[str, int] = {}
    for source in sorted({SOURCES.get(r["source"], "other") for r in rows}):
        batch = [r for r in rows if SOURCES.get(r["source"], "other") == source]
        run = start_run(engine, source, "rss")
        stats = ingest(engine, [record(r) for r in batch])
        finish_run(engine, run, ok=True, n_seen=stats.seen, n_new=stats.new, n_updated=stats.updated)
    # A failing source, for the dashboard.
    finish_run(engine, start_run(engine, "ema-news", "rss"), ok=False, error="202 with empty body (WAF challenge)")
    with session_scope(engine) as s:
        for sid, nid in s.exec(select(Sighting.external_id, Sighting.notice_id)):
            ids[sid] = nid
    # A second version of the first items: a summary that was later corrected.
    changed = []
    for r in rows[:3]:
        rec = record(r)
        field = f"summary_{rec.lang}"
        setattr(rec, field, (getattr(rec, field) or "") + " Corrected on publication in the Official Journal.")
        changed.append(rec)
    ingest(engine, changed)
    now = datetime.now(UTC)
    scored: set[tuple[int, str]] = set()
    with session_scope(engine, write=True) as s:
        for r in rows:
            nid = ids[r["id"]]
            n = s.get(Notice, nid)
            text = " ".join(filter(None, [n.title_fr, n.title_en, n.summary_fr, n.summary_en]))
            gold = set(r.get("labels", []))
            for label in KEYWORDS:
                if label in gold:
                    score = round(0.55 + 0.42 * _unit(r["id"], label), 3)
                elif _unit("neg", r["id"], label) < 0.12:
                    score = round(0.05 + 0.35 * _unit(r["id"], label), 3)
                else:
                    continue
                if (nid, label) in scored:  # both languages of one act are one notice
                    continue
                scored.add((nid, label))
                s.add(
                    LabelScore(
                        notice_id=nid,
                        label=label,
                        score=score,
                        rule_score=score,
                        selected=score >= 0.5,
                        explanation=_explanation(label, text),
                        rules_version="seed",
                        scored_at=now,
                    )
                )
            if gold and _unit("deliver", r["id"]) < 0.3:
                status = "sent" if _unit("st", r["id"]) < 0.8 else "pending"
                s.add(
                    Delivery(
                        notice_id=nid,
                        recipient=f"{sorted(gold)[0]}@has-sante.fr",
                        channel="email",
                        purpose="digest",
                        status=status,
                        created_at=now - timedelta(days=1),
                        sent_at=now if status == "sent" else None,
                    )
                )
    return ids
