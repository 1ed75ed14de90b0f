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
import re
import stat
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path

from spacy.matcher import Matcher, PhraseMatcher
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.config import Settings
from core.errors import UserError
from core.records import CELEX_RE, base_celex
from core.textfile import read_text
from nlp.rules_load import MAX_BYTES, LoadError, compose_yaml, construct
from nlp.safe_regex import linear_regex, pattern_problem
from nlp.text import FIELDS, Meta, Parsed, blank_nlp, make_doc, normalise

log = logging.getLogger(__name__)
RULES_FILE = "rules.yaml"
LANG_KEYS = ("en", "fr", "any")
LANGS = ("en", "fr")
WHEN_KEYS = ("source", "kind", "doc_type", "celex")
TEXT_ATTRS = ("ORTH", "TEXT", "LOWER", "NORM", "LEMMA")
ALSO, UNLESS = "@also", "@unless"  # markers of the phrases that only condition a rule
DEFAULT_FIELD_WEIGHTS = {"title": 1.0, "summary": 0.8, "body": 0.5, "subject": 1.0, "meta": 1.0}


class RulesError(UserError, ValueError):
    """A one-line ``file:line: what is wrong``."""


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
        pms, matcher, keys = self._compiled
        hits: list[Hit] = []
        seen: dict[str, set[str]] = {ALSO: set(), UNLESS: set()}  # rule keys whose conditions occur
        if parsed.fields:
            doc = parsed.doc()
            starts = parsed.field_starts()
            found = {lg: pms[lg](doc) for lg in {f.lang for f in parsed.fields}}
            if len(matcher):
                found["*"] = matcher(doc)
            for lg, matches in found.items():
                for match_id, start, end in matches:
                    fi = bisect_right(starts, start) - 1
                    f = parsed.fields[fi]
                    if (lg != "*" and f.lang != lg) or end > starts[fi] + len(f.stems):
                        continue  # wrong language, or a token pattern running across two fields
                    rule, what, fields = keys[match_id]
                    if what in seen:
                        seen[what].add(rule.key)
                    elif f.name in fields and rule.holds(parsed.meta):
                        s0 = starts[fi]
                        hits.append(Hit(rule, f.written(start - s0, end - s0), f.name, what, (start, end)))
        meta = parsed.meta
        celex = base_celex(meta.celex) or ""
        for rule in self.rules:
            if rule.acts and rule.holds(meta):
                for act in rule.acts:
                    if act == celex or act in meta.acts:
                        hits.append(
                            Hit(rule, f"{'celex' if act == celex else 'legal basis'} {act}", "meta", f"act {act}")
                        )
            elif rule.when and not (rule.phrases or rule.patterns or rule.acts) and rule.holds(meta):
                desc = ", ".join(f"{k}={getattr(meta, k)}" for k, _ in rule.when)
                hits.append(Hit(rule, desc, "meta", "condition"))
        also, unless = seen[ALSO], seen[UNLESS]
        return [h for h in hits if (not h.rule.also or h.rule.key in also) and h.rule.key not in unless]

    @cached_property
    def _targets(self) -> dict[str, tuple[str, ...]]:
        return {r.key: tuple(lb for lb in self.labels if r.targets(lb)) for r in self.rules}

    def score(self, hits: list[Hit]) -> dict[str, LabelRules]:
        bests: dict[str, dict[tuple[str, str], tuple[float, Hit]]] = {lb: {} for lb in self.labels}
        targets, fw = self._targets, self.field_weights
        in_body = _body_mentions(hits)
        for h in hits:
            w = h.rule.weight * fw.get(h.field, 1.0)
            if h.field == "body" and in_body[h.rule.key] < self.body_count:
                # One generic phrase in 2,000 characters of body is weak evidence: "medical devices" named
                # in a cybersecurity act. It counts in proportion to its matches up to ``body_count``.
                w *= in_body[h.rule.key] / self.body_count
            k = (h.rule.key, h.what)
            for label in targets[h.rule.key]:
                best = bests[label]
                if k not in best or w > best[k][0]:
                    best[k] = (w, h)
        out = {}
        for label, best in bests.items():
            # A rule is one piece of evidence: it counts once, at its best match (several generic words of
            # one weak rule must not add up to a label); distinct rules combine by noisy-OR.
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
            out[label] = LabelRules(round((1.0 - pos) * penalty, 4), fired, round(penalty, 4))
        return out

    def evaluate(self, parsed: Parsed) -> dict[str, LabelRules]:
        return self.score(self.match(parsed))


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


