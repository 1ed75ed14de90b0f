"""Which words of the archive a rule phrase catches.

Phrases are matched on stems, so one phrase catches its inflections, and sometimes an unrelated word
with the same stem: "aidants" (carers) also catches "aide" (aid), "immunization" catches "immunities".
``veille rules words PHRASE`` shows every form a phrase catches, before it goes into a rule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.config import Settings
from nlp.backtest import archive_tokens, phrase_notices
from nlp.rules import LANG_KEYS, phrase_stems
from nlp.text import parse_notice
from storage.db import session_scope
from storage.models import Notice

CHUNK = 500
EXAMPLES = 3  # notice ids shown per form


@dataclass
class PhraseWords:
    phrase: str
    stems: list[tuple[str, list[str]]]  # (language, stems) looked for
    notices: int  # notices of the archive holding the stems
    read: int  # of which read for their words: the newest ``limit``
    forms: Counter[str] = field(default_factory=Counter)  # words as written (lower-cased) -> notices
    examples: dict[str, list[int]] = field(default_factory=dict)  # form -> a few notice ids


def _starts(stems: list[str], seq: list[str]) -> list[int]:
    n = len(seq)
    return [i for i in range(len(stems) - n + 1) if stems[i : i + n] == seq]


def phrase_words(engine: Engine, settings: Settings, phrase: str, lang: str = "any", limit: int = 2000) -> PhraseWords:
    """The forms ``phrase`` (en, fr or any) catches in the archive, from the newest ``limit`` notices holding it."""
    if lang not in LANG_KEYS:
        raise ValueError(f"langue {lang!r} : en, fr ou any")
    targets = phrase_stems(lang, phrase)
    if not targets:
        raise ValueError(f"{phrase!r} : aucun mot à chercher")
    arch = archive_tokens(engine, settings)
    nids = sorted((int(arch.nids[i]) for i in phrase_notices(arch, lang, phrase)), reverse=True)
    out = PhraseWords(phrase, targets, len(nids), 0)
    with session_scope(engine) as s:
        for start in range(0, min(limit, len(nids)), CHUNK):
            chunk = nids[start : min(start + CHUNK, limit)]
            for n in s.exec(select(Notice).where(col(Notice.id).in_(chunk))).all():
                out.read += 1
                for form in _forms(n, targets):
                    out.forms[form] += 1
                    ids = out.examples.setdefault(form, [])
                    if len(ids) < EXAMPLES:
                        ids.append(n.id)
    return out


def _forms(n: Notice, targets: list[tuple[str, list[str]]]) -> set[str]:
    """The distinct forms of the phrase in a notice, in fields of the phrase's language."""
    found = set()
    for f in parse_notice(n).fields:
        for lg, seq in targets:
            if f.lang == lg:
                found.update(" ".join(f.surface[i : i + len(seq)]).lower() for i in _starts(f.stems, seq))
    return found
