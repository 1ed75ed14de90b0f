"""The rules' aligned phrases, for search's cross-language lexicon (``storage.crosslang.lexicon``)."""

from __future__ import annotations

import logging

from core.config import Settings
from nlp.rules import RulesError, active_rules

log = logging.getLogger(__name__)


def rule_units(settings: Settings) -> list[tuple[str, str]]:
    """Each rule's French and English phrases (the rules in force), one aligned unit per rule."""
    try:
        rules = active_rules(settings).rules
    except RulesError as exc:  # no rules in force at all: learn from the archive alone
        log.warning("cross-language search without the rules' phrases: %s", exc)
        return []
    out = []
    for r in rules:
        fr = " ; ".join(p for lang, p in r.phrases if lang == "fr")
        en = " ; ".join(p for lang, p in r.phrases if lang == "en")
        if fr and en:
            out.append((fr, en))
    return out
