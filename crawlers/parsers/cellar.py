"""Cellar REST / EUR-Lex XHTML of an act -> title and clean text (research/sources.md §5-6).

Post-2014 acts carry ``oj-*`` classes (title = the ``p.oj-doc-ti`` paragraphs; the ``<title>`` is a
Formex file name, never the act's title); older acts are legacy HTML (title in the first
``<strong>``). A 300 Multiple Choices answer lists the files of an expression: main act first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from crawlers.parsers import ParseError
from crawlers.parsers.normalise import clean_text, html_to_text, without_controls

ANNEX_RE = re.compile(r"annex|anx|annexe", re.I)


@dataclass
class ActText:
    title: str | None
    text: str
    oj_ref: str | None = None  # "2024/1689" (act-by-act) from p.oj-hd-uniq
    oj_date: str | None = None  # "12.7.2024" from p.oj-hd-date
    canonical: str | None = None  # the ELI on EUR-Lex (link rel=canonical)


def _doc(body: bytes) -> lxml.html.HtmlElement:
    if not body.strip():
        raise ParseError("empty body where an act's XHTML was expected")
    try:
        # lxml.html: the EUR-Lex rendition is not well-formed XML (unclosed <meta>).
        return lxml.html.document_fromstring(without_controls(body))
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"unreadable XHTML: {exc}") from None


def _first(doc: lxml.html.HtmlElement, css: str) -> str | None:
    found = doc.cssselect(css)
    return clean_text(found[0].text_content()) if found else None


def parse_act_xhtml(body: bytes, max_chars: int = 200_000) -> ActText:
    doc = _doc(body)
    canonical = doc.xpath("//link[@rel='canonical']/@href")
    for bad in doc.xpath("//script|//style|//head"):
        bad.drop_tree()
    # Annexes use p.oj-doc-ti too: the act's title is the one in div.eli-main-title.
    titles = [clean_text(p.text_content()) for p in doc.cssselect("div.eli-main-title p.oj-doc-ti")]
    title = " ".join(t for t in titles if t) or None
    if title is None:  # legacy HTML
        strong = doc.xpath("//strong")
        title = clean_text(strong[0].text_content()) if strong else None
    root = (doc.cssselect("div.eli-container") or doc.xpath("//body") or [doc])[0]
    text = html_to_text(etree.tostring(root, encoding="unicode", method="html"))
    if not text:
        raise ParseError("act XHTML without any text")
    return ActText(
        title=title,
        text=text[:max_chars],
        oj_ref=_first(doc, "p.oj-hd-uniq"),
        oj_date=_first(doc, "p.oj-hd-date"),
        canonical=canonical[0] if canonical else None,
    )


def parse_multiple_choices(body: bytes, base_url: str) -> list[str]:
    """URLs listed by a Cellar 300 answer: main act first, annexes last, then by ``stream_order``."""
    doc = _doc(body)
    ranked: dict[str, tuple[int, int]] = {}
    for i, a in enumerate(doc.xpath("//a[@href]")):
        # urljoin, not make_links_absolute: lxml refuses to write back hrefs with control characters
        href = urljoin(base_url, a.get("href").strip())
        holder = a.getparent() if a.getparent() is not None else a
        context = etree.tostring(holder, encoding="unicode", method="html")
        order = re.search(r"stream_order\D{0,20}?(\d+)", context)
        annex = 1 if ANNEX_RE.search(a.text_content() + " " + href) else 0
        ranked.setdefault(href, (annex, int(order.group(1)) if order else 1000 + i))
    return sorted(ranked, key=ranked.__getitem__)
