"""The workbench application: ``create_app(settings)`` -> FastAPI (server-rendered, Jinja2)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote

import anyio
from babel.dates import format_date
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from core.catalog import Message
from core.config import ConfigError, Settings
from core.dates import as_day, paris_local
from core.names import (
    FIELDS,
    HEALTH_STATES,
    NOTICE_KINDS,
    PURPOSES,
    STATUSES,
    VERSION_REASONS,
    celex_type_name,
    doc_type_name,
)
from core.profiles import load_labels
from crawlers.kinds import kind_titles
from storage.db import open_archive
from web import i18n
from web.auth import CSRF_FIELD, KDF_SLOTS, LoginRequired, session_secret
from web.i18n import LANGUAGES, N_, Language, _, current, gettext_, ngettext_
from web.pages import render
from web.routes import account, calendar, dashboard, notice, review, rules, search
from web.security import SECURITY_HEADERS, LoginThrottle, SecurityHeaders, redact_access_log

HERE = Path(__file__).parent
log = logging.getLogger(__name__)

# What an error page says when the code raising it gave no message of its own (translated at render).
ERRORS = {
    400: N_("Bad request."),
    401: N_("Identification required."),
    403: N_("Access denied."),
    404: N_("Page not found."),
    405: N_("Method not allowed for this address."),
    429: N_("Too many requests: try again later."),
    500: N_("Internal error: the incident is logged in the server's log."),
}


def _day(value: object) -> str:
    """A day in the request's language (``24 janv. 2025``, ``Jan 24, 2025``): a date, or an instant's day in
    Brussels (raw SQL rows on SQLite give strings)."""
    day = as_day(value)
    return format_date(day, "medium", locale=current()) if day else ""


def _iso_day(value: object) -> str:
    """The same day for machines (``<time datetime>``)."""
    day = as_day(value)
    return day.isoformat() if day else ""


def _stamp(value: object) -> str:
    """An instant in Paris time with its zone, its day in the request's language (``7 déc. 2026 17:05 CET``);
    stored instants are UTC."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return str(value)
    local = paris_local(value)
    return f"{_day(local.date())} {local:%H:%M %Z}"


# Control characters (ANSI escapes, NUL...) and bidi overrides (text that reads other than it is).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _finalize(value: object) -> object:
    """Every ``{{ value }}`` passes here before escaping: crawled text loses its control characters."""
    if isinstance(value, str) and _CONTROL.search(value):
        cleaned = _CONTROL.sub(" ", value)
        return Markup(cleaned) if isinstance(value, Markup) else cleaned
    return value


def _shown(value: object) -> object:
    """A snapshot value for people: a list as its items, nothing as ∅ (not ``[]`` or ``['32021R2282']``)."""
    if value is None or value == "" or value == [] or value == {}:
        return "∅"
    return ", ".join(str(v) for v in value) if isinstance(value, list) else value


def _named(table: dict[str, str]) -> Callable[[str | None], str]:
    """A template function: a stored code's readable name in the request's language (the code if unnamed)."""
    return lambda code: gettext_(table[code]) if code in table else (code or "")


def _said(line: str) -> str:
    """A line made as a catalogue message (``core.catalog.Message``: source health) in the request's language;
    any other text as it is."""
    return line.said(gettext_, _day) if isinstance(line, Message) else line


# nlp.review's reasons (stored words, French) -> message ids.
REVIEW_REASONS = {"incertain": N_("uncertain"), "règles ≠ modèle": N_("rules ≠ model")}


def notice_type(kind: str | None, doc_type: str | None, celex: str | None = None) -> str:
    """What a notice is, readable: its document type's name (from the source, else from its CELEX number),
    else its kind's; a corrigendum or draft says so first. Never a bare code or "—"."""
    kind_name = _named(NOTICE_KINDS)(kind)
    name = doc_type_name(doc_type) or celex_type_name(celex)
    says_draft = "DRAFT" in (doc_type or "")  # "Draft implementing act" needs no "Draft act ·" before it
    if name and (kind == "corrigendum" or (kind == "draft_act" and not says_draft)):
        return f"{kind_name} · {gettext_(name)}"
    if name:
        return gettext_(name)
    if doc_type:  # a code nobody named yet: the kind says what it is, the code which
        return f"{kind_name} ({doc_type})"
    return kind_name


