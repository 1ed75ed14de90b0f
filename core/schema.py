"""One ``file:line: key.path: problem`` for every file people edit, TOML or YAML.

``veille.toml``, ``profile.toml``, ``routing.toml`` and ``rules.yaml`` are all validated by pydantic
models; :func:`validate` turns the first problem in the file (the smallest line) into one line that
names the file, the line, the key path (``labels.deai.rules.0.weight``) and what is wrong. The line
comes from the source text: :func:`toml_lines` (TOML keeps no positions, so keys and headers are
looked up in the text) or :func:`yaml_lines` (the composed YAML nodes carry their marks). Input
values are never echoed: a config value may be a secret.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
Lines = Callable[[Loc], int | None]  # the line of a key path in the file, None if unknown

# pydantic's error types in French, in the files' own terms (the CLI speaks French: docs/decisions.md). The
# placeholders are the error's ``ctx``; a type missing here says pydantic's words after a French lead-in.
_FRENCH = {
    "missing": "manquant (obligatoire)",
    "extra_forbidden": "clé inconnue",  # validate() names the key and the keys allowed
    "model_type": "doit être une table de clés et de valeurs",
    "model_attributes_type": "doit être une table de clés et de valeurs",
    "dict_type": "doit être une table de clés et de valeurs",
    "list_type": "doit être une liste",
    "tuple_type": "doit être une liste",
    "set_type": "doit être une liste",
    "string_type": "doit être un texte",
    "string_too_short": "doit avoir au moins {min_length} caractère(s)",
    "string_too_long": "doit avoir au plus {max_length} caractère(s)",
    "string_pattern_mismatch": "doit suivre le motif '{pattern}'",
    "too_short": "doit avoir au moins {min_length} élément(s)",
    "too_long": "doit avoir au plus {max_length} élément(s)",
    "int_type": "doit être un nombre entier",
    "int_parsing": "doit être un nombre entier",
    "int_from_float": "doit être un nombre entier (sans décimales)",
    "int_parsing_size": "nombre entier trop grand",
    "float_type": "doit être un nombre",
    "float_parsing": "doit être un nombre",
    "finite_number": "doit être un nombre fini",
    "decimal_parsing": "doit être un nombre",
    "bool_type": "doit être true ou false",
    "bool_parsing": "doit être true ou false",
    "greater_than": "doit être supérieur à {gt}",
    "greater_than_equal": "doit être supérieur ou égal à {ge}",
    "less_than": "doit être inférieur à {lt}",
    "less_than_equal": "doit être inférieur ou égal à {le}",
    "multiple_of": "doit être un multiple de {multiple_of}",
    "literal_error": "doit être {expected}",
    "enum": "doit être {expected}",
    "date_type": "doit être une date AAAA-MM-JJ",
    "date_parsing": "doit être une date AAAA-MM-JJ",
    "date_from_datetime_parsing": "doit être une date AAAA-MM-JJ",
    "date_from_datetime_inexact": "doit être une date AAAA-MM-JJ, sans heure",
    "datetime_type": "doit être une date et une heure (AAAA-MM-JJTHH:MM)",
    "datetime_parsing": "doit être une date et une heure (AAAA-MM-JJTHH:MM)",
    "datetime_from_date_parsing": "doit être une date et une heure (AAAA-MM-JJTHH:MM)",
    "time_type": "doit être une heure HH:MM",
    "time_parsing": "doit être une heure HH:MM",
    "time_delta_type": "doit être une durée",
    "time_delta_parsing": "doit être une durée",
    "url_type": "doit être une adresse web",
    "url_parsing": "doit être une adresse web",
    "url_scheme": "doit être une adresse {expected_schemes}",
    "none_required": "doit être vide",
    "frozen_instance": "ne peut pas être modifié",
    "is_instance_of": "n'est pas du type attendu",
}


_OURS = ("unknown_",)  # PydanticCustomError types of our own models (core.config): their messages are French


def problem(err: Mapping[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) said in French, without its place: our own
    validators' messages (ValueError, PydanticCustomError) are already French and are kept as written."""
    kind, ctx = err["type"], dict(err.get("ctx") or {})
    ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()}  # 0, not 0.0
    if kind in ("value_error", "assertion_error") or kind not in _FRENCH and kind.startswith(_OURS):
        return " ".join(str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ").split())
    if kind in ("literal_error", "enum"):  # pydantic joins the choices with an English "or"
        ctx["expected"] = re.sub(r"(?<=') or (?=')", " ou ", str(ctx.get("expected", "")))
    if "expected_schemes" in ctx:
        ctx["expected_schemes"] = re.sub(r"(?<=') or (?=')", " ou ", str(ctx["expected_schemes"]))
    template = _FRENCH.get(kind)
    if template is None:
        return f"valeur refusée ({' '.join(str(err['msg']).split())})"
    try:
        return template.format(**ctx)
    except (KeyError, IndexError, ValueError):  # a pydantic version with other ctx keys: the type still says it
        return template.split(" {")[0]


def validate(
    model: type[M],
    data: Any,
    path: Path | str,
    lines: Lines,
    error: type[Exception] = ValueError,
    context: Mapping[str, Any] | None = None,
) -> M:
    """``model.model_validate(data)``, or ``error("file:line: key.path: problem")`` for its first problem."""
    try:
        return model.model_validate(data, context=dict(context) if context else None)
    except ValidationError as exc:
        raise error(error_line(exc, model, path, lines)) from None


def error_line(exc: ValidationError, model: type[BaseModel], path: Path | str, lines: Lines) -> str:
    """The one line naming the first (smallest line) of ``exc``'s problems."""
    errors = exc.errors(include_url=False, include_input=False)
    for err in errors:
        err["loc"] = tuple(p for p in err["loc"] if p != "[key]")  # a dict key's own error: the key is the place
    # A key missing where an unknown one stands is most likely that key misspelt: the unknown one is named.
    misspelt = {e["loc"][:-1] for e in errors if e["type"] == "extra_forbidden"}
    found = [
        (lines(e["loc"]) or 0, e["loc"], _problem(e, model, e["loc"]))
        for e in errors
        if not (e["type"] == "missing" and e["loc"][:-1] in misspelt)
    ]
    line, loc, problem = min(found, key=lambda f: (f[0] or 10**9, len(f[1])))
    return at(path, line, loc, problem)


def grouped(n: int) -> str:
    """``100000`` -> ``"100 000"``: numbers in messages, grouped the French way."""
    return f"{n:_}".replace("_", " ")


def at(path: Path | str, line: int | None, loc: Loc, problem: str) -> str:
    """``file:line: key.path: problem`` (``?`` for an unknown line; no key part at the top of the file)."""
    key = ".".join(str(p) for p in loc)
    return f"{path}:{line or '?'}: {key + ': ' if key else ''}{problem}"


def _problem(err: Any, model: type[BaseModel], loc: Loc) -> str:
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        return f"clé inconnue {loc[-1]!r}" + (f" (permises : {', '.join(allowed)})" if allowed else "")
    return problem(err)


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model accepts at ``loc`` (a path of field names, list indexes and dict keys)."""
    t: Any = model
    for part in loc:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            field = t.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            t = field.annotation
        elif get_origin(t) in (list, tuple, set, frozenset) and get_args(t):
            t = get_args(t)[0]
        elif get_origin(t) is dict and get_args(t):
            t = get_args(t)[1]
        else:
            return []
    t = _unwrap(t)
    if not (isinstance(t, type) and issubclass(t, BaseModel)):
        return []
    return [name for name, f in t.model_fields.items() if not f.exclude]  # excluded: refused with a reason


def _unwrap(t: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` -> ``X``."""
    while True:
        if get_origin(t) is Annotated:
            t = get_args(t)[0]
        elif get_origin(t) in (Union, types.UnionType):
            args = [a for a in get_args(t) if a is not type(None)]
            if len(args) != 1:
                return t
            t = args[0]
        else:
            return t


# -- where a key path is in the text -------------------------------------------------------------------------


def toml_lines(text: str) -> Lines:
    """Lines of key paths in TOML text (TOML parsers keep no positions: the text is read as people write it).

    Each part of the path is a table header (``[a.b]``, ``[[a]]``, or the first ``[a.x]`` under it), else a
    ``key =`` line inside the current table; a path that goes further than the text (a missing key) stops
    at the deepest table or key found."""
    lines = text.splitlines()
    any_header = re.compile(r"^\s*\[")

    def name(part: str) -> str:
        return rf"(?:\"{re.escape(part)}\"|'{re.escape(part)}'|{re.escape(part)})"

    def find(pattern: re.Pattern[str], start: int, stop_at_header: bool) -> int | None:
        for i in range(start, len(lines)):
            if pattern.match(lines[i]):
                return i
            if stop_at_header and i > start and any_header.match(lines[i]):
                return None
        return None

    def path(table: list[str]) -> str:
        return r"\s*\.\s*".join(name(t) for t in table)

    def line_of(loc: Loc) -> int | None:
        start, table = 0, []
        for part in loc:
            if isinstance(part, int):  # n-th [[table]] of the current array
                header = re.compile(rf"^\s*\[\[\s*{path(table)}\s*\]\]")
                hits = [i for i, ln in enumerate(lines) if header.match(ln)]
                if part < len(hits):
                    start = hits[part]
                continue
            table.append(str(part))
            header = re.compile(rf"^\s*\[\[?\s*{path(table)}\s*(\]|\.)")
            key = re.compile(rf"^\s*{name(str(part))}\s*=")
            found = find(header, start, False)
            if found is None:
                found = find(key, start, True)
            if found is None:
                break
            start = found
        return start + 1

    return line_of


def yaml_lines(root: Node | None) -> Lines:
    """Lines of key paths in a composed YAML document: a mapping entry's key line, a list item's first
    line; a path that goes further than the file (a missing key) stops at the deepest node it reached."""

    def line_of(loc: Loc) -> int | None:
        node, line = root, (root.start_mark.line + 1 if root is not None else 1)
        for part in loc:
            if isinstance(node, MappingNode):
                entry = next(
                    ((k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == str(part)), None
                )
                if entry is None:
                    break
                line, node = entry[0].start_mark.line + 1, entry[1]
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    return line_of


def yaml_key_problem(root: Node | None) -> tuple[int, Loc, str] | None:
    """(line, key path, problem) for the first mapping key that is not a plain word or that repeats an earlier
    one: YAML loaders keep the last silently, which would drop half of what an analyst wrote."""
    seen: set[int] = set()
    found: list[tuple[int, Loc, str]] = []
    todo: list[tuple[Node, Loc]] = [(root, ())] if root is not None else []
    while todo:
        node, loc = todo.pop()
        if id(node) in seen:  # an alias: its node was checked where it was anchored
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            keys: dict[str, int] = {}
            for k, v in node.value:
                line = k.start_mark.line + 1
                if not isinstance(k, ScalarNode):
                    found.append((line, loc, "les clés doivent être des mots simples"))
                elif k.value in keys:
                    found.append((line, (*loc, k.value), f"clé en double (première à la ligne {keys[k.value]})"))
                else:
                    keys[k.value] = line
                    todo.append((v, (*loc, k.value)))
        elif isinstance(node, SequenceNode):
            todo.extend((item, (*loc, i)) for i, item in enumerate(node.value))
    return min(found, key=lambda f: f[0]) if found else None
