"""The one place where strings from the web are made safe for HTML, plain text and Slack mrkdwn.

Every crawled string (title, summary, source error, URL) goes through :func:`clean` first: control
characters out, whitespace collapsed (no header or line injection), NFC. Then one escaper per output.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape

# C0/C1 controls, DEL, zero-width and bidi overrides (text that renders differently from what it is).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_SPACE = re.compile(r"\s+")


def clean(value: object, limit: int | None = None) -> str:
    """One line of plain text: no control characters, single spaces, at most ``limit`` characters."""
    text = unicodedata.normalize("NFC", "" if value is None else str(value))
    text = _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    if limit and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def html(value: object, limit: int | None = None) -> Markup:
    """For HTML outside Jinja's autoescape (Jinja templates escape by themselves)."""
    return escape(clean(value, limit))


def mrkdwn(value: object, limit: int | None = None) -> str:
    """Slack mrkdwn: ``& < >`` escaped, so ``<!channel>`` or ``<http://evil|click>`` stay plain text."""
    text = clean(value, limit)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: object) -> str | None:
    """An http(s) URL with nothing that could break out of an attribute or a Slack link; else None."""
    text = clean(url)
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Percent-encode what would end an HTML attribute or a Slack <url|label> link.
    return quote(text, safe=":/?#[]@!$&'()*+,;=%~-._")


def slack_link(url: object, label: object, limit: int | None = None) -> str:
    """``<url|label>`` with both parts escaped; just the escaped label when the URL is unusable."""
    text = mrkdwn(label, limit)
    link = safe_url(url)
    if not link:
        return text
    link = link.replace("&", "&amp;").replace("|", "%7C")
    return f"<{link}|{text.replace('|', '¦')}>"
