"""French queries find English notices and the reverse: a term lexicon learned from what the watch has.

Most sources publish in one language (English for the Commission, EMA, Parliament; French for the
EUR-Lex feeds HAS follows), so ``santé`` alone misses the English notices about health. The lexicon
pairs French and English stems learned from aligned text:

- the acts whose French and English titles (and summaries) the archive both holds: Cellar gives
  both for every act, a parallel corpus that grows with each crawl;
- the rules file: each rule's French and English phrases name the same concept.

Learning is co-occurrence over these aligned units (Dice coefficient) with competitive linking
(Melamed 2000): a stem's translation is its cognate when one co-occurs (``clinique``/``clinical``,
same start; at most two), else the strongest non-cognate partner left (``santé``/``health``).
Function words are dropped first (spaCy's French and English stop lists). A query word is searched
as itself OR its translations; a quoted word or phrase is searched as written (docs/decisions.md).

The lexicon is stored in the archive (``kv`` row ``search.crosslang``) with the fingerprint of what
it was learned from (the rules file, the archive's last change), and relearned when that changes.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from itertools import product

from core.dates import now_utc
from core.profiles import profile_file
from storage.fulltext import Clause
from storage.kv import kv_value
from storage.reader import Archive, as_engine, reading
from storage.textnorm import stem, stems_any, words

log = logging.getLogger(__name__)
KEY = "search.crosslang"
FORMAT = 2  # bump when learning changes: stored lexicons are then relearned
MIN_COUNT = 2  # a non-cognate pair must co-occur in at least two aligned units ...
MIN_DICE = 0.5  # ... and most of the time either term occurs
MAX_TRANSLATIONS = 3  # per query word, both directions together
# Learning costs about 0.35 ms per aligned unit (18,600 units: 6.6 s): the newest 20,000 notices with
# both languages are plenty for the vocabulary of a watch and keep a run's relearning under 10 s.
MAX_UNITS = 20_000
_MEMO: dict[str, Lexicon] = {}


@dataclass(frozen=True)
class Lexicon:
    fr_en: dict[str, list[str]] = field(default_factory=dict)  # French stem -> English stems
    en_fr: dict[str, list[str]] = field(default_factory=dict)
    units: int = 0  # aligned units it was learned from
    function_words: frozenset[str] = frozenset()  # "fr_stem|en_stem" of the French and English stop words

    def translations(self, stems: tuple[str, ...]) -> list[str]:
        """The other language's stems for a query word given as its (French, English) stems."""
        fr, en = stems[0], stems[-1]
        out = [t for t in [*self.fr_en.get(fr, []), *self.en_fr.get(en, [])] if t not in stems]
        return list(dict.fromkeys(out))[:MAX_TRANSLATIONS]


def _key(stems: tuple[str, ...]) -> str:
    return f"{stems[0]}|{stems[-1]}"


def expand(clauses: list[Clause], lex: Lexicon | None) -> list[Clause]:
    """Each unquoted, wanted word OR-ed with its translations; exclusions and quotes stay as written.

    Unquoted function words (``de``, ``the``) are dropped when other words remain: every word is
    required, and ``données de santé`` could never match an English notice about health data."""
    if lex is None or not (lex.fr_en or lex.en_fr):
        return clauses

    def function_word(c: Clause) -> bool:
        return not (c.negated or c.quoted or c.or_next) and len(c.terms) == 1 and _key(c.terms[0]) in lex.function_words

    kept = [c for c in clauses if not function_word(c)]
    if any(not c.negated for c in kept) and not any(c.or_next for c in clauses):
        clauses = kept
    out = []
    for c in clauses:
        if c.negated or c.quoted or len(c.terms) != 1:
            out.append(c)
            continue
        extra = lex.translations(c.terms[0])
        out.append(replace(c, terms=((*c.terms[0], *extra),)) if extra else c)
    return out


# --- learning --------------------------------------------------------------------------------


def _stop_words() -> dict[str, frozenset[str]]:
    from spacy.lang.en.stop_words import STOP_WORDS as EN
    from spacy.lang.fr.stop_words import STOP_WORDS as FR

    return {"fr": frozenset(FR), "en": frozenset(EN)}


def _terms(text_: str, lang: str, stop: frozenset[str]) -> set[str]:
    return {stem(w, lang) for w in words(text_) if w not in stop and len(w) > 2 and not w.isdigit()}


def _cognate(a: str, b: str) -> bool:
    """Same start over most of the shorter stem: ``cliniqu``/``clinic``, ``artificiel``/``artifici``."""
    p = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        p += 1
    return p >= 4 and p >= 0.75 * min(len(a), len(b))


