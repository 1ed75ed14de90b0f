"""Token patterns that cannot hang the watch: bounded repeats, and regexes matched in linear time.

spaCy's Matcher runs a ``REGEX`` predicate with Python's backtracking ``re``, which holds the GIL: one
pattern such as ``(\\w+\\w?)+!`` froze the whole workbench and stopped ``veille run`` in classification.
Rules therefore (1) refuse, at load time, the constructs that backtrack catastrophically (nested
quantifiers, overlapping alternatives under a quantifier, backreferences) and what RE2 cannot run
(lookarounds), and (2) never hand a regex to spaCy: :func:`linear_regex` rewrites each ``REGEX``
predicate into a token extension matched by RE2 (``google-re2``, linear in the text).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from re import _constants as C  # the opcodes of Python's own regex parser
from re import _parser
from typing import TYPE_CHECKING

import re2

if TYPE_CHECKING:
    from spacy.tokens import Token

MAX_REGEX_CHARS = 300
MAX_OP_REPEAT = 20  # {n,m} in a token's OP: spaCy unrolls it into n + m states
TEXT_ATTRS = ("ORTH", "TEXT", "LOWER", "NORM", "LEMMA", "SHAPE", "PREFIX", "SUFFIX", "POS", "TAG", "DEP", "ENT_TYPE")
OPS = ("!", "?", "+", "*", "1")
OP_RANGE = re.compile(r"\{(\d*)(?:,(\d*))?\}")
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", C.MAX_REPEAT))
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors are reported as rule errors, not printed by the library


def regex_problem(pattern: object) -> str | None:
    """Why ``pattern`` is refused as a rule regex, or None."""
    if not isinstance(pattern, str) or not pattern:
        return "une REGEX doit être un texte non vide"
    if len(pattern) > MAX_REGEX_CHARS:
        return f"regex de {len(pattern)} caractères (au plus {MAX_REGEX_CHARS})"
    try:
        parsed = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"regex invalide {pattern!r} : {exc}"
    problem = _walk(parsed, in_repeat=False)
    if problem:
        return f"regex {pattern!r} : {problem}"
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        return f"regex {pattern!r} non prise en charge par le moteur en temps linéaire (RE2) : {_text(exc)}"
    return None


def _text(exc: Exception) -> str:
    msg = exc.args[0] if exc.args else exc
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


def _walk(sub: _parser.SubPattern | list, in_repeat: bool) -> str | None:
    """The first catastrophic construct of a parsed regex (``in_repeat``: inside a quantifier of max > 1)."""
    for op, av in sub:
        problem = None
        if op in (C.GROUPREF, C.GROUPREF_EXISTS):
            return "références arrière (\\1, (?P=name), (?(1)...)) interdites"
        if op in (C.ASSERT, C.ASSERT_NOT):
            return "assertions avant/arrière ((?=...), (?!...), (?<=...), (?<!...)) interdites"
        if op in _REPEATS:
            _lo, hi, inner = av
            repeats = hi > 1
            if repeats and in_repeat:
                return (
                    "quantificateurs imbriqués (un groupe répété dans une répétition, comme (a+)+) : temps exponentiel"
                )
            if repeats and _overlapping_branch(inner):
                return "alternatives au même début sous un quantificateur (comme (a|ab)+) : temps exponentiel"
            problem = _walk(inner, in_repeat or repeats)
        elif op is C.SUBPATTERN:
            problem = _walk(av[-1], in_repeat)
        elif op is C.BRANCH:
            problem = next((p for branch in av[1] if (p := _walk(branch, in_repeat))), None)
        elif op is getattr(C, "ATOMIC_GROUP", None):
            problem = _walk(av, in_repeat)
        if problem:
            return problem
    return None


def _overlapping_branch(sub: _parser.SubPattern | list) -> bool:
    """Whether an alternation in ``sub`` (outside nested repeats) has two alternatives that may start alike."""
    for op, av in sub:
        if op is C.BRANCH:
            seen: set[str] = set()
            for branch in av[1]:
                first = _first_chars(branch)
                if first is None or first & seen:
                    return True
                seen |= first
        elif op is C.SUBPATTERN and _overlapping_branch(av[-1]):
            return True
    return False


def _first_chars(sub: _parser.SubPattern | list) -> set[str] | None:
    """The characters a match of ``sub`` can start with, or None when not a small known set."""
    if not len(sub):
        return None  # an empty alternative matches anywhere
    op, av = sub[0]
    if op is C.LITERAL:
        return {chr(av)}
    if op is C.IN and all(o is C.LITERAL or (o is C.RANGE and v[1] - v[0] < 256) for o, v in av):
        return {chr(c) for o, v in av for c in ([v] if o is C.LITERAL else range(v[0], v[1] + 1))}
    if op is C.SUBPATTERN:
        return _first_chars(av[-1])
    if op is C.BRANCH:
        sets = [_first_chars(b) for b in av[1]]
        return None if any(s is None for s in sets) else set().union(*sets)
    return None


def op_problem(op: object) -> str | None:
    if isinstance(op, str) and op in OPS:
        return None
    m = OP_RANGE.fullmatch(op) if isinstance(op, str) else None
    if not m or not any(m.groups()):
        return f"OP {op!r} : un de {' '.join(OPS)}, {{n}}, {{n,m}}, {{n,}} ou {{,m}}"
    if any(g and int(g) > MAX_OP_REPEAT for g in m.groups()):
        return f"OP {op!r} : au plus {MAX_OP_REPEAT} répétitions"
    return None


def pattern_problem(pattern: list[dict]) -> tuple[int, str] | None:
    """(index of the token, why) for the first token spec that could hang or blow up the matcher, or None."""
    for i, spec in enumerate(pattern):
        for key, value in spec.items():
            name = key.upper() if isinstance(key, str) else key
            if name == "_":
                return i, "attributs personnalisés ('_') indisponibles dans les règles"
            if name == "OP":
                problem = op_problem(value) or _wildcard_problem(value, spec)
            elif isinstance(value, dict):
                problem = _value_problem(name, value)
            else:
                problem = None
            if problem:
                return i, problem
    return None


WORD_ATTRS = ("ORTH", "TEXT", "LOWER", "NORM", "LEMMA")


def _wildcard_problem(op: str, spec: dict) -> str | None:
    """An unbounded repeat of a token that is not a given word makes every span of a notice a match
    (quadratic in its length): refused."""
    if op not in ("+", "*") and not op.endswith(",}"):
        return None
    for key, value in spec.items():
        words = isinstance(value, str) or (isinstance(value, dict) and any(str(k).upper() == "IN" for k in value))
        if isinstance(key, str) and key.upper() in WORD_ATTRS and words:
            return None
    return f"OP {op!r} répète n'importe quel jeton : donnez-lui des mots ({{LOWER: mot}} ou {{LOWER: {{IN: [...]}}}})"


def _value_problem(attr: object, value: dict) -> str | None:
    for op, arg in value.items():
        if isinstance(op, str) and op.upper() == "REGEX":
            if attr not in TEXT_ATTRS:
                return f"REGEX est pour les attributs de texte ({', '.join(TEXT_ATTRS)}), pas {attr!r}"
            if isinstance(arg, dict):
                if len(arg) != 1 or not all(isinstance(k, str) and k.upper() in ("IN", "NOT_IN") for k in arg):
                    return "REGEX prend un texte ou {IN: [...]} / {NOT_IN: [...]}"
                (items,) = arg.values()
                if not isinstance(items, list) or not items:
                    return "REGEX {IN: ...} : une liste non vide de regex"
                problem = next((p for rx in items if (p := regex_problem(rx))), None)
            else:
                problem = regex_problem(arg)
            if problem:
                return problem
        elif isinstance(arg, dict) and _has_regex(arg):
            return f"REGEX dans {op!r} : écrivez {{ATTR: {{REGEX: ...}}}} ou {{ATTR: {{REGEX: {{IN: [...]}}}}}}"
    return None


def _has_regex(value: object) -> bool:
    if isinstance(value, dict):
        return any((isinstance(k, str) and k.upper() == "REGEX") or _has_regex(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_regex(v) for v in value)
    return False


# -- matching with RE2 ----------------------------------------------------------------------------------


def linear_regex(pattern: list[dict]) -> list[dict]:
    """The pattern with each ``{ATTR: {REGEX: ...}}`` turned into a token extension matched by RE2."""
    out = []
    for spec in pattern:
        spec, ext = dict(spec), {}
        for attr, value in list(spec.items()):
            if not isinstance(value, dict):
                continue
            rx = [v for k, v in value.items() if isinstance(k, str) and k.upper() == "REGEX"]
            if not rx:
                continue
            ext[_extension(str(attr).upper(), rx[0])] = True
            rest = {k: v for k, v in value.items() if not (isinstance(k, str) and k.upper() == "REGEX")}
            if rest:
                spec[attr] = rest
            else:
                del spec[attr]
        if ext:
            spec["_"] = ext
        out.append(spec)
    return out


def _extension(attr: str, rx: object) -> str:
    """A boolean token extension answering the regex predicate (registered once per process)."""
    from spacy.tokens import Token  # here: checking a rules file's patterns needs no spaCy

    name = "veille_rx_" + hashlib.sha256(json.dumps([attr, rx], sort_keys=True).encode()).hexdigest()[:16]
    if not Token.has_extension(name):
        Token.set_extension(name, getter=_getter(attr, rx))
    return name


def _getter(attr: str, rx: object) -> Callable[[Token], bool]:
    field = "orth_" if attr in ("ORTH", "TEXT") else attr.lower() + "_"
    if isinstance(rx, dict):
        ((op, items),) = rx.items()
        compiled = [re2.compile(r, _RE2_OPTIONS) for r in items]
        wanted = op.upper() == "IN"
        return lambda token: any(c.search(getattr(token, field)) for c in compiled) == wanted
    one = re2.compile(rx, _RE2_OPTIONS)
    return lambda token: one.search(getattr(token, field)) is not None
