"""RSS/Atom bytes -> NoticeRecords, with feedparser, defensively.

feedparser's ``bozo`` is not a health check (docs/research/stack_probe.md §4): an HTML error page parses
as ``bozo=0`` with no entries, and a 110 KB "safe entity" feed expands to 1 GB in its loose parser.
So: cap the size, strip DOCTYPE/ENTITY declarations, reject HTML and empty bodies, and treat a
well-formedness error as a failure unless the source is configured ``lenient_xml``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from typing import Any
from xml.sax import SAXException

import feedparser
from lxml import etree

from core.lang import plainly_other
from core.records import NoticeRecord, base_celex, canonical_url
from crawlers.parsers import ParseError, schemas
from crawlers.parsers.normalise import (
    celex_from_text,
    cited_acts,
    clean_text,
    html_to_text,
    kind_for_celex,
    strip_celex_prefix,
    to_date,
    to_utc,
)

DOCTYPE_RE = re.compile(rb"<!DOCTYPE[^\[>]*(\[.*?\])?\s*>", re.S | re.I)
ENTITY_RE = re.compile(rb"<!ENTITY[^>]*>", re.S | re.I)
HTML_START_RE = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S)
LEADING_RE = re.compile(rb"^(?:\s|\xef\xbb\xbf)+(?=<)")
CELLAR_GUID_RE = re.compile(r"CELLAR:([0-9a-f-]{36})", re.I)
WAF_MARKERS = (b"awsWafCookieDomainList", b"challenge.js", b"gokuProps")
DEFAULT_MAX_BYTES = 20_000_000
FEED_ITEMS = "éléments du flux"  # how the run's warnings name them


def sanitise(body: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Refuse oversized bodies, drop DOCTYPE/ENTITY declarations (entity-expansion bombs) and what some
    servers send before the XML declaration (a newline, spaces, a UTF-8 BOM): that is not malformed XML."""
    if len(body) > max_bytes:
        raise ParseError(f"flux de {len(body)} octets, au-delà de la limite de {max_bytes} octets")
    return ENTITY_RE.sub(b"", DOCTYPE_RE.sub(b"", LEADING_RE.sub(b"", body)))


def check_feed_body(body: bytes) -> None:
    """Raise ParseError when the body is not a feed at all (empty, WAF challenge, HTML page)."""
    if not body.strip():
        raise ParseError("réponse vide au lieu du flux attendu")
    head = LEADING_RE.sub(b"", body[:4096])
    if any(m in body[:65536] for m in WAF_MARKERS):
        raise ParseError("page de défi anti-robot WAF (awsWafCookieDomainList) au lieu du flux attendu")
    if HTML_START_RE.match(head):
        raise ParseError("page HTML au lieu du flux attendu")


LANG_TAGS = {"title": "title", "description": "description", "link": "link", "FullContent": "body", "BasicUrl": "url"}


def _lang_fields(entry_el: etree._Element | None) -> dict[str, dict[str, str]]:
    """Newsroom 'feed/full' repeats title, description, link, ``infsonewsroom:FullContent`` and
    ``BasicUrl`` per language (``lang="EN"``): {"en": {"title": ..., "body": ...}, "fr": {...}}."""
    out: dict[str, dict[str, str]] = {}
    if entry_el is None:
        return out
    for child in entry_el:
        lang = (child.get("lang") or "").lower()
        tag = LANG_TAGS.get(etree.QName(child).localname if isinstance(child.tag, str) else "")
        if lang in ("en", "fr") and tag and (child.text or "").strip():
            out.setdefault(lang, {}).setdefault(tag, child.text.strip())
    return out


def _link(entry: Any, per_lang: dict[str, dict[str, str]], lang: str) -> str | None:
    """The item's page: its ``<link>``, else a per-language link, else a permalink ``<guid>``
    (RSS 2.0: a guid is a permalink unless ``isPermaLink="false"``), as Newsroom 'feed/full' sends."""
    if (entry.get("link") or "").strip():
        return canonical_url(entry.get("link"))
    langs = [lang, *(k for k in per_lang if k != lang)]
    for url in (per_lang.get(k, {}).get(f) for k in langs for f in ("link", "url")):
        if url and url.strip().startswith(("http://", "https://")):
            return canonical_url(url)
    guid = (entry.get("id") or "").strip()
    if entry.get("guidislink") and guid.startswith(("http://", "https://")):
        return canonical_url(guid)
    return None


def _items_by_guid(body: bytes) -> dict[str, etree._Element]:
    """Raw <item> elements by guid, only for feeds whose items carry per-language fields."""
    if b' lang="' not in body and b" lang='" not in body:
        return {}
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return {}
    if root is None:
        return {}
    items = {}
    for item in root.iter("item"):
        guid = item.findtext("guid") or item.findtext("link") or ""
        items[guid.strip()] = item
    return items


def _external_id(entry: Any, link: str | None, title: str) -> str:
    guid = (entry.get("id") or "").strip()
    m = CELLAR_GUID_RE.search(guid) or CELLAR_GUID_RE.search(link or "")
    if m:  # EUR-Lex: the CELLAR uuid is the stable identity across EN and FR feeds
        return f"cellar:{m.group(1).lower()}"
    if guid:
        return canonical_url(guid) if guid.startswith("http") else guid
    if link:
        return link
    return "title:" + hashlib.sha256(title.encode()).hexdigest()[:24]


