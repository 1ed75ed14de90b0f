"""Reading a rules file: within bounds (size, YAML nodes, aliases, depth and tags), then its schema.

A rules file is analyst input that every cycle and every page reads, so reading it must neither hang
nor run anything: libyaml's event parser (C, iterative) feeds a composer that counts as it builds,
refusing a file past the bounds below with ``file:line: ...`` before anything expands its aliases;
only the safe YAML types are constructed. The bounds are documented in docs/nlp.md (The rules file).
The constructed data is then validated by the pydantic models below (:func:`read_rules_file`), whose
errors are ``file:line: key.path: problem`` lines (core/schema.py); nlp.rules compiles the result.

Where the rules in force live (the analyst's copy, the last good one) is here too, with
:func:`known_good_thresholds`: what ``veille review`` needs of them, read without spaCy (docs/nlp.md).
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import Node
from yaml.resolver import Resolver

from core.celex import CELEX_RE, base_celex
from core.errors import UserError
from core.profiles import unknown_label
from core.schema import Lines, at, grouped, validate, yaml_key_problem, yaml_lines
from core.textfile import read_text, why
from nlp.fields import FIELDS
from nlp.safe_regex import pattern_problem

try:  # libyaml's parser: 10x faster than the pure-Python one on the HAS rules (a backtest parses two files)
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


if TYPE_CHECKING:
    from core.config import Settings

RULES_FILE = "rules.yaml"
LAST_GOOD = "last_good.yaml"  # in the history: the last text put in force whole (matchers compiled)
MAX_BYTES = 512 * 1024  # the HAS rules are 33 KB
MAX_NODES = 100_000  # YAML nodes, counting each alias as the nodes it stands for (the HAS rules: 2,329)
MAX_ALIASES = 100
MAX_DEPTH = 20  # nesting of lists and mappings (the HAS rules: 7)
# The only tags constructed: plain YAML data. Anything else (!!python/..., !!binary, !!set, !local) is refused.
SAFE_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


class RulesError(UserError, ValueError):
    """A one-line ``file:line: what is wrong``."""


class LoadError(ValueError):
    """``line: problem``; nlp.rules turns it into a RulesError naming the file."""

    def __init__(self, line: int | str, problem: str) -> None:
        super().__init__(f"{line}: {problem}")
        self.line, self.problem = line, problem


class BoundedLoader(Composer, _Parser, Resolver):
    """Composes one YAML document, refusing it past MAX_NODES / MAX_ALIASES / MAX_DEPTH or with an unsafe tag.

    Composing is the only stage where an alias is cheap (the same node object); anything that walks the
    result (constructing, checking patterns, hashing them) pays for every alias expanded, so the count
    includes them: an alias bomb of a few hundred bytes is refused at its first overflowing alias."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        Composer.__init__(self)
        Resolver.__init__(self)
        self._nodes = self._aliases = self._depth = 0
        self._sizes: dict[str, int] = {}  # anchor -> nodes it stands for, once composed

    def compose_node(self, parent: Node | None, index: object) -> Node:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else "?"
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise LoadError(line, f"trop d'alias (plus de {MAX_ALIASES})")
            if event.anchor in self.anchors and event.anchor not in self._sizes:
                raise LoadError(line, f"l'alias *{event.anchor} renvoie à une liste ou une table qui le contient")
            self._count(self._sizes.get(event.anchor, 0), line)
            return super().compose_node(parent, index)
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and self._full_tag(tag) not in SAFE_TAGS:
            raise LoadError(line, f"étiquette YAML {tag!r} interdite (valeurs simples, listes et tables seulement)")
        anchor = getattr(event, "anchor", None)
        self._sizes.pop(anchor, None)  # an anchor defined again: its aliases inside refer to this new node
        self._count(1, line)
        nested = isinstance(event, SequenceStartEvent | MappingStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise LoadError(line, f"imbrication trop profonde (plus de {MAX_DEPTH} niveaux de listes et de tables)")
        before = self._nodes
        node = super().compose_node(parent, index)
        if nested:
            self._depth -= 1
        if anchor is not None:
            self._sizes[anchor] = self._nodes - before + 1
        if node.tag not in SAFE_TAGS:  # '<<' (merge) or '=' (value): resolved to types not constructed safely
            raise LoadError(
                line, f"YAML {node.tag.rsplit(':', 1)[-1]} {node.value!r} interdit : à mettre entre guillemets"
            )
        return node

    def _count(self, n: int, line: int | str) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise LoadError(line, f"trop de nœuds YAML (plus de {grouped(MAX_NODES)}, alias développés)")

    @staticmethod
    def _full_tag(tag: str) -> str:
        return "tag:yaml.org,2002:" + tag[2:] if tag.startswith("!!") else tag


def compose_yaml(text: str) -> Node | None:
    """The document's root node (None for an empty file), or LoadError(line, problem)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise LoadError(1, f"fichier de règles trop gros ({grouped(size)} octets, au plus {grouped(MAX_BYTES)})")
    loader = BoundedLoader(text)
    try:
        return loader.get_single_node()
    except LoadError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise LoadError(mark.line + 1 if mark else "?", f"YAML invalide : {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (control characters...)
        line = text[: exc.position].count("\n") + 1
        raise LoadError(line, f"YAML invalide : caractère {exc.character!r} interdit") from None
    except yaml.YAMLError as exc:
        raise LoadError("?", f"YAML invalide : {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()


def construct(node: Node) -> object:
    """The Python value of a composed node: safe types only; a bad value (a date that does not exist, an
    integer of more digits than Python converts) is a LoadError at its line, never another exception."""
    try:
        return SafeConstructor().construct_document(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None) or node.start_mark
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise LoadError(mark.line + 1, f"valeur invalide : {problem[:200]}") from None


# -- the rules file's schema ------------------------------------------------------------------------------------
# Every check is a pydantic type or validator, so a mistake is one ``file:line: key.path: problem`` line
# (core.schema). What depends on the file or the profile comes through the validation context:
# ``known_labels`` (the profile's labels, or None), ``file_labels`` (the labels this file scores) and
# ``check_pattern`` (spaCy's own validator of a token pattern, from nlp.rules).

WHEN_KEYS = ("source", "kind", "doc_type", "celex")
WEIGHTED_FIELDS = (*FIELDS, "meta")


def _text(v: object) -> str:
    if not isinstance(v, str | int) or isinstance(v, bool) or not str(v).strip():
        raise ValueError("doit être un texte non vide")
    return str(v).strip()


def _as_list(v: object) -> object:
    """A text stands for a list of one."""
    if isinstance(v, dict):
        raise ValueError("doit être un texte ou une liste de textes")
    return v if isinstance(v, list) else [v]


def _between(lo: float, hi: float) -> BeforeValidator:
    def check(v: object) -> float:
        if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
            raise ValueError(f"doit être un nombre entre {lo} et {hi}")
        return float(v)

    return BeforeValidator(check)


def _celex(v: str) -> str:
    celex = v.upper()
    if not CELEX_RE.fullmatch(celex):
        raise ValueError(f"l'acte {celex!r} n'est pas un numéro CELEX comme 32021R2282")
    return base_celex(celex) or celex


def _fields(v: list[str]) -> list[str]:
    for f in v:
        if f not in FIELDS:
            raise ValueError(f"champ inconnu {f!r} (permis : {', '.join(FIELDS)})")
    return v


def _token(v: object) -> object:
    if not isinstance(v, dict) or not v:
        raise ValueError("chaque jeton d'un motif doit être une table comme {LOWER: mot}")
    return v


def _pattern(v: list[dict], info: ValidationInfo) -> str:
    """A token pattern that cannot hang the matcher (nlp/safe_regex.py) and that spaCy accepts, as JSON."""
    if not v:
        raise ValueError("un motif de jetons demande au moins un jeton")
    if bad := pattern_problem(v):
        raise ValueError(f"motif de jetons invalide : jeton {bad[0] + 1} : {bad[1]}")
    check = (info.context or {}).get("check_pattern")
    try:
        if check is not None:
            check(v)
        return json.dumps(v, sort_keys=True, ensure_ascii=False)
    except Exception as exc:  # whatever spaCy (or JSON) raises on analyst input is a rule error
        raise ValueError(f"motif de jetons invalide : {' '.join(str(exc).split())[:200]}") from None


def _known_label(v: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("known_labels")
    if known is not None and v not in known:
        raise ValueError(unknown_label(v, known))
    return v


def _scored_labels(v: list[str], info: ValidationInfo) -> list[str]:
    scored = (info.context or {}).get("file_labels", set())
    for lb in v:
        if lb not in scored:
            raise ValueError(unknown_label(lb, scored, "ce fichier note"))
    return v


def _description(v: object) -> object:
    return {"fr": v} if isinstance(v, str | int) and not isinstance(v, bool) else v  # a plain text is French


Text = Annotated[str, BeforeValidator(_text)]
Texts = Annotated[list[Text], BeforeValidator(_as_list)]
Unit = Annotated[float, _between(0.0, 1.0)]
Pattern = Annotated[list[Annotated[dict, BeforeValidator(_token)]], AfterValidator(_pattern)]
Act = Annotated[Text, AfterValidator(_celex)]
LabelId = Annotated[str, AfterValidator(_known_label)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _phrases(spec: BaseModel) -> tuple[tuple[str, str], ...]:
    """(en|fr|any, phrase) of a rule or of its ``also``/``unless`` conditions."""
    return tuple((lang, p) for lang in ("en", "fr", "any") for p in getattr(spec, lang))


class Conditions(_Strict):
    """A rule's ``also``/``unless``: phrases per language."""

    en: Texts = []
    fr: Texts = []
    any: Texts = []

    def phrases(self) -> tuple[tuple[str, str], ...]:
        return _phrases(self)


class Description(_Strict):
    en: Text | None = None
    fr: Text | None = None


class _Rule(_Strict):
    name: Text | None = None  # default: rule<n> / neg<n>, its place in its list
    en: Texts = []
    fr: Texts = []
    any: Texts = []
    patterns: list[Pattern] = []
    acts: list[Act] = []
    fields: Annotated[Texts, AfterValidator(_fields)] = list(FIELDS)
    when: dict[Literal[WHEN_KEYS], Texts] = {}  # type: ignore[valid-type]  # file order kept: it is the shown order
    also: Conditions = Conditions()
    unless: Conditions = Conditions()
    description: Annotated[Description, BeforeValidator(_description)] = Description()

    def phrases(self) -> tuple[tuple[str, str], ...]:
        return _phrases(self)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[\w.-]+", v):
            raise ValueError(f"nom de règle {v!r} : lettres, chiffres, '-', '_' ou '.' seulement")
        return v

    @model_validator(mode="after")
    def _finds_something(self) -> _Rule:
        if not (self.phrases() or self.patterns or self.acts or self.when):
            raise ValueError(
                "une règle demande des expressions (en/fr/any), des motifs (patterns), des actes (acts) ou un 'when'"
            )
        return self


def _only(what: str) -> object:
    """A key of another kind of rule: refused with where it belongs (``exclude``: not listed as allowed here)."""

    def refuse(v: object) -> object:
        raise ValueError(f"seulement pour {what}")

    return Annotated[object, AfterValidator(refuse), Field(exclude=True)]


_WIDE_ONLY = _only("les négatives de tout le profil ('negatives:' au premier niveau)")
_NEGATIVE_ONLY = _only("les négatives")
_POSITIVE_ONLY = _only("les règles positives")


class PositiveRule(_Rule):
    weight: Unit  # contribution in (0, 1]
    penalty: _NEGATIVE_ONLY = None  # type: ignore[valid-type]
    labels: _WIDE_ONLY = None  # type: ignore[valid-type]


class LabelNegative(_Rule):
    penalty: Unit  # 1 = veto
    weight: _POSITIVE_ONLY = None  # type: ignore[valid-type]
    labels: _WIDE_ONLY = None  # type: ignore[valid-type]


class WideNegative(_Rule):
    """A top-level negative cue: lowers every label, or the ``labels`` it names."""

    penalty: Unit
    weight: _POSITIVE_ONLY = None  # type: ignore[valid-type]
    labels: Annotated[Texts, AfterValidator(_scored_labels)] = []


class LabelRulesSpec(_Strict):
    threshold: Unit | None = None  # default: defaults.threshold
    rules: list[PositiveRule] = []
    negatives: list[LabelNegative] = []


class Defaults(_Strict):
    threshold: Unit = 0.5
    field_weights: dict[Literal[WEIGHTED_FIELDS], Unit] = {}  # type: ignore[valid-type]
    rules_weight: Unit = 0.5  # share of the rules in the combined score when a model is present
    body_count: Annotated[float, _between(1, 20)] = 1


class RulesFile(_Strict):
    version: object = None
    defaults: Defaults = Defaults()
    labels: dict[LabelId, LabelRulesSpec]
    negatives: list[WideNegative] = []


def read_rules_file(
    text: str,
    filename: str,
    known_labels: set[str] | None,
    check_pattern: Callable[[list[dict]], object] | None,
    error: type[Exception],
) -> tuple[RulesFile, Lines]:
    """The validated rules file and the lines of its key paths, or ``error("file:line: key.path: problem")``."""
    try:  # bounded: size, nodes, aliases, depth, safe tags only
        root = compose_yaml(text)
    except LoadError as exc:
        raise error(f"{filename}:{exc}") from None
    if root is None:
        raise error(f"{filename}:1: fichier de règles vide")
    if bad := yaml_key_problem(root):
        raise error(at(filename, *bad))
    try:
        data = construct(root)
    except LoadError as exc:
        raise error(f"{filename}:{exc}") from None
    lines = yaml_lines(root)
    labels = data.get("labels") if isinstance(data, dict) else None
    context = {
        "known_labels": known_labels,
        "file_labels": set(labels) if isinstance(labels, dict) else set(),
        "check_pattern": check_pattern,
    }
    return validate(RulesFile, data, filename, lines, error, context), lines


def label_thresholds(spec: RulesFile) -> dict[str, float]:
    """Each label's threshold: its own, else the file's default."""
    d = spec.defaults.threshold
    return {label: ls.threshold if ls.threshold is not None else d for label, ls in spec.labels.items()}


# -- where the rules live ----------------------------------------------------------------------------------


def read_rules(path: Path) -> str:
    """The text of a rules file; a RulesError (never a hang) for a file too large, a device, a pipe."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # /dev/zero, a FIFO: would be read forever
            raise RulesError(f"{path}:0: pas un fichier ordinaire")
        if st.st_size > MAX_BYTES:  # not read at all: a rules file is never that large
            raise RulesError(
                f"{path}:1: fichier de règles trop gros ({grouped(st.st_size)} octets, au plus {grouped(MAX_BYTES)})"
            )
        return read_text(path, RulesError)
    except OSError as exc:
        raise RulesError(f"{path}:0: illisible : {why(exc)}") from None


def rules_path(settings: Settings) -> Path:
    """The rules file in place: the analyst's copy, else the profile's shipped one."""
    from core.profiles import profile_file

    return profile_file(settings, RULES_FILE)


def edit_dir(settings: Settings) -> Path:
    return settings.home / "profiles" / settings.profile


def history_dir(settings: Settings) -> Path:
    """Where saved rules keep the versions they replaced and ``history.jsonl`` (who saved what, when)."""
    return edit_dir(settings) / "rules_history"


def profile_labels(settings: Settings) -> set[str]:
    from core.profiles import load_labels

    return set(load_labels(settings))


# The last answer, keyed by the versions of the files it read: the workbench's review page asks on every request.
_KNOWN: dict[tuple, dict[str, float] | None] = {}


def known_good_thresholds(settings: Settings) -> dict[str, float] | None:
    """The thresholds of the rules in force, read without compiling them (no spaCy), when the file in place is
    the package's own or the text last put in force whole (``last_good.yaml``: nlp.rules.active_rules and
    save_rules write it once matchers and all were accepted), so that its schema against the profile's labels of
    now is the only check left. None otherwise (a file changed since, or refused): nlp.rules.active_rules then
    decides, and writes that copy when the file is good."""
    from core.profiles import profile_file

    path, last_good = rules_path(settings), history_dir(settings) / LAST_GOOD
    files = [path, profile_file(settings, "profile.toml")] + ([last_good] if last_good.exists() else [])
    try:
        stats = [(p, p.stat()) for p in files]
    except OSError:
        return None
    key = tuple((str(p), st.st_ino, st.st_mtime_ns, st.st_size) for p, st in stats)
    if key not in _KNOWN:
        _KNOWN.clear()  # one version per process is enough
        _KNOWN[key] = _known_good(settings, path, last_good)
    return _KNOWN[key]


def _known_good(settings: Settings, path: Path, last_good: Path) -> dict[str, float] | None:
    from core.profiles import SHIPPED

    try:
        text = read_rules(path)
        # The package's own rules are good as shipped (tests/test_nlp_rules.py compiles them), copy or not.
        if not path.is_relative_to(SHIPPED) and text != last_good.read_bytes().decode("utf-8", "replace"):
            return None
        spec, _ = read_rules_file(text, str(path), profile_labels(settings), None, RulesError)
    except (OSError, RulesError):
        return None
    return label_thresholds(spec)


def thresholds_in_force(settings: Settings) -> dict[str, float]:
    """Per label, the threshold of the rules in force (nlp.rules.active_rules), without spaCy when it can."""
    quick = known_good_thresholds(settings)
    if quick is not None:
        return quick
    from nlp.rules import active_rules  # compiles the matchers: spaCy

    return active_rules(settings).labels
