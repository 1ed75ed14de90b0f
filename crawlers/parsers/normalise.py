"""Normalisation shared by every parser: URLs, CELEX, dates, clean text.

Pure functions, no I/O. What the sources get wrong (docs/research/sources.md §10): EUR-Lex links with a
stray ``/./`` and ``qid`` tracking parameters, CELEX hidden in titles and links, corrigenda as
``R(nn)``, RFC-822 dates with local offsets, HTML escaped once or twice inside feed text.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime

import lxml.html
from lxml import etree

from core.celex import celex_in_text, normalise_celex, parse_celex
from core.dates import brussels_day, utc_instant
from core.records import Kind

CELEX_TITLE_PREFIX_RE = re.compile(r"^\s*CELEX:\s*\S+?\s*:\s*")
WS_RE = re.compile(r"[ \t\r\f\v\u00a0\u202f]+")
NL_RE = re.compile(r"\s*\n\s*(?:\n\s*)+")
# C0/C1 control characters but tab, newline and carriage return: never text, and lxml refuses them.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CONTROL_BYTES_RE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "section"}


def celex_from_text(*texts: str | None) -> str | None:
    """First CELEX in titles or links: ``CELEX:32024R1689R(02)``, ``uri=CELEX%3A32021D1227%2801%29``."""
    for text in texts:
        found = celex_in_text(text)
        if found:
            return found
    return None


# "Regulation (EU) 2021/2282", "règlement (UE) 2021/2282", "Directive 2011/24/EU", "Decision (EU) 2022/2481"
CITED_ACT_RE = re.compile(
    r"\b(regulation|règlement|reglement|directive|decision|décision)\s*"
    r"(?:d'exécution|délégué|delegated|implementing)?\s*(?:\((?:EU|UE|EC|CE|EEC|CEE|Euratom)\)\s*)?"
    r"(?:No\s*|n°\s*)?(\d{4})/(\d{1,4})(?:/(?:EU|UE|EC|CE))?",
    re.I,
)
ACT_TYPE = {"regulation": "R", "règlement": "R", "reglement": "R", "directive": "L", "decision": "D", "décision": "D"}


def cited_acts(*texts: str | None) -> list[str]:
    """CELEX of the acts a title cites by number (year/number form, 1999 onwards)."""
    out: list[str] = []
    for text in filter(None, texts):
        for kind, year, number in CITED_ACT_RE.findall(text):
            if 1999 <= int(year) <= 2100:
                out.append(f"3{year}{ACT_TYPE[kind.lower()]}{int(number):04d}")
    return list(dict.fromkeys(out))


def celex_from_ids(value: str | None) -> str | None:
    """``celex:32022R2552,eli:...`` (Cellar ``work_id_document``) or a bare CELEX -> the CELEX."""
    if not value:
        return None
    for part in re.split(r"[|,\s]+", value):
        found = normalise_celex(part)
        if found:
            return found
    return None


def strip_celex_prefix(title: str) -> str:
    """``CELEX:32026L1472: Directive ...`` -> ``Directive ...``."""
    return CELEX_TITLE_PREFIX_RE.sub("", title, count=1)


def kind_for_celex(celex: str | None, default: Kind = "other") -> Kind:
    """What a CELEX says a document is: corrigenda ``…R(nn)``; sectors 3 and 0 (consolidated) acts;
    sector 5 PC/AP proposals, other preparatory documents (SC staff working documents, DC
    communications, XC notices...) never acts; anything else the source's default, but never ``act``."""
    parsed = parse_celex(celex)
    if parsed is None:
        return default
    if parsed.is_corrigendum:
        return "corrigendum"
    if parsed.sector in ("3", "0"):
        return "act"
    if parsed.sector == "5" and parsed.descriptor in ("PC", "AP"):
        return "proposal"
    return default if default != "act" else "other"


def to_utc(value: str | datetime | date | None) -> datetime | None:
    """Any feed/API date (RFC 822, ISO 8601, Drupal ``28/07/2014 - 12:18``) as an aware UTC instant.

    A time without a zone is Brussels time, a bare date its UTC midnight; ``None`` if unreadable."""
    return utc_instant(value)


def to_date(value: str | datetime | date | None) -> date | None:
    """The calendar day in Brussels: ``2026-07-27T22:00:00Z`` (Brussels midnight) is the 28 July."""
    return brussels_day(value)


def without_controls(body: bytes) -> bytes:
    """An HTML page's bytes without ASCII control characters (lxml refuses to write them back in a tree)."""
    return CONTROL_BYTES_RE.sub(b" ", body)


def clean_text(text: str | None) -> str:
    """Collapse runs of spaces (incl. no-break spaces) on each line; keep paragraph breaks."""
    if not text:
        return ""
    text = CONTROL_RE.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [WS_RE.sub(" ", line).strip() for line in text.split("\n")]
    return NL_RE.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(fragment: str | bytes | None, max_unescape: int = 2) -> str:
    """HTML (possibly escaped once more, as the Commission Newsroom does) -> clean plain text."""
    if not fragment:
        return ""
    text = fragment.decode("utf-8", "replace") if isinstance(fragment, bytes) else fragment
    for _ in range(max_unescape):  # "&lt;p&gt;" inside a feed field is markup, not text
        if not re.search(r"&(?:lt|gt|#60|#62);", text) or "<" in text:
            break
        text = html.unescape(text)
    text = CONTROL_RE.sub(" ", text)
    if "<" not in text:
        return clean_text(html.unescape(text))
    try:
        root = lxml.html.fragment_fromstring(text, create_parent="div")
    except (etree.ParserError, ValueError, AssertionError):  # lxml asserts on "<html></html>" fragments
        return clean_text(html.unescape(re.sub(r"<[^>]+>", " ", text)))
    for bad in root.xpath("//script|//style"):
        bad.drop_tree()
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag in BLOCK_TAGS:
            el.tail = "\n" + (el.tail or "")
    return clean_text(html.unescape(root.text_content()))
