"""Analyst rules: one YAML file per profile, compiled into spaCy PhraseMatcher / Matcher.

The format is documented in docs/nlp.md. A broken file is refused as a whole with
``file:line: what is wrong``; :func:`active_rules` then keeps the last good rules in force.
"""

from __future__ import annotations

import difflib
import errno
import getpass
import hashlib
import json
import logging
import os
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path

from spacy.matcher import Matcher, PhraseMatcher

from core.config import Settings
from core.records import CELEX_RE, base_celex
from core.schema import at
from nlp.fields import FIELDS
from nlp.rules_load import (
    LAST_GOOD,
    RULES_FILE,
    PositiveRule,
    RulesError,
    WideNegative,
    history_dir,
    label_thresholds,
    read_rules,
    read_rules_file,
    rules_path,
)
from nlp.rules_load import _Rule as _RuleSpec
from nlp.rules_load import edit_dir as _edit_dir
from nlp.rules_load import profile_labels as _labels
from nlp.safe_regex import linear_regex
from nlp.text import FieldText, Meta, Parsed, blank_nlp, make_doc, normalise

log = logging.getLogger(__name__)
LANG_KEYS = ("en", "fr", "any")
LANGS = ("en", "fr")
TEXT_ATTRS = ("ORTH", "TEXT", "LOWER", "NORM", "LEMMA")
ALSO, UNLESS = "@also", "@unless"  # markers of the phrases that only condition a rule
DEFAULT_FIELD_WEIGHTS = {"title": 1.0, "summary": 0.8, "body": 0.5, "subject": 1.0, "meta": 1.0}


class RulesSaveError(RulesError):
    """Saving failed: names what could not be written; the rules in force are unchanged."""


@dataclass(frozen=True)
class Rule:
    key: str  # unique: "<label>/<name>" ("*/<name>" for profile-wide negative cues)
    label: str
    name: str
    weight: float  # positive rules: contribution in (0, 1]; negative cues: penalty in (0, 1], 1 = veto
    negative: bool
    line: int
    phrases: tuple[tuple[str, str], ...] = ()  # (en|fr|any, phrase)
    patterns: tuple[str, ...] = ()  # JSON of each token pattern as written
    acts: tuple[str, ...] = ()  # base CELEX numbers
    fields: tuple[str, ...] = FIELDS
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    applies_to: tuple[str, ...] = ()  # profile-wide negatives: the labels they lower (empty = all)
    also: tuple[tuple[str, str], ...] = ()  # the rule fires only if one of these phrases occurs too
    unless: tuple[tuple[str, str], ...] = ()  # ... and only if none of these occurs (anywhere in the notice)
    description: tuple[tuple[str, str], ...] = ()  # (fr|en, what the rule looks for, for people)

    def holds(self, meta: Meta) -> bool:
        for key, globs in self.when:
            value = getattr(meta, key).lower()
            if not any(fnmatchcase(value, g.lower()) for g in globs):
                return False
        return True

    def targets(self, label: str) -> bool:
        return self.label == label or (self.label == "*" and (not self.applies_to or label in self.applies_to))


@dataclass
class Hit:
    rule: Rule
    words: str
    field: str
    what: str  # which phrase / pattern / act fired (one contribution per distinct ``what``)
    span: tuple[int, int] = (0, 0)  # token offsets in the notice's doc (body mentions are counted on them)


@dataclass
class LabelRules:
    score: float
    fired: list[dict]
    penalty: float = 1.0  # product of (1 - penalty) over the negative cues found: they lower the model's share too