def _templates() -> Jinja2Templates:
    # Autoescape everything: crawled text is never trusted.
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(gettext_, ngettext_, newstyle=True)  # the request's language (web.i18n)
    env.globals["LANGUAGES"] = LANGUAGES
    env.globals["lang"] = current
    env.globals["notice_type"] = notice_type
    env.globals["kind_name"] = _named(NOTICE_KINDS)
    env.globals["source_kind"] = _named(kind_titles())
    env.globals["run_status"] = env.globals["delivery_status"] = _named(STATUSES)
    env.globals["version_reason"] = _named(VERSION_REASONS)
    env.globals["purpose_name"] = _named(PURPOSES)
    env.globals["field_name"] = _named(FIELDS)
    env.globals["health_name"] = _named(HEALTH_STATES)
    env.globals["said"] = _said
    env.globals["review_reason"] = _named(REVIEW_REASONS)
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    env.filters["day"] = _day
    env.filters["iso_day"] = _iso_day
    env.filters["stamp"] = _stamp
    env.filters["shown"] = _shown
    return Jinja2Templates(env=env)


def _labels(settings: Settings) -> dict[str, str]:
    try:
        return {k: v.name for k, v in load_labels(settings).items()}
    except ConfigError:
        return {}


def routers() -> list[APIRouter]:
    """Every page's router (the tests walk these to check that each POST demands a CSRF token)."""
    return [m.router for m in (account, search, notice, rules, dashboard, calendar, review, i18n)]


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    redact_access_log()  # after uvicorn has configured its loggers
    yield


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    app = FastAPI(title="veille workbench", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    app.state.settings = settings
    app.state.engine = engine or open_archive(settings.database_url)
    app.state.templates = _templates()
    app.state.labels = _labels(settings)
    app.state.login_throttle = LoginThrottle()
    app.state.kdf_limiter = anyio.CapacityLimiter(KDF_SLOTS)
    redact_access_log()
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie="veille_session",
        same_site="lax",
        https_only=False,  # SecurityHeaders adds Secure over HTTPS or with [web] secure_cookie; see docs/web.md
        max_age=12 * 3600,
    )
    app.add_middleware(SecurityHeaders, settings=settings)  # sees the session cookie
    app.add_middleware(Language)  # outermost: every route, handler and template speaks the request's language
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in routers():
        app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if settings.web.trusted_header:  # the proxy should have named the user: no login form to offer
            return render(request, "error.html", status_code=401, message=_("Not authenticated by the reverse proxy."))
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> HTMLResponse:
        return error_page(request, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_parameter(request: Request, exc: RequestValidationError) -> HTMLResponse:
        return error_page(request, *_invalid(exc))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> HTMLResponse:
        # Sent by Starlette's outermost middleware, past SecurityHeaders: the headers are added here.
        page = request.app.state.templates.TemplateResponse(
            request, "error.html", {"user": None, "csrf": "", "flashes": [], "labels": {}, "message": _(ERRORS[500])}
        )
        page.status_code = 500
        page.headers.update(SECURITY_HEADERS)
        return page

    return app


def error_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The error page, in French when the code that raised the error gave only the status phrase."""
    if status in ERRORS and message == HTTPStatus(status).phrase:
        message = _(ERRORS[status])
    page = render(request, "error.html", status_code=status, message=message)
    page.headers.update(headers or {})
    return page


def _invalid(exc: RequestValidationError) -> tuple[int, str]:
    """A path that does not parse (``/notice/abc``, an id past 2^63) names no page: 404. A bad query
    value: 400 naming the parameter."""
    errors = exc.errors()
    if any(e.get("loc", ("",))[0] == "path" for e in errors):
        return 404, _(ERRORS[404])
    names = sorted({str(e["loc"][-1]) for e in errors if e.get("loc")})
    return 400, _("Invalid parameter: %(names)s.", names=", ".join(names)) if names else _(ERRORS[400])