# -- parsing with line numbers --------------------------------------------------------------------


class _Y:
    """A YAML node with its line, for ``file:line`` errors."""

    def __init__(self, node: Node, filename: str) -> None:
        self.node, self.filename = node, filename
        self.key_line = self.line

    def fail_key(self, msg: str) -> RulesError:
        return RulesError(f"{self.filename}:{self.key_line}: {msg}")

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    def fail(self, msg: str) -> RulesError:
        return RulesError(f"{self.filename}:{self.line}: {msg}")

    def value(self) -> object:
        try:
            return construct(self.node)
        except LoadError as exc:
            raise RulesError(f"{self.filename}:{exc}") from None

    def mapping(self, what: str) -> dict[str, _Y]:
        if not isinstance(self.node, MappingNode):
            raise self.fail(f"{what} must be a mapping")
        out: dict[str, _Y] = {}
        for k, v in self.node.value:
            if not isinstance(k, ScalarNode):
                raise _Y(k, self.filename).fail(f"{what}: keys must be plain words")
            if k.value in out:
                raise _Y(k, self.filename).fail(f"{what}: duplicate key {k.value!r}")
            out[k.value] = y = _Y(v, self.filename)
            y.key_line = k.start_mark.line + 1
        return out

    def seq(self, what: str) -> list[_Y]:
        if not isinstance(self.node, SequenceNode):
            raise self.fail(f"{what} must be a list")
        return [_Y(n, self.filename) for n in self.node.value]

    def text(self, what: str) -> str:
        v = self.value() if isinstance(self.node, ScalarNode) else None
        if not isinstance(v, str | int) or isinstance(v, bool) or not str(v).strip():
            raise self.fail(f"{what} must be a non-empty text")
        return str(v).strip()

    def number(self, what: str, lo: float, hi: float) -> float:
        v = self.value() if isinstance(self.node, ScalarNode) else None
        if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
            raise self.fail(f"{what} must be a number between {lo} and {hi}")
        return float(v)

    def texts(self, what: str) -> list[str]:
        if isinstance(self.node, ScalarNode):
            return [self.text(what)]
        return [y.text(f"{what} item") for y in self.seq(what)]


def _unknown(m: dict[str, _Y], allowed: tuple[str, ...], what: str) -> None:
    for k, y in m.items():
        if k not in allowed:
            raise y.fail_key(f"{what}: unknown key {k!r} (allowed: {', '.join(allowed)})")


RULE_KEYS = ("name", "weight", "penalty", "en", "fr", "any", "patterns", "acts", "fields", "when", "labels")
RULE_KEYS += ("also", "unless", "description")


def _parse_rule(y: _Y, label: str, negative: bool, index: int, labels: set[str]) -> Rule:
    m = y.mapping("a rule")
    _unknown(m, RULE_KEYS, f"rule {index + 1} of {label}")
    name = m["name"].text("name") if "name" in m else f"{'neg' if negative else 'rule'}{index + 1}"
    if not re.fullmatch(r"[\w.-]+", name):
        raise m["name"].fail(f"rule name {name!r}: use letters, digits, '-', '_' or '.'")
    wkey = "penalty" if negative else "weight"
    if wkey not in m:
        raise y.fail(f"rule {name!r}: missing {wkey!r}")
    weight = m[wkey].number(wkey, 0.0, 1.0)
    other = "weight" if negative else "penalty"
    if other in m:
        raise m[other].fail(f"rule {name!r}: {other!r} is only for {'positive rules' if negative else 'negatives'}")
    phrases = _phrases(m)
    patterns = tuple(_parse_pattern(p) for p in m["patterns"].seq("patterns")) if "patterns" in m else ()
    acts = tuple(_parse_act(a) for a in m["acts"].seq("acts")) if "acts" in m else ()
    fields = FIELDS
    if "fields" in m:
        fields = tuple(m["fields"].texts("fields"))
        for f in fields:
            if f not in FIELDS:
                raise m["fields"].fail(f"unknown field {f!r} (allowed: {', '.join(FIELDS)})")
    when = ()
    if "when" in m:
        wm = m["when"].mapping("when")
        _unknown(wm, WHEN_KEYS, "when")
        when = tuple((k, tuple(v.texts(k))) for k, v in wm.items())
    applies_to: tuple[str, ...] = ()
    if "labels" in m:
        if label != "*":
            raise m["labels"].fail("'labels' is only for profile-wide negatives")
        applies_to = tuple(m["labels"].texts("labels"))
        for lb in applies_to:
            if lb not in labels:
                raise m["labels"].fail(f"unknown label {lb!r}")
    if not (phrases or patterns or acts or when):
        raise y.fail(f"rule {name!r}: needs phrases (en/fr/any), patterns, acts or a 'when' condition")
    return Rule(
        f"{label}/{name}",
        label,
        name,
        weight,
        negative,
        y.line,
        phrases,
        patterns,
        acts,
        fields,
        when,
        applies_to,
        _conditions(m, "also"),
        _conditions(m, "unless"),
        _description(m),
    )