@dataclass
class RuleSet:
    text: str
    filename: str
    labels: dict[str, float]  # label -> threshold
    rules: list[Rule]
    field_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FIELD_WEIGHTS))
    rules_weight: float = 0.5  # share of the rules in the combined score when a model is present
    refused: str | None = None  # set on the last good rules in force: why the file in place was refused
    body_count: int = 1  # a rule found only in the body counts fully from this many body matches

    @cached_property
    def version(self) -> str:  # a hash of the whole text: computed once
        return rules_version(self.text)

    # -- compiled matchers (built on first use) -------------------------------------------------
    @cached_property
    def _compiled(self) -> tuple[dict[str, PhraseMatcher], Matcher, dict[int, tuple[Rule, str, tuple[str, ...]]]]:
        """One PhraseMatcher per language (a French phrase is only looked for in French text), one Matcher."""
        vocab = blank_nlp().vocab
        pms = {lg: PhraseMatcher(vocab, attr="ORTH") for lg in LANGS}
        matcher = Matcher(vocab, validate=True)
        keys: dict[int, tuple[Rule, str, tuple[str, ...]]] = {}

        def add_phrase(rule: Rule, what: str, lang: str, phrase: str, fields: tuple[str, ...]) -> None:
            for lg, stems in phrase_stems(lang, phrase):
                key = f"{rule.key}#{what}#{' '.join(stems)}"
                keys[vocab.strings.add(key)] = (rule, what, fields)
                pms[lg].add(key, [make_doc(stems)])

        for rule in self.rules:
            for lang, phrase in rule.phrases:
                add_phrase(rule, phrase, lang, phrase, rule.fields)
            for celex in rule.acts:
                for number in act_numbers(celex):
                    add_phrase(rule, f"act {celex}", "any", number, tuple(f for f in rule.fields if f != "body"))
            for marker, conditions in ((ALSO, rule.also), (UNLESS, rule.unless)):
                for lang, phrase in conditions:
                    add_phrase(rule, marker, lang, phrase, FIELDS)
            for i, pattern in enumerate(rule.patterns):
                key = f"{rule.key}#pattern{i}"
                keys[vocab.strings.add(key)] = (rule, f"pattern {i + 1}", rule.fields)
                matcher.add(key, [stem_pattern(json.loads(pattern))])
        return pms, matcher, keys

    def compile(self) -> RuleSet:
        self._compiled  # noqa: B018 - build now so that errors surface at load time
        return self

    # -- matching and scoring ---------------------------------------------------------------------
    def match(self, parsed: Parsed) -> list[Hit]:
        """The rules that fire on a notice: phrase and pattern matches in their fields, then act references
        and ``when`` conditions on its metadata, minus rules whose ``also``/``unless`` conditions fail."""
        seen: dict[str, set[str]] = {ALSO: set(), UNLESS: set()}  # rule keys whose conditions occur
        hits = self._text_hits(parsed, seen) + self._meta_hits(parsed.meta)
        return [h for h in hits if _conditions_hold(h.rule, seen)]

    def _text_hits(self, parsed: Parsed, seen: dict[str, set[str]]) -> list[Hit]:
        """Matches in the notice's fields; a match of an ``also``/``unless`` phrase goes into ``seen``."""
        if not parsed.fields:
            return []
        keys = self._compiled[2]
        hits = []
        for match_id, f, s0, start, end in self._matches(parsed):
            rule, what, fields = keys[match_id]
            if what in seen:
                seen[what].add(rule.key)
            elif f.name in fields and rule.holds(parsed.meta):
                hits.append(Hit(rule, f.written(start - s0, end - s0), f.name, what, (start, end)))
        return hits

    def _matches(self, parsed: Parsed) -> Iterator[tuple[int, FieldText, int, int, int]]:
        """(match id, field, field's first token, start, end) of every phrase and pattern match within one
        field, a phrase only in a field of its language."""
        pms, matcher, _ = self._compiled
        doc, starts = parsed.doc(), parsed.field_starts()
        found = {lg: pms[lg](doc) for lg in {f.lang for f in parsed.fields}}
        if len(matcher):
            found["*"] = matcher(doc)
        for lg, matches in found.items():
            for match_id, start, end in matches:
                fi = bisect_right(starts, start) - 1
                f = parsed.fields[fi]
                if (lg == "*" or f.lang == lg) and end <= starts[fi] + len(f.stems):
                    yield match_id, f, starts[fi], start, end  # not: wrong language, a pattern across two fields

    def _meta_hits(self, meta: Meta) -> list[Hit]:
        """Act references (the notice is the act, or has it as legal basis or related act) and rules that
        only have ``when`` conditions."""
        celex = base_celex(meta.celex) or ""
        hits = []
        for rule in self._meta_rules:
            if not rule.holds(meta):
                continue
            if rule.acts:
                hits += [_act_hit(rule, act, celex) for act in rule.acts if act == celex or act in meta.acts]
            else:
                desc = ", ".join(f"{k}={getattr(meta, k)}" for k, _ in rule.when)
                hits.append(Hit(rule, desc, "meta", "condition"))
        return hits

    @cached_property
    def _meta_rules(self) -> list[Rule]:
        """The rules the metadata can fire: act references, and ``when`` conditions with nothing to match."""
        return [r for r in self.rules if r.acts or (r.when and not (r.phrases or r.patterns))]

    @cached_property
    def _targets(self) -> dict[str, tuple[str, ...]]:
        return {r.key: tuple(lb for lb in self.labels if r.targets(lb)) for r in self.rules}

    def score(self, hits: list[Hit]) -> dict[str, LabelRules]:
        return {label: _label_rules(label, best) for label, best in self._best_matches(hits).items()}

    def _best_matches(self, hits: list[Hit]) -> dict[str, dict[tuple[str, str], tuple[float, Hit]]]:
        """Per label, per (rule, what matched): its strongest weighted hit."""
        bests: dict[str, dict[tuple[str, str], tuple[float, Hit]]] = {lb: {} for lb in self.labels}
        in_body = _body_mentions(hits)
        for h in hits:
            w = self._hit_weight(h, in_body)
            k = (h.rule.key, h.what)
            for label in self._targets[h.rule.key]:
                best = bests[label]
                if k not in best or w > best[k][0]:
                    best[k] = (w, h)
        return bests

    def _hit_weight(self, h: Hit, in_body: dict[str, int]) -> float:
        """The rule's weight times its field's. One generic phrase in 2,000 characters of body is weak
        evidence ("medical devices" named in a cybersecurity act): it counts in proportion to the rule's
        body mentions up to ``body_count``."""
        w = h.rule.weight * self.field_weights.get(h.field, 1.0)
        if h.field == "body" and in_body[h.rule.key] < self.body_count:
            w *= in_body[h.rule.key] / self.body_count
        return w

    def evaluate(self, parsed: Parsed) -> dict[str, LabelRules]:
        return self.score(self.match(parsed))


