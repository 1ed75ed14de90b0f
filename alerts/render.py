"""E-mail bodies of a digest or an alert: Jinja2 templates (autoescaped HTML, plain text), CSS inlined."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import css_inline
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from alerts.digest import Digest
from core.dates import fr_date, paris_time


@cache
def environment() -> Environment:
    # HTML templates escape every value; the text template gets values already cleaned to one line.
    return Environment(
        loader=PackageLoader("alerts", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _css() -> str:
    return files("alerts").joinpath("templates/style.css").read_text(encoding="utf-8")


def _context(d: Digest) -> dict:
    return {"d": d, "day": fr_date(d.day), "since": paris_time(d.since), "css": _css()}


def text_body(d: Digest) -> str:
    return environment().get_template("digest.txt").render(**_context(d)).strip() + "\n"


def html_body(d: Digest) -> str:
    html = environment().get_template("digest.html").render(**_context(d))
    # Mail clients drop <style>: inline the rules into style="" attributes.
    return css_inline.inline(html)
