"""The rules that fired, as evidence people can read: one entry per rule, its description from the rules
file, and the phrases it found as they are written in the notice (each once).

Stored in ``LabelScore.explanation["fired"]`` and read back by the workbench, the digests, Slack and
``veille explain``. Rows stored before (``words`` a string of the matched tokens, no description) are read
by :func:`read_fired` into the same shape.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no spaCy import for the readers (digests, the web, the CLI's start-up)
    from nlp.rules import RuleSet

FIELD_NAMES = {
    "fr": {"title": "titre", "summary": "résumé", "body": "texte", "acts": "références", "meta": "métadonnées"},
    "en": {"title": "title", "summary": "summary", "body": "text", "acts": "references", "meta": "metadata"},
}
AGAINST = {"fr": "Indice contraire", "en": "Counter-indication"}
PHRASE_CHARS = 100  # a phrase longer than this (a long token pattern) is cut at a word boundary

_DESCRIPTIONS: dict[str, dict[str, dict[str, str]]] = {}  # rules version -> rule key -> {fr, en}


def fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive form of a phrase, to show each phrase once."""
    nfd = unicodedata.normalize("NFD", text.casefold())
    return " ".join("".join(c for c in nfd if not unicodedata.combining(c)).split())


def descriptions(rules: RuleSet) -> dict[str, dict[str, str]]:
    if rules.version not in _DESCRIPTIONS:
        _DESCRIPTIONS.clear()  # one version per process is enough
        _DESCRIPTIONS[rules.version] = {r.key: dict(r.description) for r in rules.rules if r.description}
    return _DESCRIPTIONS[rules.version]


def _act_words(words: str) -> tuple[list[str], str]:
    """A hit on the notice's references (``celex 32017R0745``, ``legal basis ...``): the act number."""
    return [words.split()[-1]], "acts"


def evidence(fired: list[dict], rules: RuleSet) -> list[dict]:
    """Group ``RuleSet.score``'s matches (one per rule x phrase) into one entry per rule and label:
    ``{"rule", "label", "description": {fr, en} | None, "words": [phrases as written], "weight", "field"}``,
    strongest first, each phrase once."""
    desc = descriptions(rules)
    out: dict[tuple[str, str], dict] = {}
    for f in fired:
        words, fld = [f["words"]], f["field"]
        if fld == "meta":
            words, fld = _act_words(f["words"]) if f["words"].split()[-1][:1].isdigit() else ([], "meta")
        key = (f["rule"], f["label"])
        entry = out.get(key)
        if entry is None:
            entry = out[key] = {
                "rule": f["rule"],
                "label": f["label"],
                "description": desc.get(f["rule"]),
                "words": [],
                "weight": f["weight"],
                "field": fld,
            }
        entry["words"] = unique_phrases([*entry["words"], *words])
    for entry in out.values():
        entry["words"] = _outer(entry["words"])
    return list(out.values())


def _outer(words: list[str]) -> list[str]:
    """Drop a phrase found inside a longer one of the same rule (``dispositifs médicaux`` in
    ``dispositifs médicaux de diagnostic in vitro``): the longer one says it."""
    folded = [f" {fold(w)} " for w in words]
    return [w for w, f in zip(words, folded, strict=True) if not any(f != g and f in g for g in folded)]


def unique_phrases(words: Iterable[str]) -> list[str]:
    """Each phrase once (``Medical devices`` and ``medical devices`` are one), first spelling kept."""
    seen: dict[str, str] = {}
    for w in words:
        w = " ".join(str(w).split())
        if w and fold(w) not in seen:
            seen[fold(w)] = w
    return list(seen.values())


def read_fired(explanation: dict | None) -> list[dict]:
    """The stored evidence in today's shape, whatever version of veille stored it: ``words`` as a list of
    phrases (an older row kept a string of matched tokens), ``description`` present (None if unknown)."""
    out = []
    for f in (explanation or {}).get("fired", []) or []:
        if not isinstance(f, dict):
            continue
        words = f.get("words") or []
        words = [words] if isinstance(words, str) else [w for w in words if isinstance(w, str)]
        desc = f.get("description")
        out.append(
            {
                "rule": str(f.get("rule", "")),
                "label": f.get("label"),
                "description": desc if isinstance(desc, dict) else None,
                "words": unique_phrases(words),
                "weight": f.get("weight"),
                "field": f.get("field"),
            }
        )
    return out


def shorten(text: str, limit: int = PHRASE_CHARS) -> str:
    """``text`` cut at a word boundary, never inside a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:") + "…"


def rule_title(f: dict, lang: str = "fr") -> str:
    """The rule's description in ``lang`` (the other language, else the rule's name made readable)."""
    desc = f.get("description") or {}
    other = "en" if lang == "fr" else "fr"
    if desc.get(lang) or desc.get(other):
        return desc.get(lang) or desc[other]
    name = str(f.get("rule", "")).rsplit("/", 1)[-1]
    return name.replace("-", " ").replace("_", " ").capitalize() or "?"


def quoted(words: list[str], limit: int = 3, lang: str = "fr") -> str:
    shown = [shorten(w) for w in words[:limit]]
    if lang == "fr":
        return ", ".join(f"« {w} »" for w in shown)
    return ", ".join(f"“{w}”" for w in shown)


def sentence(f: dict, lang: str = "fr", ids: bool = False, limit: int = 3) -> str:
    """One line: ``Dispositifs médicaux (MDR, IVDR) : « medical devices », « MDR »`` (``ids``: the rule
    id in brackets, for analysts); a negative cue starts with ``Indice contraire —``."""
    text = rule_title(f, lang)
    if (f.get("weight") or 0) < 0:
        text = f"{AGAINST[lang]} — {text}"
    if f.get("words"):
        text += (" : " if lang == "fr" else ": ") + quoted(f["words"], limit, lang)
    if ids and f.get("rule"):
        text += f" [{f['rule']}]"
    return text


def field_name(f: dict, lang: str = "fr") -> str:
    return FIELD_NAMES[lang].get(str(f.get("field") or ""), str(f.get("field") or ""))