def _conditions_hold(rule: Rule, seen: dict[str, set[str]]) -> bool:
    return (not rule.also or rule.key in seen[ALSO]) and rule.key not in seen[UNLESS]


def _act_hit(rule: Rule, act: str, celex: str) -> Hit:
    return Hit(rule, f"{'celex' if act == celex else 'legal basis'} {act}", "meta", f"act {act}")


def _label_rules(label: str, best: dict[tuple[str, str], tuple[float, Hit]]) -> LabelRules:
    """A rule is one piece of evidence: it counts once, at its best match (several generic words of one weak
    rule must not add up to a label); distinct rules combine by noisy-OR, negative cues multiply."""
    per_rule: dict[str, tuple[float, Rule]] = {}
    fired = []
    for w, h in best.values():
        if h.rule.key not in per_rule or w > per_rule[h.rule.key][0]:
            per_rule[h.rule.key] = (min(w, 1.0), h.rule)
        signed = -w if h.rule.negative else w
        fired.append(
            {"rule": h.rule.key, "label": label, "words": h.words, "weight": round(signed, 3), "field": h.field}
        )
    pos = penalty = 1.0
    for w, rule in per_rule.values():
        if rule.negative:
            penalty *= 1.0 - w  # a cue in the title weighs more than one in the body
        else:
            pos *= 1.0 - w
    fired.sort(key=lambda d: -abs(d["weight"]))
    return LabelRules(round((1.0 - pos) * penalty, 4), fired, round(penalty, 4))


