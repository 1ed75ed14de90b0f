"""Text normalisation shared by the search index and the query parser.

Words are lower-cased, stemmed with Snowball (French or English by field language) and stripped of
accents, so ``dispositifs médicaux`` and ``dispositif medical`` meet on ``disposit medical``.
The same function feeds SQLite FTS5 and PostgreSQL ``tsvector``, so both backends agree.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import snowballstemmer

from core.lang import WORD_RE

_STEMMERS = {"fr": snowballstemmer.stemmer("french"), "en": snowballstemmer.stemmer("english")}
LANGS = tuple(_STEMMERS)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return WORD_RE.findall(text.lower())


@lru_cache(maxsize=500_000)
def stem(word: str, lang: str) -> str:
    """One normalised term; cached because the vocabulary of a watch is small and repetitive."""
    return strip_accents(_STEMMERS[lang].stemWord(word.lower()))


def stems_any(word: str) -> tuple[str, ...]:
    """The word's term in every supported language (a query word may be French or English)."""
    return tuple(dict.fromkeys(stem(word, lang) for lang in LANGS))


def index_text(text: str | None, lang: str | None) -> str:
    """Terms to index for ``text``; with no known language, index both stems."""
    if not text:
        return ""
    if lang in _STEMMERS:
        return " ".join(stem(w, lang) for w in words(text))
    return " ".join(" ".join(stems_any(w)) for w in words(text))