def _description(m: dict[str, _Y]) -> tuple[tuple[str, str], ...]:
    """``description: {fr: "...", en: "..."}`` (a plain text is taken as French)."""
    if "description" not in m:
        return ()
    y = m["description"]
    if isinstance(y.node, ScalarNode):
        return (("fr", y.text("description")),)
    dm = y.mapping("description")
    _unknown(dm, LANGS, "description")
    return tuple((lang, dm[lang].text(f"description {lang}")) for lang in LANGS if lang in dm)


def _conditions(m: dict[str, _Y], key: str) -> tuple[tuple[str, str], ...]:
    """The ``also``/``unless`` phrases of a rule: {en: [...], fr: [...], any: [...]}."""
    if key not in m:
        return ()
    cm = m[key].mapping(key)
    _unknown(cm, LANG_KEYS, key)
    return _phrases(cm)


def _phrases(m: dict[str, _Y]) -> tuple[tuple[str, str], ...]:
    """(en|fr|any, phrase) for the language keys of ``m``."""
    return tuple((lang, p) for lang in LANG_KEYS if lang in m for p in m[lang].texts(lang))


def _parse_pattern(y: _Y) -> str:
    specs = y.seq("a token pattern")
    if not specs:
        raise y.fail("a token pattern needs at least one token")
    pattern = [s.value() for s in specs]
    for s, p in zip(specs, pattern, strict=True):
        if not isinstance(p, dict) or not p:
            raise s.fail("each token of a pattern must be a mapping like {LOWER: word}")
    if bad := pattern_problem(pattern):  # what could hang the matcher: catastrophic regexes, huge repeats
        raise specs[bad[0]].fail(f"invalid token pattern: {bad[1]}")
    try:  # let spaCy's own validator judge the pattern
        Matcher(blank_nlp().vocab, validate=True).add("check", [stem_pattern(pattern)])
        return json.dumps(pattern, sort_keys=True, ensure_ascii=False)
    except Exception as exc:  # whatever spaCy raises on analyst input is a rule error
        msg = " ".join(str(exc).split())
        raise y.fail(f"invalid token pattern: {msg[:200]}") from None


def _parse_act(y: _Y) -> str:
    celex = y.text("act").upper()
    if not CELEX_RE.fullmatch(celex):
        raise y.fail(f"act {celex!r} is not a CELEX number like 32021R2282")
    return base_celex(celex) or celex