def _body_mentions(hits: list[Hit]) -> dict[str, int]:
    """Per rule, its mentions in the body: overlapping matches are one mention ("medical device" and
    "medical devices" phrases of one rule on the same words)."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for h in hits:
        if h.field == "body":
            spans.setdefault(h.rule.key, []).append(h.span)
    out = {}
    for key, ss in spans.items():
        n, end = 0, -1
        for s, e in sorted(ss):
            if s >= end:
                n += 1
            end = max(end, e)
        out[key] = n
    return out


def rules_version(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def phrase_stems(lang: str, phrase: str) -> list[tuple[str, list[str]]]:
    """(language, stems) of a rule phrase in each language it is looked for in (``any``: both)."""
    out = [(lg, normalise(phrase, lg)[1]) for lg in (LANGS if lang == "any" else (lang,))]
    return [(lg, stems) for lg, stems in out if stems]


def act_numbers(celex: str) -> list[str]:
    """``32021R2282`` -> "2021/2282" and "2282/2021" (the pre-2015 order)."""
    m = CELEX_RE.fullmatch(celex)
    if not m or not m.group(4):  # an OJ C reference (C2022/114A/01) has no act number
        return []
    year, num = m.group(2), str(int(m.group(4)))
    return [f"{year}/{num}", f"{num}/{year}"]


def stem_pattern(pattern: list[dict]) -> list[dict]:
    """Rewrite word attributes of a Matcher pattern to the stems the docs carry (ORTH = stem)."""
    out = []
    for spec in pattern:
        spec = dict(spec)
        for attr in TEXT_ATTRS:
            if attr in spec:
                spec["ORTH"] = _stem_value(spec.pop(attr))
        out.append(spec)
    return linear_regex(out)  # regexes run on RE2, never on spaCy's backtracking re (nlp/safe_regex.py)


def _stems_of(word: str) -> list[str]:
    return list(dict.fromkeys(s for lg in LANGS for s in normalise(word, lg)[1][:1]))


def _stem_value(value: object) -> object:
    if isinstance(value, str):
        return {"IN": _stems_of(value)}
    if isinstance(value, dict):
        return {
            op: [s for v in vals for s in _stems_of(str(v))]
            if op in ("IN", "NOT_IN") and isinstance(vals, list)
            else vals
            for op, vals in value.items()
        }
    return value


# -- parsing: the schema is nlp/rules_load.py ------------------------------------------------------------------


def _check_pattern(pattern: list[dict]) -> None:
    """spaCy's own validator judges what the schema let through."""
    Matcher(blank_nlp().vocab, validate=True).add("check", [stem_pattern(pattern)])


def _rule(spec: _RuleSpec, label: str, index: int, line: int) -> Rule:
    negative = not isinstance(spec, PositiveRule)
    name = spec.name or f"{'neg' if negative else 'rule'}{index + 1}"
    desc = tuple((lang, getattr(spec.description, lang)) for lang in LANGS if getattr(spec.description, lang))
    return Rule(
        f"{label}/{name}",
        label,
        name,
        spec.penalty if negative else spec.weight,
        negative,
        line,
        spec.phrases(),
        tuple(spec.patterns),
        tuple(spec.acts),
        tuple(spec.fields),
        tuple((k, tuple(v)) for k, v in spec.when.items()),
        tuple(spec.labels) if isinstance(spec, WideNegative) else (),
        spec.also.phrases(),
        spec.unless.phrases(),
        desc,
    )


def parse_rules(text: str, filename: str, known_labels: set[str] | None = None) -> RuleSet:
    spec, lines = read_rules_file(text, filename, known_labels, _check_pattern, RulesError)
    placed: list[tuple[tuple, Rule]] = []  # (key path, rule)
    for label, ls in spec.labels.items():
        for kind, specs in (("rules", ls.rules), ("negatives", ls.negatives)):
            placed += [(("labels", label, kind, i), r) for i, r in enumerate(specs)]
    placed += [(("negatives", i), r) for i, r in enumerate(spec.negatives)]
    rules, seen = [], {}
    for loc, r in placed:
        rule = _rule(r, str(loc[1]) if loc[0] == "labels" else "*", int(loc[-1]), lines(loc) or 0)
        if rule.key in seen:
            first = f"première à la ligne {seen[rule.key].line}"
            raise RulesError(at(filename, rule.line, (*loc, "name"), f"nom de règle en double {rule.key!r} ({first})"))
        seen[rule.key] = rule
        rules.append(rule)
    d = spec.defaults
    labels = label_thresholds(spec)
    weights = {**DEFAULT_FIELD_WEIGHTS, **d.field_weights}
    rs = RuleSet(text, filename, labels, rules, weights, d.rules_weight, body_count=round(d.body_count))
    try:
        return rs.compile()
    except Exception as exc:  # defensive: the per-pattern check should have caught it
        raise RulesError(f"{filename}:?: {' '.join(str(exc).split())[:200]}") from None


def load_rules(path: str | Path, known_labels: set[str] | None = None) -> RuleSet:
    path = Path(path)
    return parse_rules(read_rules(path), str(path), known_labels)


# -- where the rules live, saving with history, last good rules -------------------------------------


# Rules loaded per file version: parsing and checking the HAS rules takes 75-150 ms, which every notice
# page, dashboard and backtest paid again; a cached RuleSet also keeps its compiled matchers. The key
# holds the rules file's and the profile's (labels) file versions, so a hit reads neither.
_ACTIVE: dict[tuple, RuleSet] = {}


def _file_version(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_ino, st.st_mtime_ns, st.st_size)


