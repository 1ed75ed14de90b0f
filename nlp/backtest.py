"""Re-score the archive with a candidate rule file, before anything is saved.

Fast path: the notices' normalised tokens come from the token cache (no re-tokenising), and only
the notices a change can touch are re-scored: for a changed phrase, those where its stems occur in
sequence (vectorised scans of the cached token array). Changes that can touch anything (thresholds, field
weights, metadata-only conditions, patterns without a literal word) re-score every notice, except a change
of thresholds alone. Rule scores do not depend on thresholds, so then a notice scored with the current rules
(and not changed since) is decided from its stored rule score by one query per label; a notice scored by a
trained model cannot change, since the model selects with its own per-label thresholds; only the rest is
re-scored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import ColumnElement, exists, func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.config import Settings
from core.profiles import load_labels
from nlp.classify import scoring_since
from nlp.rules import Rule, RuleSet, act_numbers, active_rules, parse_rules, phrase_stems, stem_pattern
from nlp.scoring import load_model, score_labels
from nlp.text import parse_notice
from nlp.tokencache import TokenArchive, TokenCache
from storage.db import session_scope
from storage.models import LabelScore, Notice

CHUNK = 900  # ids per IN (...) query


@dataclass
class LabelDiff:
    gained: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)

    @property
    def counts(self) -> tuple[int, int]:
        return len(self.gained), len(self.lost)


@dataclass
class BacktestResult:
    current_version: str
    candidate_version: str
    notices: int
    rescored: int
    seconds: float
    labels: dict[str, LabelDiff]
    note: str | None = None

    def to_dict(self) -> dict:
        return {
            "current_version": self.current_version,
            "candidate_version": self.candidate_version,
            "notices": self.notices,
            "rescored": self.rescored,
            "seconds": round(self.seconds, 3),
            "note": self.note,
            "labels": {
                lb: {"gained": d.gained, "lost": d.lost, "n_gained": len(d.gained), "n_lost": len(d.lost)}
                for lb, d in self.labels.items()
            },
        }


def _core(r: Rule) -> tuple:
    return (r.weight, r.negative, r.fields, r.when, r.applies_to, r.also, r.unless, r.patterns, r.acts)


def _scoring(rs: RuleSet) -> tuple:
    """The file-wide settings every rule score depends on."""
    return rs.field_weights, rs.rules_weight, rs.body_count


def _changed(old: RuleSet, new: RuleSet) -> tuple[bool, list[Rule], list[tuple[str, str]]]:
    """(touches everything?, rules changed as a whole, phrases added/removed in otherwise equal rules)."""
    if old.labels != new.labels or _scoring(old) != _scoring(new):
        return True, [], []
    a, b = {r.key: r for r in old.rules}, {r.key: r for r in new.rules}
    whole, phrases = [], []
    for key in a.keys() | b.keys():
        ra, rb = a.get(key), b.get(key)
        if ra is None or rb is None or _core(ra) != _core(rb):
            whole += [r for r in (ra, rb) if r is not None]
        else:
            phrases += sorted(set(ra.phrases) ^ set(rb.phrases))
    return False, whole, phrases


def _thresholds_only(old: RuleSet, new: RuleSet) -> bool:
    def rules(rs: RuleSet) -> dict:
        return {r.key: (_core(r), r.phrases) for r in rs.rules}

    return (
        old.labels != new.labels
        and old.labels.keys() == new.labels.keys()
        and _scoring(old) == _scoring(new)
        and rules(old) == rules(new)
    )


def _current_rules_score(old: RuleSet, since: datetime) -> ColumnElement[bool]:
    """A stored row made by the rules in force, without a model, after the notice's last change and with
    the text reading in force (``scoring_since``)."""
    return (
        (LabelScore.rules_version == old.version)
        & col(LabelScore.model_score).is_(None)
        & (LabelScore.scored_at >= Notice.updated_at)
        & (LabelScore.scored_at >= since)
    )


def _flips_from_stored_scores(
    engine: Engine, old: RuleSet, new: RuleSet, diffs: dict[str, LabelDiff], since: datetime
) -> None:
    """For a change of thresholds alone: fill ``diffs`` for the notices with current stored rule scores."""
    base = (
        select(LabelScore.notice_id)
        .join(Notice, col(Notice.id) == LabelScore.notice_id)
        .where(_current_rules_score(old, since))
    )
    with session_scope(engine) as s:
        for label, was in old.labels.items():
            now = new.labels[label]
            if was == now:
                continue
            # Selected when score >= threshold: only scores between the two thresholds flip. Without a model
            # score == rule_score, and (label, score) is indexed.
            between = base.where(LabelScore.label == label, LabelScore.score >= min(was, now))
            flipped = s.exec(between.where(LabelScore.score < max(was, now))).all()
            (diffs[label].gained if now < was else diffs[label].lost).extend(flipped)


def _unsettled(engine: Engine, old: RuleSet, with_model: bool, since: datetime) -> set[int]:
    """For a change of thresholds alone, the notices to re-score: neither a current stored rule score nor,
    with a model, a model score (combine() compares those to the model's thresholds, not the file's)."""
    settles = _current_rules_score(old, since)
    if with_model:
        settles = settles | col(LabelScore.model_score).is_not(None)
    settled = exists().where(LabelScore.notice_id == Notice.id, settles)
    with session_scope(engine) as s:
        return set(s.exec(select(Notice.id).where(~settled)).all())


def phrase_notices(arch: TokenArchive, lang: str, phrase: str) -> np.ndarray:
    found = [arch.with_sequence(stems) for _lg, stems in phrase_stems(lang, phrase)]
    return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)


def _pattern_notices(arch: TokenArchive, pattern: str) -> np.ndarray | None:
    """Notices containing the pattern's required literal words; None if it has none (then: all)."""
    result = None
    for spec in stem_pattern(json.loads(pattern)):
        words = spec.get("ORTH", {}).get("IN") if isinstance(spec.get("ORTH"), dict) else None
        if not words or spec.get("OP") in ("?", "*", "!"):
            continue
        hit = np.unique(np.concatenate([arch.containing(w) for w in words]))
        result = hit if result is None else np.intersect1d(result, hit, assume_unique=True)
    return result


