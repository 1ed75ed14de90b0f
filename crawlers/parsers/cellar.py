"""Cellar REST / EUR-Lex XHTML of an act -> title and clean text (docs/research/sources.md §5-6).

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


ARTICLE_ID_RE = re.compile(r"art_\d+[a-z]*$")
# The article a reader needs most after the scope: when the act applies.
KEY_ARTICLE_RE = re.compile(r"entry into force|dates? of application|entrée en vigueur|date d.application", re.I)


@dataclass
class ActText:
    title: str | None
    text: str
    oj_ref: str | None = None  # "2024/1689" (act-by-act) from p.oj-hd-uniq
    oj_date: str | None = None  # "12.7.2024" from p.oj-hd-date
    canonical: str | None = None  # the ELI on EUR-Lex (link rel=canonical)
    omitted: dict | None = None  # what an abridged text left out (None: the text is whole)


def _doc(body: bytes) -> lxml.html.HtmlElement:
    if not body.strip():
        raise ParseError("réponse vide au lieu du XHTML de l'acte attendu")
    try:
        # lxml.html: the EUR-Lex rendition is not well-formed XML (unclosed <meta>).
        return lxml.html.document_fromstring(without_controls(body))
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"XHTML illisible : {exc}") from None


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
    containers = doc.cssselect("div.eli-container")
    root = (containers or doc.xpath("//body") or [doc])[0]
    text = _text(root)
    if not text:
        raise ParseError("XHTML de l'acte sans aucun texte")
    omitted = None
    if len(text) > max_chars and doc.cssselect("div#enc_1"):
        text, omitted = _abridged(doc, containers[1:], len(text), max_chars)
    return ActText(
        title=title,
        text=text[:max_chars],
        oj_ref=_first(doc, "p.oj-hd-uniq"),
        oj_date=_first(doc, "p.oj-hd-date"),
        canonical=canonical[0] if canonical else None,
        omitted=omitted,
    )


def _text(el: lxml.html.HtmlElement) -> str:
    return html_to_text(etree.tostring(el, encoding="unicode", method="html"))


@dataclass
class _Article:
    number: str  # "113"
    heading: str  # "Article 113\n\nEntry into force and application"
    text: str
    full: bool = False


def _blocks(el: lxml.html.HtmlElement) -> list[str | _Article]:
    """The enacting terms in order: chapter/section headings (str) and articles."""
    out: list[str | _Article] = []
    for child in el:
        if not isinstance(child.tag, str):
            continue
        ident = child.get("id") or ""
        if child.tag == "div" and ARTICLE_ID_RE.match(ident):
            heads = [clean_text(p.text_content()) for p in child.cssselect("p.oj-ti-art, p.oj-sti-art")]
            out.append(_Article(ident[4:], "\n\n".join(h for h in heads if h), _text(child)))
        elif child.tag == "div" and child.cssselect("div[id^='art_']"):
            out += _blocks(child)
        elif text := _text(child):
            out.append(text)
    return out


def _annex_heading(annex: lxml.html.HtmlElement) -> str:
    """ "ANNEX III" and its title, the first two paragraphs of the annex."""
    paras = [t for t in (clean_text(p.text_content()) for p in annex.xpath(".//p")[:4]) if t]
    return "\n\n".join(paras[:2])


def _ranges(numbers: list[str]) -> str:
    """["49", "50", "51", "60"] -> "49-51, 60"."""
    out: list[list[str]] = []
    for n in numbers:
        if out and n.isdigit() and out[-1][-1].isdigit() and int(n) == int(out[-1][-1]) + 1:
            out[-1] = [out[-1][0], n]
        else:
            out.append([n])
    return ", ".join("-".join(r) for r in out)


def _abridged(doc: lxml.html.HtmlElement, annexes: list, total: int, max_chars: int) -> tuple[str, dict]:
    """A long act within ``max_chars``: title, every article heading, the entry-into-force / application
    article in full, then articles in full from Article 1 on as long as they fit, the final part, the
    annexes' headings, and citations and recitals only in the room left: they come before Article 1 and
    would otherwise fill the whole cap (the AI Act's Article 1 starts after character 228,000)."""
    title = _text(doc.get_element_by_id("tit_1")) if doc.xpath("//*[@id='tit_1']") else ""
    final = _text(doc.get_element_by_id("fnp_1")) if doc.xpath("//*[@id='fnp_1']") else ""
    blocks = _blocks(doc.get_element_by_id("enc_1"))
    articles = [b for b in blocks if isinstance(b, _Article)]
    annex_heads = [h for h in (_annex_heading(a) for a in annexes) if h]
    note_room = 600 + 8 * len(articles)  # the note lists article ranges
    fixed = [title, final, *annex_heads, *(b if isinstance(b, str) else b.heading for b in blocks)]
    budget = max_chars - note_room - sum(len(x) + 2 for x in fixed)
    for art in [a for a in articles if KEY_ARTICLE_RE.search(a.heading)] + articles:
        extra = len(art.text) - len(art.heading)
        if art.full:
            continue
        if extra > budget:
            if art in articles[:1] or not KEY_ARTICLE_RE.search(art.heading):
                break  # articles in full stay a run from Article 1: no patchwork
            continue
        art.full, budget = True, budget - extra
    full = [a.number for a in articles if a.full]
    heads_only = [a.number for a in articles if not a.full]
    # What room is left goes to the citations and recitals, from the start, cut at a paragraph.
    preamble = _text(doc.get_element_by_id("pbl_1")) if doc.xpath("//*[@id='pbl_1']") else ""
    if len(preamble) + 2 > budget:
        preamble = preamble[: max(budget, 0)].rsplit("\n\n", 1)[0] if budget > 0 else ""
        cut = ["citations", "recitals"] if not preamble else ["recitals (in part)"]
    else:
        cut = []
    omitted = {
        "chars_total": total,
        "parts": cut + ["footnotes"] + (["annex text"] if annex_heads else []),
        "articles_full": _ranges(full),
        "articles_heading_only": _ranges(heads_only),
    }
    note = _note(total, omitted)
    body = [title, note, preamble]
    body += [b if isinstance(b, str) else (b.text if b.full else b.heading + "\n\n[…]") for b in blocks]
    body += [final, *(h + "\n\n[…]" for h in annex_heads)]
    return "\n\n".join(x for x in body if x), omitted


PARTS_FR = {
    "citations": "visas",
    "recitals": "considérants",
    "recitals (in part)": "considérants (en partie)",
    "footnotes": "notes",
    "annex text": "texte des annexes",
}


def _note(total: int, omitted: dict) -> str:
    """What the reader of a notice is told was left out, in French first."""
    heads = omitted["articles_heading_only"]
    size_fr = f"{total:,}".replace(",", "\u202f")
    fr = (
        f"[Texte abrégé par veille : l'acte compte {size_fr} caractères. Omis : "
        + ", ".join(PARTS_FR[p] for p in omitted["parts"])
        + (f" ; articles {heads} : titre seul" if heads else "")
        + ". Texte complet sur EUR-Lex.]"
    )
    en = (
        f"[Abridged by veille: the act has {total:,} characters. Left out: "
        + ", ".join(omitted["parts"])
        + (f"; articles {heads}: heading only" if heads else "")
        + ". Full text on EUR-Lex.]"
    )
    return fr + "\n" + en


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