def active_rules(settings: Settings) -> RuleSet:
    """The rules in force. A file in place that is refused leaves the last good rules in force (logged, and
    their ``refused`` says why): never an exception while good rules exist."""
    from core.profiles import profile_file

    path = rules_path(settings)
    try:
        key = (_file_version(path), _file_version(profile_file(settings, "profile.toml")))
    except OSError:
        key = None
    if key in _ACTIVE:
        return _ACTIVE[key]
    labels = _labels(settings)
    last_good = history_dir(settings) / LAST_GOOD
    try:
        rs = load_rules(path, labels)
    except RulesError as exc:
        rs = _last_good(settings, path, exc)
    else:
        try:
            if not last_good.exists() or last_good.read_text(encoding="utf-8") != rs.text:
                _write_atomic(last_good, rs.text)
        except OSError as exc:  # the rules are good and in force; only the fallback copy is stale
            log.warning("cannot keep a copy of the rules in force in %s: %s", last_good, exc.strerror)
    if key is not None:
        _ACTIVE.clear()  # one version per process is enough
        _ACTIVE[key] = rs
    return rs


def _last_good(settings: Settings, path: Path, error: RulesError) -> RuleSet:
    """The last good rules (saved or in force before), else the profile's shipped ones; ``error`` if none loads."""
    from core.profiles import SHIPPED

    for candidate in (history_dir(settings) / LAST_GOOD, SHIPPED / settings.profile / RULES_FILE):
        if candidate == path or not candidate.exists():
            continue
        try:
            rs = load_rules(candidate)
        except RulesError as exc:
            log.error("the fallback rules are refused too: %s", exc)
            continue
        log.error("rules file refused, keeping the last good rules (%s, version %s): %s", candidate, rs.version, error)
        rs.refused = str(error)
        return rs
    raise error


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_rules(settings: Settings, text: str, user: str | None = None, filename: str | None = None) -> str:
    """Validate and install ``text`` as the profile's edited rules; returns the new version id.

    Errors name ``filename`` (the file the text came from) or else the edited rules file. The history is
    written first (the replaced text, then the line in history.jsonl), then the rules file by an atomic
    rename: a failure leaves the rules in force unchanged and raises RulesSaveError naming what failed."""
    target = _edit_dir(settings) / RULES_FILE
    new = parse_rules(text, filename or str(target), _labels(settings))  # refuse before touching anything
    history = history_dir(settings)
    old_path = rules_path(settings)
    # The file in place may be one refused for its encoding: kept byte for byte, diffed as best it reads.
    old_raw = old_path.read_bytes() if old_path.exists() else b""
    old_text = old_raw.decode("utf-8-sig", "replace")
    diff = list(difflib.unified_diff(old_text.splitlines(), text.splitlines(), lineterm="", n=0))
    entry = {
        "at": datetime.now(UTC).isoformat(),
        "user": user or getpass.getuser(),
        "version": new.version,
        "previous": rules_version(old_text) if old_text else None,
        "added": [d[1:] for d in diff if d.startswith("+") and not d.startswith("+++")][:200],
        "removed": [d[1:] for d in diff if d.startswith("-") and not d.startswith("---")][:200],
    }
    _append_history(history, old_raw, old_text, entry)
    try:
        _write_atomic(target, text)
    except OSError as exc:
        raise RulesSaveError(
            f"{target}: écriture du fichier de règles impossible ({exc.strerror}) : "
            "les règles en vigueur sont inchangées"
        ) from None
    try:
        _write_atomic(history / LAST_GOOD, text)
    except OSError as exc:  # the new rules are in force; active_rules writes this copy again
        log.warning("cannot keep a copy of the saved rules in %s: %s", history, exc.strerror)
    return new.version


def _append_history(history: Path, old_raw: bytes, old_text: str, entry: dict) -> None:
    """Keep the replaced text and append the entry to history.jsonl, or raise RulesSaveError (nothing changed)."""
    log_file = history / "history.jsonl"
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    try:
        history.mkdir(parents=True, exist_ok=True)
        if old_raw:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            (history / f"{stamp}-{rules_version(old_text)}.yaml").write_bytes(old_raw)
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                if os.write(fd, line) != len(line):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError:
                os.ftruncate(fd, size)  # no half line left behind (a full disk)
                raise
        finally:
            os.close(fd)
    except OSError as exc:
        raise RulesSaveError(
            f"{log_file}: écriture de l'historique des règles impossible ({exc.strerror}) : rien n'est enregistré, "
            "les règles en vigueur sont inchangées"
        ) from None