def _rule_notices(arch: TokenArchive, rule: Rule) -> np.ndarray | None:
    if rule.when and not (rule.phrases or rule.patterns or rule.acts):
        return np.array([i for i in range(len(arch)) if rule.holds(arch.meta(i))], dtype=np.int64)
    parts = [phrase_notices(arch, lang, p) for lang, p in rule.phrases]
    for pattern in rule.patterns:
        hit = _pattern_notices(arch, pattern)
        if hit is None:
            return None
        parts.append(hit)
    for act in rule.acts:
        parts += [phrase_notices(arch, "any", n) for n in act_numbers(act)]
        parts.append(np.array([i for i, m in enumerate(arch.metas) if act in m], dtype=np.int64))
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def affected(arch: TokenArchive, old: RuleSet, new: RuleSet) -> np.ndarray:
    everything, whole, phrases = _changed(old, new)
    if everything:
        return np.arange(len(arch))
    parts = [phrase_notices(arch, lang, p) for lang, p in phrases]
    for rule in whole:
        hit = _rule_notices(arch, rule)
        if hit is None:
            return np.arange(len(arch))
        parts.append(hit)
    return np.unique(np.concatenate(parts)).astype(np.int64) if parts else np.empty(0, dtype=np.int64)


def refresh_cache(engine: Engine, cache: TokenCache) -> None:
    """Tokenise the notices that are new or changed since they were cached."""
    known = cache.known()
    with session_scope(engine) as s:
        rows = s.exec(select(Notice.id, Notice.content_hash)).all()
        stale = [nid for nid, h in rows if known.get(nid) != h]
        for start in range(0, len(stale), CHUNK):
            notices = s.exec(select(Notice).where(Notice.id.in_(stale[start : start + CHUNK]))).all()
            cache.add_many([(n.id, n.content_hash, parse_notice(n)) for n in notices])
    cache.flush()


def archive_tokens(engine: Engine, settings: Settings) -> TokenArchive:
    """The whole archive's token arrays, after caching the notices new or changed since last time."""
    cache = TokenCache.for_settings(settings)
    refresh_cache(engine, cache)
    return cache.load()


def _model_scores(engine: Engine, ids: list[int]) -> dict[tuple[int, str], float]:
    out = {}
    with session_scope(engine) as s:
        for start in range(0, len(ids), CHUNK):
            q = select(LabelScore.notice_id, LabelScore.label, LabelScore.model_score).where(
                LabelScore.notice_id.in_(ids[start : start + CHUNK])
            )
            out.update({(nid, lb): ms for nid, lb, ms in s.exec(q) if ms is not None})
    return out


def backtest(engine: Engine, settings: Settings, candidate_text: str, filename: str = "candidate") -> BacktestResult:
    t0 = time.perf_counter()
    current = active_rules(settings)
    candidate = parse_rules(candidate_text, filename, set(load_labels(settings)))
    model = load_model(settings)
    same_rules = _thresholds_only(current, candidate)
    diffs = {lb: LabelDiff() for lb in candidate.labels}
    note, todo = None, set()
    if same_rules:
        since = scoring_since(engine)
        _flips_from_stored_scores(engine, current, candidate, diffs, since)
        todo = _unsettled(engine, current, model is not None, since)
        if model is not None:
            note = (
                f"les seuils du fichier de règles ne valent que pour les notices scorées sans modèle ; le modèle "
                f"{model.version} sélectionne avec ses propres seuils par thématique, choisis par `veille train`"
            )
    # With nothing to re-score there is no need to read the token cache.
    arch = TokenArchive.empty() if same_rules and not todo else archive_tokens(engine, settings)
    with session_scope(engine) as s:
        n_live = s.exec(select(func.count(col(Notice.id)))).one()
        live = todo if same_rules else set(s.exec(select(Notice.id)).all())
    idx = [i for i in affected(arch, current, candidate).tolist() if int(arch.nids[i]) in live]
    ids = [int(arch.nids[i]) for i in idx]
    mscores = _model_scores(engine, ids) if model else {}
    for i, nid in zip(idx, ids, strict=True):
        p = arch.parsed(i)
        before = current.evaluate(p)
        after = before if same_rules else candidate.evaluate(p)
        cats = {lb: mscores[(nid, lb)] for lb in candidate.labels if mscores.get((nid, lb)) is not None}
        old_row, new_row = score_labels(current, model, before, cats), score_labels(candidate, model, after, cats)
        for lb in diffs:
            was = lb in old_row and old_row[lb].selected
            now = new_row[lb].selected
            if now and not was:
                diffs[lb].gained.append(nid)
            elif was and not now:
                diffs[lb].lost.append(nid)
    for d in diffs.values():
        d.gained.sort()
        d.lost.sort()
    seconds = time.perf_counter() - t0
    return BacktestResult(current.version, candidate.version, n_live, len(ids), seconds, diffs, note)
