"""The search page: one box, facets with counts, date range, score threshold, sort, pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from core.catalog import Message
from core.names import NOTICE_KINDS, doc_type_name
from nlp.phrase_pairs import rule_units
from storage.crosslang import lexicon
from storage.search import CANDIDATES, Filters, QueryError, export_csv, export_rows, search
from storage.web_users import WebUser
from web.auth import require_user
from web.i18n import N_, _, gettext_
from web.pages import render

router = APIRouter()
PAGE_SIZE = 20
MAX_PAGE = 10**6
DATE_FIELDS = {"date_from": N_("from"), "date_to": N_("to")}
YEAR_RE = re.compile(r"(?!0000)[0-9]{4}")  # what date() takes, in ASCII digits (not "²⁰²⁵")
FACETS = (
    ("label", N_("Label")),
    ("kind", N_("Kind")),
    ("source", N_("Source")),
    ("doc_type", N_("Document type")),
    ("year", N_("Year")),
)


@dataclass
class FacetValue:
    value: str
    count: int
    active: bool
    url: str | None  # None: cannot be used as a filter (e.g. "no date")
    name: str = ""  # what people read: the label's profile name, a kind's or document type's readable name


def _said(exc: Exception) -> str:
    """A query error (storage.fulltext: a core.catalog.Message) in the reader's language."""
    msg = exc.args[0] if exc.args else str(exc)
    return msg.said(gettext_) if isinstance(msg, Message) else str(msg)


def facet_name(key: str, value: str, labels: dict[str, str]) -> str:
    """A facet value as people read it, in the request's language (codes only when nothing names them)."""
    if key == "label":
        return labels.get(value, value)
    if key == "kind":
        return _(NOTICE_KINDS[value]) if value in NOTICE_KINDS else value
    if key == "doc_type":
        name = doc_type_name(value)
        return _(name) if name else value
    return _("no date") if value == "—" else value


def _url(params: list[tuple[str, str]]) -> str:
    return "/?" + urlencode([(k, v) for k, v in params if v != ""])


def _toggle(params: list[tuple[str, str]], key: str, value: str) -> str:
    kept = [(k, v) for k, v in params if k != "page"]
    if (key, value) in kept:
        return _url([kv for kv in kept if kv != (key, value)])
    if key == "year":  # one year at a time
        kept = [kv for kv in kept if kv[0] != "year"]
    return _url([*kept, (key, value)])


def _parse(params: list[tuple[str, str]]) -> tuple[Filters, list[str]]:
    """Filters from the query string; bad values become messages, not errors."""
    get = dict(params)
    problems: list[str] = []

    def day(name: str) -> date | None:
        raw = get.get(name, "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            problems.append(_("%(field)s: not a date YYYY-MM-DD: %(raw)s", field=_(DATE_FIELDS[name]), raw=raw))
            return None

    f = Filters(
        labels=[v for k, v in params if k == "label" and v],
        sources=[v for k, v in params if k == "source" and v],
        doc_types=[v for k, v in params if k == "doc_type" and v],
        kinds=[v for k, v in params if k == "kind" and v],
        date_from=day("date_from"),
        date_to=day("date_to"),
    )
    year = get.get("year", "")
    if year and not YEAR_RE.fullmatch(year):
        problems.append(_("year: a year YYYY from 0001 to 9999, not %(raw)s", raw=year[:20]))
    elif year:
        f.date_from = max(f.date_from or date.min, date(int(year), 1, 1))
        f.date_to = min(f.date_to or date.max, date(int(year), 12, 31))
    raw_score = get.get("min_score", "").strip()
    if raw_score:
        try:
            f.min_score = float(raw_score)
            if not 0 <= f.min_score <= 1:
                raise ValueError
        except ValueError:
            problems.append(_("score threshold: a number between 0 and 1, not %(raw)s", raw=raw_score))
            f.min_score = None
    return f, problems


@router.get("/")
def search_page(request: Request, user: WebUser = Depends(require_user)) -> Response:
    params = list(request.query_params.multi_items())
    get = dict(params)
    query = get.get("q", "")
    sort = "date" if get.get("sort") == "date" else "relevance"
    # Past MAX_PAGE the SQL offset would overflow 64 bits; no archive has that many pages anyway.
    page = min(max(1, int(get["page"])), MAX_PAGE) if get.get("page", "").isdecimal() else 1
    filters, problems = _parse(params)
    result, error = None, None
    try:
        result = search(
            request.app.state.engine,
            query,
            filters,
            sort=sort,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
            facets=True,
            lexicon=lexicon(request.app.state.engine, request.app.state.settings, rule_units),
        )
    except QueryError as exc:
        error = _said(exc)
    facets = {}
    if result:
        for key, _title in FACETS:
            counter = result.facets.get(key, {})
            facets[key] = [
                FacetValue(
                    value,
                    n,
                    (key, value) in params,
                    None if value == "—" else _toggle(params, key, value),
                    facet_name(key, value, request.app.state.labels),
                )
                for value, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
            ]
            if key == "year":
                facets[key].sort(key=lambda fv: (fv.value != "—", fv.value), reverse=True)  # "no date" last
    pages = 0 if not result else (result.total + PAGE_SIZE - 1) // PAGE_SIZE
    base = [(k, v) for k, v in params if k != "page"]
    return render(
        request,
        "search.html",
        user=user,
        query=query,
        get=get,
        sort=sort,
        result=result,
        error=error,
        problems=problems,
        facets=facets,
        facet_titles=dict(FACETS),
        page=page,
        pages=pages,
        page_url=lambda n: _url([*base, ("page", str(n))]),
        sort_url=lambda s: _url([*[(k, v) for k, v in base if k != "sort"], ("sort", s)]),
        csv_url="/search.csv?" + urlencode(base),
        active=[
            (k, v, _toggle(params, k, v), facet_name(k, v, request.app.state.labels))
            for k, v in params
            if k in dict(FACETS) and v
        ],
    )


@router.get("/search.csv")
def search_csv(request: Request, user: WebUser = Depends(require_user)) -> Response:
    """The whole result of a search (up to its ranking cap) as CSV, same parameters as ``/``."""
    params = list(request.query_params.multi_items())
    get = dict(params)
    filters, problems = _parse(params)
    if problems:
        raise HTTPException(400, "; ".join(problems))
    sort = "date" if get.get("sort") == "date" else "relevance"
    try:
        engine = request.app.state.engine
        lex = lexicon(engine, request.app.state.settings, rule_units)
        result = search(engine, get.get("q", ""), filters, sort=sort, limit=CANDIDATES, lexicon=lex)
    except QueryError as exc:
        raise HTTPException(400, _said(exc)) from None
    body = export_csv(export_rows(result.hits, str(request.base_url)))
    return Response(
        "\ufeff" + body,  # a BOM: spreadsheet programs then read the accents as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="veille-recherche.csv"'},
    )