def parse_rules(text: str, filename: str, known_labels: set[str] | None = None) -> RuleSet:
    try:  # bounded: size, nodes, aliases, depth, safe tags only (nlp/rules_load.py)
        root = compose_yaml(text)
    except LoadError as exc:
        raise RulesError(f"{filename}:{exc}") from None
    if root is None:
        raise RulesError(f"{filename}:1: empty rules file")
    top = _Y(root, filename).mapping("the rules file")
    _unknown(top, ("version", "defaults", "labels", "negatives"), "top level")
    if "labels" not in top:
        raise RulesError(f"{filename}:1: missing 'labels'")
    field_weights, default_threshold, rules_weight, body_count = dict(DEFAULT_FIELD_WEIGHTS), 0.5, 0.5, 1
    if "defaults" in top:
        d = top["defaults"].mapping("defaults")
        _unknown(d, ("threshold", "field_weights", "rules_weight", "body_count"), "defaults")
        if "body_count" in d:
            body_count = round(d["body_count"].number("body_count", 1, 20))
        if "threshold" in d:
            default_threshold = d["threshold"].number("threshold", 0.0, 1.0)
        if "rules_weight" in d:
            rules_weight = d["rules_weight"].number("rules_weight", 0.0, 1.0)
        if "field_weights" in d:
            for k, v in d["field_weights"].mapping("field_weights").items():
                if k not in (*FIELDS, "meta"):
                    raise v.fail(f"field_weights: unknown field {k!r}")
                field_weights[k] = v.number(k, 0.0, 1.0)
    label_nodes = top["labels"].mapping("labels")
    labels, rules = {}, []
    for label, ly in label_nodes.items():
        if known_labels is not None and label not in known_labels:
            raise ly.fail_key(f"unknown label {label!r} (the profile has: {', '.join(sorted(known_labels))})")
        lm = ly.mapping(f"label {label}")
        _unknown(lm, ("threshold", "rules", "negatives"), f"label {label}")
        labels[label] = lm["threshold"].number("threshold", 0.0, 1.0) if "threshold" in lm else default_threshold
        for kind, negative in (("rules", False), ("negatives", True)):
            if kind in lm:
                rules += [_parse_rule(r, label, negative, i, set()) for i, r in enumerate(lm[kind].seq(kind))]
    if "negatives" in top:
        rules += [_parse_rule(r, "*", True, i, set(labels)) for i, r in enumerate(top["negatives"].seq("negatives"))]
    seen: dict[str, Rule] = {}
    for r in rules:
        if r.key in seen:
            raise RulesError(f"{filename}:{r.line}: duplicate rule name {r.key!r} (first at line {seen[r.key].line})")
        seen[r.key] = r
    rs = RuleSet(text, filename, labels, rules, field_weights, rules_weight, body_count=body_count)
    try:
        return rs.compile()
    except Exception as exc:  # defensive: the per-pattern check should have caught it
        raise RulesError(f"{filename}:?: {' '.join(str(exc).split())[:200]}") from None


def read_rules(path: Path) -> str:
    """The text of a rules file; a RulesError (never a hang) for a file too large, a device, a pipe."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # /dev/zero, a FIFO: would be read forever
            raise RulesError(f"{path}:0: not a regular file")
        if st.st_size > MAX_BYTES:  # not read at all: a rules file is never that large
            raise RulesError(f"{path}:1: rules file too large ({st.st_size:,} bytes, at most {MAX_BYTES:,})")
        return read_text(path, RulesError)
    except OSError as exc:
        raise RulesError(f"{path}:0: cannot read: {exc.strerror}") from None


def load_rules(path: str | Path, known_labels: set[str] | None = None) -> RuleSet:
    path = Path(path)
    return parse_rules(read_rules(path), str(path), known_labels)


# -- where the rules live, saving with history, last good rules -------------------------------------


def rules_path(settings: Settings) -> Path:
    from core.profiles import profile_file

    return profile_file(settings, RULES_FILE)


def _edit_dir(settings: Settings) -> Path:
    return settings.home / "profiles" / settings.profile


def history_dir(settings: Settings) -> Path:
    """Where saved rules keep the versions they replaced and ``history.jsonl`` (who saved what, when)."""
    return _edit_dir(settings) / "rules_history"


def _labels(settings: Settings) -> set[str]:
    from core.profiles import load_labels

    return set(load_labels(settings))


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
    last_good = history_dir(settings) / "last_good.yaml"
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

    for candidate in (history_dir(settings) / "last_good.yaml", SHIPPED / settings.profile / RULES_FILE):
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
            f"{target}: cannot write the rules file ({exc.strerror}): the rules in force are unchanged"
        ) from None
    try:
        _write_atomic(history / "last_good.yaml", text)
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
            f"{log_file}: cannot write the rules history ({exc.strerror}): nothing saved, "
            "the rules in force are unchanged"
        ) from None