def _published(entry: Any) -> date | datetime | None:
    """The item's date as the feed wrote it: a Brussels day from the text (``00:00 +0200``, Drupal's
    ``28/07/2014 - 12:18``), else feedparser's reading of it (a UTC instant)."""
    for key in ("published", "updated", "dc_date"):
        raw = entry.get(key)
        if to_date(raw):
            return raw
    for key in ("published_parsed", "updated_parsed"):
        st = entry.get(key)
        if st:
            return datetime(*st[:6], tzinfo=UTC)
    return None


def _authors(entry: Any) -> list[str]:
    raw = entry.get("author") or ""
    return [a.strip() for a in raw.split(",") if a.strip()]


def _filed_lang(lang: str, titles: dict[str, str], summaries: dict[str, str]) -> str:
    """A feed that says English may carry a French-only item (the Press Corner's does): file its text
    under the language it is plainly in, so that search stems it and the digests show it as such."""
    other = plainly_other(lang, f"{titles.get(lang, '')} {summaries.get(lang, '')}")
    if other is None or titles.get(other) or summaries.get(other):
        return lang
    titles[other], summaries[other] = titles.pop(lang, ""), summaries.pop(lang, "")
    return other


def _record(entry: Any, raw: etree._Element | None, *, source: str, lang: str, options: dict) -> NoticeRecord | None:
    title = clean_text(html_to_text(entry.get("title") or ""))
    per_lang = _lang_fields(raw)
    link = _link(entry, per_lang, lang)
    celex = celex_from_text(title, entry.get("link"), entry.get("id"))
    titles = {lang: strip_celex_prefix(title) if title else ""}
    summaries = {lang: html_to_text(entry.get("summary") or "")}
    for code, fields in per_lang.items():
        titles[code] = clean_text(html_to_text(fields.get("title", ""))) or titles.get(code, "")
        summaries[code] = html_to_text(fields.get("description", "")) or summaries.get(code, "")
    if per_lang and lang not in per_lang:  # the feed's first language is not one we read
        titles.pop(lang, None)
        summaries.pop(lang, None)
    lang = _filed_lang(lang, titles, summaries)
    if not any(titles.values()) and not link:
        return None
    full = per_lang.get(lang, {}).get("body") or entry.get("infsonewsroom_fullcontent")
    body = html_to_text(full if isinstance(full, str) else "") or None
    published = _published(entry)
    is_eurlex = bool(CELLAR_GUID_RE.search(entry.get("id") or "")) or title.upper().startswith("CELEX:")
    tags = [t.get("term", "").strip() for t in entry.get("tags", []) if t.get("term", "").strip()]
    return NoticeRecord(
        source=source,
        external_id=_external_id(entry, link, title),
        url=link,
        celex=celex,
        lang=lang,
        title_en=titles.get("en") or None,
        title_fr=titles.get("fr") or None,
        summary_en=summaries.get("en") or None,
        summary_fr=summaries.get("fr") or None,
        body=body,
        doc_type=options.get("doc_type"),
        kind=kind_for_celex(celex, options.get("doc_kind", "other" if is_eurlex else "news")),
        published_at=to_date(published),
        loaded_at=to_utc(published) if is_eurlex else None,  # EUR-Lex pubDate is the load date (§2)
        date_origin="listing" if is_eurlex else "source",
        authors=_authors(entry),
        related_acts=[a for a in cited_acts(*titles.values()) if a != base_celex(celex)],
        extra={"categories": list(dict.fromkeys(tags))[:20]} if tags else {},
    )


def parse_feed(
    body: bytes,
    *,
    source: str,
    lang: str = "en",
    options: dict | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[NoticeRecord]:
    """Feed bytes -> records. Raises ParseError for anything that is not a healthy feed."""
    options = options or {}
    check_feed_body(body)
    clean = sanitise(body, max_bytes)
    parsed = feedparser.parse(clean, sanitize_html=False, resolve_relative_uris=False)
    if not parsed.get("version"):
        raise ParseError("pas un flux RSS/Atom (aucun élément racine de flux)")
    exc = parsed.get("bozo_exception")
    if parsed.get("bozo") and isinstance(exc, SAXException) and not options.get("lenient_xml"):
        raise ParseError(f"XML mal formé : {exc}")
    raw_items = _items_by_guid(clean)
    records = []
    for entry in parsed.entries:
        raw = raw_items.get((entry.get("id") or entry.get("link") or "").strip())
        rec = _record(entry, raw, source=source, lang=lang.lower(), options=options)
        if rec is not None:
            records.append(rec)
    _note_gaps(parsed.entries)
    return records


def _note_gaps(entries: list) -> None:
    """Items without a title or a date are counted on the run; dates that no longer parse are named."""
    undated = [e for e in entries if _published(e) is None]
    unreadable = [raw for e in undated if (raw := str(e.get("published") or e.get("updated") or "").strip())]
    schemas.note(schemas.Gap(FEED_ITEMS, "", 0, len(entries)))
    schemas.note(schemas.Gap(FEED_ITEMS, "date", len(undated), len(entries)))
    if unreadable:
        field = f"date lisible (p. ex. {unreadable[0][:40]!r})"
        schemas.note(schemas.Gap(FEED_ITEMS, field, len(unreadable), len(entries)))
    untitled = sum(1 for e in entries if not clean_text(html_to_text(e.get("title") or "")))
    schemas.note(schemas.Gap(FEED_ITEMS, "titre", untitled, len(entries)))
