"""Upsert notice records into the archive.

- Same record from the same source again: nothing changes (idempotent).
- Same act from another source (same base CELEX, ELI or canonical URL): one notice, one more sighting.
- Changed content, a corrigendum or a moved deadline: a new ``NoticeVersion``, never an overwrite
  without trace.
A call to :func:`ingest` is one transaction: a crash mid-batch leaves the archive as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session, or_, select

from core.dates import now_utc
from core.records import READER_FIELDS, NoticeRecord, base_celex, canonical_url
from storage.db import session_scope
from storage.fulltext import index_notice
from storage.models import Notice, NoticeVersion, Sighting

LIST_FIELDS = ("related_acts", "legal_basis", "eurovoc")  # merged as unions
# Fields a source may fill in; a later source's non-empty value wins, an empty one never erases: the
# identifiers and language, then every scalar field a reader sees (celex and kind have rules of their own).
MERGED_FIELDS = ("eli", "url", "procedure", "lang") + tuple(
    f for f in READER_FIELDS if f not in LIST_FIELDS and f not in ("celex", "kind")
)
HASHED = READER_FIELDS  # what a reader sees (core.records)
# Dates a better kind of source keeps against a worse one (docs/decisions.md, "Dates"): Cellar's OJ day
# is not overwritten by the day EUR-Lex's RSS loaded the act. Equal ranks: the latest non-empty wins.
DATE_RANK = {"official": 3, "source": 2, "listing": 1}
RANKED_DATES = ("published_at", "document_date")
# A generic kind never replaces a more specific one (a news feed carrying an MDCG guidance item).
KIND_RANK = {"other": 0, "news": 1}
# News items and guidance documents merge on their title (at one page, or from one publisher on one day):
# a news feed and a guidance feed carrying the same item give one notice, whatever kind each says.
NEWS = ("news", "guidance")
PUBLICATIONS = ("news", "guidance", "other")


@dataclass
class IngestStats:
    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_ids: list[int] = field(default_factory=list)  # new or updated notices, to classify

    def add(self, other: IngestStats) -> None:
        for name in ("seen", "new", "updated", "unchanged"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.changed_ids.extend(other.changed_ids)


def notice_hash(n: Notice) -> str:
    payload = {k: getattr(n, k) for k in HASHED}
    payload["corrigenda"] = n.extra.get("corrigenda", [])
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _snapshot(n: Notice) -> dict:
    return json.loads(json.dumps({k: getattr(n, k) for k in HASHED}, default=str))


def _find(session: Session, rec: NoticeRecord, url: str | None) -> Notice | None:
    """The notice this record is another sighting of: same act (CELEX, ELI), same page and kind, or, for a
    news item or guidance document, the same title at the same page or from the same publisher that day."""
    for column, value in ((Notice.celex, base_celex(rec.celex)), (Notice.eli, rec.eli)):
        if value:
            found = session.exec(select(Notice).where(column == value).order_by(Notice.id)).first()
            if found:
                return found
    if rec.kind in NEWS:  # a listing page can be the link of many items (DG SANTE's MDCG guidance page)
        return _same_title(session, rec, url) or _same_news(session, rec, url)
    if url:  # one page can carry two items (a consultation and its draft-act window): kinds must agree
        query = select(Notice).where(Notice.url == url)
        if rec.kind != "other":
            query = query.where(Notice.kind.in_([rec.kind, "other"]))
        return session.exec(query.order_by(Notice.id)).first()
    return None


def _same_title(session: Session, rec: NoticeRecord, url: str | None) -> Notice | None:
    """A news item or guidance document at the same page with the same title."""
    titles = {t for t in (rec.title_en, rec.title_fr) if t}
    if not url or not titles:
        return None
    query = select(Notice).where(Notice.url == url, Notice.kind.in_(PUBLICATIONS)).order_by(Notice.id)
    return next((n for n in session.exec(query) if titles & {n.title_en, n.title_fr}), None)


def _publisher(url: str | None) -> str | None:
    return urlsplit(url).netloc.removeprefix("www.") or None if url else None


def _same_news(session: Session, rec: NoticeRecord, url: str | None) -> Notice | None:
    """A news item or guidance document the same publisher (URL host) put out the same day, same title."""
    titles = [t for t in (rec.title_en, rec.title_fr) if t]
    if not rec.published_at or not titles or not _publisher(url):
        return None
    query = select(Notice).where(
        Notice.published_at == rec.published_at,
        Notice.kind.in_(PUBLICATIONS),
        or_(Notice.title_en.in_(titles), Notice.title_fr.in_(titles)),
    )
    return next((n for n in session.exec(query.order_by(Notice.id)) if _publisher(n.url) == _publisher(url)), None)


def _set_dates(n: Notice, rec: NoticeRecord) -> None:
    """Ranked dates: a record's value replaces the stored one unless a better kind of source gave that."""
    origins = dict(n.extra.get("date_origin", {}))
    for name in RANKED_DATES:
        value = getattr(rec, name)
        if value is None or DATE_RANK[rec.date_origin] < DATE_RANK.get(origins.get(name, ""), 0):
            continue
        setattr(n, name, value)
        origins[name] = rec.date_origin
    if origins:
        n.extra = {**n.extra, "date_origin": origins}


