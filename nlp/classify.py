"""Score stored notices per label and store ``LabelScore`` rows (one per notice x label)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from core.config import Settings
from core.dates import now_utc
from nlp.rules import active_rules
from nlp.scoring import MIX_VERSION, gc_paused, load_model, model_counts, score_parsed
from nlp.text import TEXT_VERSION, parse_notice
from nlp.tokencache import TokenCache
from nlp.verdicts import apply_to_rows, latest
from storage.db import session_scope
from storage.fulltext import refresh_labels
from storage.models import KeyValue, LabelScore, Notice

BATCH = 500
SCORING_KEY = "nlp:text_version"  # the key predates MIX_VERSION; kept so that archives keep their moment


@dataclass
class ClassifyStats:
    notices: int = 0
    rows: int = 0
    selected: dict[str, int] = field(default_factory=dict)
    rules_version: str = ""
    model_version: str | None = None


def classify(engine: Engine, settings: Settings, notice_ids: list[int] | None = None) -> ClassifyStats:
    """Score all notices (or ``notice_ids``) and replace their label scores in one transaction."""
    rules = active_rules(settings)
    model = load_model(settings)
    stats = ClassifyStats(rules_version=rules.version, model_version=model.version if model else None)
    cache = TokenCache.for_settings(settings)
    scoring_since(engine)  # recorded before these scores are made, so that they count as current
    when = now_utc()
    with session_scope(engine, write=True) as s:
        todo = sorted(notice_ids) if notice_ids is not None else list(s.exec(select(Notice.id).order_by(Notice.id)))
        for start in range(0, len(todo), BATCH):
            # A batch at a time: bodies run to 200,000 characters, and reading the whole archive first
            # took 438 MiB of Python heap for 2,000 such notices (bench/nlp.py: flat at ~240 MiB now).
            batch = list(
                s.exec(select(Notice).where(col(Notice.id).in_(todo[start : start + BATCH])).order_by(Notice.id))
            )
            with gc_paused():
                parsed = [parse_notice(n) for n in batch]
                scored = score_parsed(rules, model, parsed)
            cache.add_many([(n.id, n.content_hash, p) for n, p in zip(batch, parsed, strict=True)])
            ids = [n.id for n in batch]
            rows = [
                {
                    "notice_id": nid,
                    "label": label,
                    "score": sc.score,
                    "rule_score": sc.rule_score,
                    "model_score": sc.model_score,
                    "selected": sc.selected,
                    "explanation": sc.explanation(),
                    "rules_version": stats.rules_version,
                    "model_version": stats.model_version,
                    "scored_at": when,
                }
                for nid, row in zip(ids, scored, strict=True)
                for label, sc in row.items()
            ]
            # Core statements, not ORM objects: building 7 ORM objects per notice took three quarters of
            # `classify --all`. They bypass the session's flush hook, so the search filter is refreshed here.
            apply_to_rows(s, rows)  # an analyst's verdict overrides the score's selection (nlp.verdicts)
            conn = s.connection()
            other_labels = col(LabelScore.label).not_in(list(rules.labels))  # a label the profile dropped
            conn.execute(delete(LabelScore).where(col(LabelScore.notice_id).in_(ids), other_labels))
            _upsert(conn, rows)
            refresh_labels(conn, ids)
            for r in rows:
                stats.selected[r["label"]] = stats.selected.get(r["label"], 0) + r["selected"]
            stats.rows += len(rows)
            stats.notices += len(batch)
    cache.flush()
    return stats


def _upsert(conn: Connection, rows: list[dict]) -> None:
    """Insert or replace: two cycles scoring the same notice at once (one crawl, one catching up on stale
    scores) both succeed, the last one wins, where delete-then-insert would break the unique constraint."""
    if not rows:  # the batch's notices were deleted meanwhile
        return
    stmt = {"sqlite": sqlite_insert, "postgresql": pg_insert}[conn.dialect.name](LabelScore)
    keep = ("notice_id", "label")
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keep), set_={c: stmt.excluded[c] for c in rows[0] if c not in keep}
    )
    conn.execute(stmt, rows)


def versions_in_force(settings: Settings) -> tuple[str, str | None]:
    """(rules version, model version or None): what a current stored score was made by."""
    model = load_model(settings)
    return active_rules(settings).version, model.version if model else None


def _scoring_version() -> dict[str, int]:
    return {"version": TEXT_VERSION, "mix": MIX_VERSION}


def _is_current(kv: KeyValue | None) -> bool:
    return kv is not None and all(kv.value.get(k) == v for k, v in _scoring_version().items())


def scoring_since(engine: Engine) -> datetime:
    """Since when the archive is read with the current text normalisation (``nlp.text.TEXT_VERSION``) and
    scored with the current combination (``nlp.scoring.MIX_VERSION``): scores made before then are
    outdated, since a new version may read a field's language or its stems, or weigh the model, otherwise.
    Recorded (in ``kv``) the first time this version meets the archive."""
    with session_scope(engine) as s:
        kv = s.get(KeyValue, SCORING_KEY)
        if _is_current(kv):
            return datetime.fromisoformat(kv.value["since"])
    now = now_utc()
    try:
        with session_scope(engine, write=True) as s:
            kv = s.get(KeyValue, SCORING_KEY)
            if _is_current(kv):  # another process was first
                return datetime.fromisoformat(kv.value["since"])
            value = {**_scoring_version(), "since": now.isoformat()}
            if kv is None:
                s.add(KeyValue(key=SCORING_KEY, value=value, updated_at=now))
            else:
                kv.value, kv.updated_at = value, now
    except IntegrityError:  # two processes inserted it at once: the first one's stands
        return scoring_since(engine)
    return now


def why_outdated(
    score: LabelScore, notice_updated_at: datetime, in_force: tuple[str, str | None], since: datetime
) -> str | None:
    """ "versions" when a stored score was made by other rules or another model than ``in_force``,
    "reading" when it was made before the text reading and combination in force (``scoring_since``), "changed" when it
    was made before the notice last changed, else None (``stale_ids`` is the SQL twin)."""
    if (score.rules_version, score.model_version) != in_force:
        return "versions"
    if score.scored_at < since:
        return "reading"
    return "changed" if score.scored_at < notice_updated_at else None


def _outdated(settings: Settings, since: datetime) -> ColumnElement[bool]:
    """Notices whose stored scores are missing, older than the notice or the text reading and combination in force,
    or made by other rules or another model than those in force."""
    rules_version, version = versions_in_force(settings)
    current = exists().where(
        LabelScore.notice_id == Notice.id,
        LabelScore.rules_version == rules_version,
        col(LabelScore.model_version).is_(None) if version is None else LabelScore.model_version == version,
        LabelScore.scored_at >= Notice.updated_at,
        LabelScore.scored_at >= since,
    )
    return ~current


def stale_ids(engine: Engine, settings: Settings, limit: int | None = None) -> list[int]:
    """The notices with outdated scores, most recently changed first (the ones digests and alerts show)."""
    query = select(Notice.id).where(_outdated(settings, scoring_since(engine)))
    query = query.order_by(col(Notice.updated_at).desc(), col(Notice.id).desc())
    with session_scope(engine) as s:
        return list(s.exec(query.limit(limit)))


def count_stale(engine: Engine, settings: Settings) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(Notice).where(_outdated(settings, scoring_since(engine)))).one()


def explain(engine: Engine, settings: Settings, notice_id: int) -> dict:
    """What the web and the digests show: per label the score, the rules that fired and the model's score."""
    rules = active_rules(settings)
    model = load_model(settings)
    with session_scope(engine) as s:
        notice = s.get(Notice, notice_id)
        if notice is None:
            raise KeyError(f"aucune notice d'id {notice_id}")
        stored = {r.label: r for r in s.exec(select(LabelScore).where(LabelScore.notice_id == notice_id))}
        verdicts = latest(s, [notice_id])
    row = score_parsed(rules, model, [parse_notice(notice)])[0]
    in_force = (rules.version, model.version if model else None)
    since = scoring_since(engine)
    labels = {}
    evidence = any(sc.rule_score > 0 for sc in row.values())
    for label, sc in row.items():
        old = stored.get(label)
        verdict = verdicts.get((notice_id, label))
        labels[label] = {
            "score": sc.score,
            "rule_score": sc.rule_score,
            "model_score": sc.model_score,
            "model_counted": sc.model_score is not None and model_counts(sc.rule_score, sc.model_score, evidence),
            "threshold": sc.threshold,
            "selected": sc.selected if verdict is None else verdict.applies,
            "score_selected": sc.selected,
            "verdict": verdict.as_dict() if verdict else None,
            "fired": sc.fired,
            "stored": None
            if old is None
            else {
                "score": old.score,
                "selected": old.selected,
                "rules_version": old.rules_version,
                "model_version": old.model_version,
                "scored_at": old.scored_at.isoformat(),
                "outdated": why_outdated(old, notice.updated_at, in_force, since),
            },
        }
    return {
        "notice_id": notice_id,
        "title": notice.title_fr or notice.title_en or "",
        "rules_version": rules.version,
        "model_version": model.version if model else None,
        "labels": labels,
    }