def learn(units: Iterable[tuple[str, str]]) -> Lexicon:
    """A lexicon from aligned (French text, English text) units."""
    stop = _stop_words()
    cf: Counter = Counter()
    ce: Counter = Counter()
    pairs: Counter = Counter()
    n = 0
    for fr_text, en_text in units:
        f, e = _terms(fr_text, "fr", stop["fr"]), _terms(en_text, "en", stop["en"])
        if f and e:
            n += 1
            cf.update(f)
            ce.update(e)
            pairs.update(product(f, e))
    candidates = []
    for (f, e), c in pairs.items():
        if f == e:
            continue  # the same term in both languages: the index already matches it
        dice, cognate = 2 * c / (cf[f] + ce[e]), _cognate(f, e)
        if cognate or (c >= MIN_COUNT and dice >= MIN_DICE):
            candidates.append((not cognate, -dice, -c, f, e))
    candidates.sort()
    fr_en: dict[str, list[str]] = {}
    en_fr: dict[str, list[str]] = {}
    # ("fr", stem) / ("en", stem) -> the strength of its non-cognate link; an equally strong pair is a
    # tie the data cannot break (both kept), a weaker one is what competitive linking rules out.
    linked: dict[tuple[str, str], tuple[float, int]] = {}
    for not_cognate, d, c, f, e in candidates:
        if not_cognate:
            if f in fr_en and ("fr", f) not in linked or e in en_fr and ("en", e) not in linked:
                continue  # it has its cognate (cognates come first): ``intelligence`` is not ``model``
            if any(linked.get(k, (d, c)) != (d, c) for k in (("fr", f), ("en", e))):
                continue
            linked[("fr", f)] = linked[("en", e)] = (d, c)
        elif len(fr_en.get(f, [])) >= 2 or len(en_fr.get(e, [])) >= 2:
            continue
        fr_en.setdefault(f, []).append(e)
        en_fr.setdefault(e, []).append(f)
    function = {_key(stems_any(w)) for lang in ("fr", "en") for w in stop[lang]}
    return Lexicon(fr_en, en_fr, n, frozenset(function))


def archive_units(db: Archive) -> Iterable[tuple[str, str]]:
    """The newest notices whose French and English titles (or summaries) the archive both holds."""
    with reading(db) as r:
        rows = r.all(
            "SELECT title_fr, title_en, summary_fr, summary_en FROM notice"
            " WHERE (title_fr IS NOT NULL AND title_en IS NOT NULL)"
            " OR (summary_fr IS NOT NULL AND summary_en IS NOT NULL) ORDER BY id DESC LIMIT :n",
            {"n": MAX_UNITS},
        )
    for row in rows:
        if row.title_fr and row.title_en:
            yield row.title_fr, row.title_en
        if row.summary_fr and row.summary_en:
            yield row.summary_fr, row.summary_en


# --- stored lexicon --------------------------------------------------------------------------


def _fingerprint(db: Archive, settings) -> str:
    try:
        rules = profile_file(settings, "rules.yaml").read_bytes()
    except OSError:
        rules = b""
    with reading(db) as r:
        last = r.scalar("SELECT max(updated_at) FROM notice")
    return hashlib.sha256(f"{FORMAT}|{last}|".encode() + rules).hexdigest()[:16]


def lexicon(db: Archive, settings, rule_units: Callable[[object], list[tuple[str, str]]]) -> Lexicon:
    """The lexicon for the archive and rules as they are now (relearned and stored when they changed).
    ``rule_units(settings)``: each rule's French and English phrases (``nlp.phrase_pairs.rule_units``), read
    only when relearning: storage does not read rules itself."""
    fp = _fingerprint(db, settings)
    if fp in _MEMO:
        return _MEMO[fp]
    stored = kv_value(db, KEY) or {}
    if stored.get("fingerprint") == fp:
        lex = Lexicon(stored["fr_en"], stored["en_fr"], stored["units"], frozenset(stored["function_words"]))
    else:
        lex = learn([*archive_units(db), *rule_units(settings)])
        value = {"fingerprint": fp, "fr_en": lex.fr_en, "en_fr": lex.en_fr, "units": lex.units}
        value["function_words"] = sorted(lex.function_words)
        try:
            from storage.db import session_scope  # SQLAlchemy only to store a relearned lexicon
            from storage.models import KeyValue

            with session_scope(as_engine(db), write=True) as s:
                row = s.get(KeyValue, KEY) or KeyValue(key=KEY, updated_at=now_utc())
                row.value, row.updated_at = value, now_utc()
                s.add(row)
        except Exception as exc:  # a read-only archive still searches, relearning next time
            log.warning("cross-language lexicon not stored: %s", exc)
    _MEMO.clear()
    _MEMO[fp] = lex
    return lex
