"""The workbench application: ``create_app(settings)`` -> FastAPI (server-rendered, Jinja2)."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from veille.config import ConfigError, Settings
from web.auth import CSRF_FIELD, LoginRequired, csrf_token, current_user, session_secret

HERE = Path(__file__).parent


def _day(value: object) -> str:
    """ISO date of a date/datetime (raw SQL rows on SQLite give strings)."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value)[:10]


def _stamp(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)[:16]


# Control characters (ANSI escapes, NUL...) and bidi overrides (text that reads other than it is).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _finalize(value: object) -> object:
    """Every ``{{ value }}`` passes here before escaping: crawled text loses its control characters."""
    if isinstance(value, str) and _CONTROL.search(value):
        cleaned = _CONTROL.sub(" ", value)
        return Markup(cleaned) if isinstance(value, Markup) else cleaned
    return value


def _templates() -> Jinja2Templates:
    # Autoescape everything: crawled text is never trusted.
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    env.filters["day"] = _day
    env.filters["stamp"] = _stamp
    return Jinja2Templates(env=env)


def _labels(settings: Settings) -> dict[str, str]:
    from veille.profiles import load_labels

    try:
        return {k: v.name for k, v in load_labels(settings).items()}
    except ConfigError:
        return {}


def render(request: Request, name: str, status_code: int = 200, **ctx: object) -> HTMLResponse:
    """Render a page with what every page needs: the user, the CSRF token, flash messages."""
    ctx.setdefault("user", current_user(request))
    flashes = request.session.pop("flash", [])
    return request.app.state.templates.TemplateResponse(
        request,
        name,
        {"csrf": csrf_token(request), "flashes": flashes, "labels": request.app.state.labels, **ctx},
        status_code=status_code,
    )


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session["flash"] = [*request.session.get("flash", []), {"kind": kind, "text": message}]


def routers() -> list[APIRouter]:
    """Every page's router (the tests walk these to check that each POST demands a CSRF token)."""
    from web.routes import account, calendar, dashboard, notice, review, rules, search

    return [m.router for m in (account, search, notice, rules, dashboard, calendar, review)]


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    from storage.db import open_archive

    app = FastAPI(title="veille workbench", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.engine = engine or open_archive(settings.database_url)
    app.state.templates = _templates()
    app.state.labels = _labels(settings)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie="veille_session",
        same_site="lax",
        https_only=False,  # served on 127.0.0.1 or behind a TLS proxy; see docs/web.md
        max_age=12 * 3600,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in routers():
        app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if settings.web.trusted_header:  # the proxy should have named the user: no login form to offer
            return render(request, "error.html", status_code=401, message="Not authenticated by the reverse proxy.")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> HTMLResponse:
        return render(request, "error.html", status_code=exc.status_code, message=str(exc.detail))

    return app
