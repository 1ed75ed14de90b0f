"""French or English? Counted on function words, which every EU title and summary has.

Shared by the crawlers (a feed that says English may carry a French-only item) and the nlp stage
(a field whose declared language is wrong)."""

from __future__ import annotations

import re

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)  # a word: letters and digits; the search index and nlp split alike
_FR = frozenset(
    [
        "le",
        "la",
        "les",
        "des",
        "du",
        "de",
        "et",
        "en",
        "pour",
        "sur",
        "au",
        "aux",
        "une",
        "un",
        "dans",
        "par",
        "relative",
        "relatif",
        "concernant",
    ]
)
_EN = frozenset(
    ["the", "of", "and", "on", "for", "to", "in", "with", "as", "by", "regarding", "amending", "concerning"]
)


def hints(text: str) -> tuple[int, int]:
    """(French, English) function words in the start of ``text``."""
    ws = WORD_RE.findall(text[:600].lower())
    return sum(map(_FR.__contains__, ws)), sum(map(_EN.__contains__, ws))


def guess_lang(text: str) -> str:
    fr, en = hints(text)
    return "fr" if fr > en else "en"


def plainly_other(declared: str, text: str) -> str | None:
    """The other language when ``text`` is plainly in it (3+ of its function words, none of the declared
    one's), else None: a few French words in English text (a name, a quoted title) do not count."""
    fr, en = hints(text)
    if declared == "en" and fr >= 3 and not en:
        return "fr"
    if declared == "fr" and en >= 3 and not fr:
        return "en"
    return None
