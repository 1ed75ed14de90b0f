"""Which (notice, recipient, channel, purpose) deliveries are due.

Plain data in, plain data out: :func:`load_candidates` reads notices and their label scores from the
archive; the rest is pure. An item with several labels reaches every unit concerned; a recipient
subscribed to several of those labels gets it once, filed under its best-scoring label.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, datetime

from alerts.channels import registry
from alerts.config import CriticalRule, Routing
from core.records import base_celex
from nlp.explain import read_fired
from storage.reader import Archive, day, instant, json_value, reading


@dataclass(frozen=True)
class Recipient:
    address: str  # e-mail address, Slack channel, "webhook:<name>", ... (as its channel names them)
    channel: str  # a registered channel's kind (alerts/channels)
    labels: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return self.address, self.channel


@dataclass(frozen=True)
class Score:
    score: float
    selected: bool
    fired: tuple[dict, ...] = ()
    verdict: bool | None = None  # an analyst's verdict on this notice (nlp.verdicts): final


@dataclass
class Candidate:
    """A notice as routing and rendering see it (a copy: no ORM object leaves this module)."""

    id: int
    title_fr: str | None
    title_en: str | None
    summary_fr: str | None
    summary_en: str | None
    url: str | None
    source: str
    kind: str
    doc_type: str | None
    celex: str | None
    published_at: date | None  # publication day (Brussels)
    document_date: date | None
    first_seen: datetime
    legal_basis: list[str]
    related_acts: list[str]
    scores: dict[str, Score] = field(default_factory=dict)
    opens: date | None = None
    deadline: date | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Due:
    notice_id: int
    recipient: Recipient
    purpose: str  # alert | digest
    label: str  # the label the item is filed under for this recipient
    score: float
    rule: str | None = None  # the critical rule, for alerts


def recipients(routing: Routing) -> list[Recipient]:
    """Every (address, channel) with the union of its labels, in config order (by label, then channel)."""
    kinds = registry()
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    for label, route in routing.labels.items():
        for kind, channel in kinds.items():
            for address in channel.addresses(route):
                labels[(address, kind)].append(label)
    for kind, channel in kinds.items():
        for address, declared in channel.declared(routing).items():
            labels[(address, kind)].extend(declared)
    return [Recipient(a, c, tuple(dict.fromkeys(ls))) for (a, c), ls in labels.items()]


def routed_labels(routing: Routing, cand: Candidate) -> dict[str, float]:
    """Labels whose threshold the notice passes (no threshold: the nlp ``selected`` flag)."""
    out = {label: s.score for label, s in cand.scores.items() if _passes(routing, label, s)}
    for rule in routing.always:  # e.g. funding calls always reach `international`
        if (not rule.kinds or cand.kind in rule.kinds) and (not rule.acts or _acts(cand) & set(rule.acts)):
            for label in rule.labels:
                out.setdefault(label, cand.scores[label].score if label in cand.scores else 0.0)
    return out


def _passes(routing: Routing, label: str, s: Score) -> bool:
    if s.verdict is not None:  # an analyst's verdict is final for this notice, whatever the thresholds
        return s.verdict
    threshold = routing.label_threshold(label)
    return s.score >= threshold if threshold is not None else s.selected


def _acts(cand: Candidate) -> set[str]:
    return {base_celex(c) for c in [*cand.legal_basis, *cand.related_acts, cand.celex or ""] if c}


def critical_rule(routing: Routing, cand: Candidate) -> CriticalRule | None:
    """The first ``[[critical]]`` rule the notice meets, if any."""
    routed = routed_labels(routing, cand)
    return next((rule for rule in routing.critical if _meets(rule, cand, routed)), None)


def _meets(rule: CriticalRule, cand: Candidate, routed: dict[str, float]) -> bool:
    """Every condition the rule sets holds: kind, act, routed label, score."""
    if (rule.kinds and cand.kind not in rule.kinds) or (rule.acts and not (_acts(cand) & set(rule.acts))):
        return False
    pool = [v for k, v in routed.items() if not rule.labels or k in rule.labels]
    if rule.labels and not pool:
        return False
    return rule.min_score is None or any(v >= rule.min_score for v in pool)


def _best(labels: dict[str, float], wanted: tuple[str, ...]) -> tuple[str, float] | None:
    mine = [(label, labels[label]) for label in wanted if label in labels]
    return max(mine, key=lambda kv: kv[1]) if mine else None


def digest_due(routing: Routing, cands: list[Candidate], label: str | None = None) -> list[Due]:
    out = []
    for rcpt in recipients(routing):
        if not routing.options(rcpt.address).digest or (label and label not in rcpt.labels):
            continue
        wanted = (label,) if label else rcpt.labels
        for cand in cands:
            best = _best(routed_labels(routing, cand), wanted)
            if best:
                out.append(Due(cand.id, rcpt, "digest", best[0], best[1]))
    return out


def alert_due(routing: Routing, cands: list[Candidate]) -> list[Due]:
    out = []
    for cand in cands:
        rule = critical_rule(routing, cand)
        if rule is None:
            continue
        routed = routed_labels(routing, cand)
        reach = {**{k: 0.0 for k in rule.notify}, **routed}
        for rcpt in recipients(routing):
            best = _best(reach, rcpt.labels)
            if best and routing.options(rcpt.address).alerts:
                out.append(Due(cand.id, rcpt, "alert", best[0], best[1], rule.name))
    return out


# Columns, not ORM objects: building an entity per label score cost most of a cycle over a big batch.
_CANDIDATE_COLUMNS = [f.name for f in fields(Candidate) if f.name != "scores"]
_DAYS = ("published_at", "document_date", "opens", "deadline")


def _candidate(row) -> Candidate:  # a result row with _CANDIDATE_COLUMNS
    n = dict(zip(_CANDIDATE_COLUMNS, row, strict=True))
    n.update({k: day(n[k]) for k in _DAYS})
    n.update(
        first_seen=instant(n["first_seen"]),
        legal_basis=list(json_value(n["legal_basis"]) or []),
        related_acts=list(json_value(n["related_acts"]) or []),
        extra=dict(json_value(n["extra"]) or {}),
    )
    return Candidate(**n)


def load_candidates(
    db: Archive, *, since: datetime | None = None, ids: list[int] | None = None
) -> dict[int, Candidate]:
    """Notices first seen at or after ``since`` (or the given ids), with all their label scores."""
    with reading(db) as r:
        where, params = [], {}
        if since is not None:
            where.append("first_seen >= :since")
            params["since"] = r.at(since)
        if ids is not None:
            where.append("id IN :ids")
            params["ids"] = ids or [-1]
        sql = f"SELECT {', '.join(_CANDIDATE_COLUMNS)} FROM notice"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        cands = {row[0]: _candidate(row) for row in r.all(sql, params)}
        if not cands:
            return {}
        scores = "SELECT notice_id, label, score, selected, explanation FROM label_score WHERE notice_id IN :ids"
        for notice_id, label, score, selected, explanation in r.all(scores, {"ids": list(cands)}):
            explanation = json_value(explanation)
            fired = tuple(read_fired(explanation))
            verdict = (explanation or {}).get("verdict")
            applies = verdict.get("applies") if isinstance(verdict, dict) else None
            cands[notice_id].scores[label] = Score(score, bool(selected), fired, applies)
    return cands