def _apply(n: Notice, rec: NoticeRecord, url: str | None) -> str | None:
    """Merge ``rec`` into ``n``; return why it is a new version (None if nothing changed)."""
    before = notice_hash(n)  # not the stored hash: a change of what is hashed must not look like new content
    if rec.is_corrigendum:
        corr = sorted(set(n.extra.get("corrigenda", [])) | {rec.celex})
        n.extra = {**n.extra, "corrigenda": corr}
        reason = f"corrigendum {rec.celex}"
    else:
        old_deadline = n.deadline
        for name in MERGED_FIELDS:
            value = url if name == "url" else getattr(rec, name)
            if value not in (None, "") and name not in RANKED_DATES:
                setattr(n, name, value)
        for name in LIST_FIELDS:
            merged = list(dict.fromkeys([*getattr(n, name), *getattr(rec, name)]))
            setattr(n, name, merged)
        if KIND_RANK.get(rec.kind, 2) >= KIND_RANK.get(n.kind, 2) and rec.kind != "other":
            n.kind = rec.kind
        if rec.extra:
            n.extra = {**n.extra, **rec.extra}
        _set_dates(n, rec)
        reason = "deadline moved" if old_deadline and n.deadline != old_deadline else "changed"
    n.content_hash = notice_hash(n)
    return None if n.content_hash == before else reason


def _new_notice(rec: NoticeRecord, url: str | None, now: datetime) -> Notice:
    n = Notice(
        celex=base_celex(rec.celex),
        url=url,
        source=rec.source,
        kind=rec.kind,
        first_seen=now,
        updated_at=now,
        content_hash="",
        **{k: getattr(rec, k) for k in MERGED_FIELDS if k != "url"},
        **{k: list(getattr(rec, k)) for k in LIST_FIELDS},
        extra=dict(rec.extra),
    )
    if rec.is_corrigendum:
        n.kind, n.extra = "corrigendum", {**n.extra, "corrigenda": [rec.celex]}
    origins = {name: rec.date_origin for name in RANKED_DATES if getattr(rec, name) is not None}
    if origins:
        n.extra = {**n.extra, "date_origin": origins}
    n.content_hash = notice_hash(n)
    return n


def _version(session: Session, n: Notice, reason: str, rec: NoticeRecord, now: datetime) -> None:
    snap = _snapshot(n)
    if rec.is_corrigendum:
        snap["corrigendum"] = {"celex": rec.celex, "title_en": rec.title_en, "title_fr": rec.title_fr}
    session.add(
        NoticeVersion(
            notice_id=n.id,
            version=n.version,
            reason=reason,
            source=rec.source,
            celex=rec.celex,
            content_hash=n.content_hash,
            snapshot=snap,
            created_at=now,
        )
    )


def upsert(
    session: Session, rec: NoticeRecord, stats: IngestStats, now: datetime | None = None, known: dict | None = None
) -> int:
    """Upsert one record inside the caller's transaction; returns the notice id.

    ``known`` maps (source, external_id) to (content hash, notice id) of existing sightings, when
    the caller fetched them in bulk: an unchanged record then costs no query at all.
    """
    now = now or now_utc()
    stats.seen += 1
    rec_hash = rec.content_hash()
    seen = known.get((rec.source, rec.external_id)) if known is not None else None
    if seen and seen[0] == rec_hash:
        stats.unchanged += 1
        return seen[1]
    sighting = None
    if known is None or seen is not None:  # bulk lookup says whether there is one
        sighting = session.exec(
            select(Sighting).where(Sighting.source == rec.source, Sighting.external_id == rec.external_id)
        ).first()
    url = canonical_url(rec.url)
    if sighting and sighting.content_hash == rec_hash:
        stats.unchanged += 1
        return sighting.notice_id
    notice = session.get(Notice, sighting.notice_id) if sighting else _find(session, rec, url)
    if notice is None:
        notice = _new_notice(rec, url, now)
        session.add(notice)
        session.flush()
        _version(session, notice, "new", rec, now)
        notice.search_key = index_notice(session.connection(), notice, None)
        stats.new += 1
        stats.changed_ids.append(notice.id)
    else:
        reason = _apply(notice, rec, url)
        if reason:
            notice.version += 1
            notice.updated_at = now
            _version(session, notice, reason, rec, now)
            notice.search_key = index_notice(session.connection(), notice, notice.search_key)
            stats.updated += 1
            stats.changed_ids.append(notice.id)
        else:
            stats.unchanged += 1
    if sighting:
        sighting.content_hash, sighting.last_seen, sighting.url = rec_hash, now, url
    else:
        session.add(
            Sighting(
                notice_id=notice.id,
                source=rec.source,
                external_id=rec.external_id,
                url=url,
                celex=rec.celex,
                content_hash=rec_hash,
                first_seen=now,
                last_seen=now,
            )
        )
    session.flush()
    return notice.id


def batched(items: Iterable, n: int):  # itertools.batched is Python 3.12+
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


def _known_sightings(session: Session, chunk: list[NoticeRecord]) -> dict[tuple[str, str], tuple[str, int]]:
    known = {}
    for source in {r.source for r in chunk}:
        ids = [r.external_id for r in chunk if r.source == source]
        rows = session.exec(
            select(Sighting.external_id, Sighting.content_hash, Sighting.notice_id).where(
                Sighting.source == source, Sighting.external_id.in_(ids)
            )
        )
        known.update({(source, ext): (h, nid) for ext, h, nid in rows})
    return known


def ingest(engine: Engine, records: Iterable[NoticeRecord], chunk_size: int = 500) -> IngestStats:
    """Upsert a batch in one transaction: all of it lands, or none of it."""
    stats = IngestStats()
    with session_scope(engine, write=True) as session:
        now = now_utc()
        for chunk in batched(records, chunk_size):
            known = _known_sightings(session, chunk)
            for rec in chunk:
                upsert(session, rec, stats, now, known)
    return stats
