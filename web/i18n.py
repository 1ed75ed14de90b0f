"""The workbench's languages: gettext catalogues in ``core/locale/<lang>/LC_MESSAGES/messages.{po,mo}``.

Message ids are the English texts; French is the default. A request's language is the ``veille_lang``
cookie (set by the switch in the page header, ``/lang/<code>``), else the best of ``Accept-Language``,
else French. It lives in a context variable for the request, so templates (Jinja2's ``i18n`` extension)
and the routes' messages (``_()``) both speak it. How to add a string or a language: docs/web.md.
"""

from __future__ import annotations

from contextvars import ContextVar

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.catalog import DEFAULT, LANGUAGES, LOCALE_DIR, translations

__all__ = ["DEFAULT", "LANGUAGES", "LOCALE_DIR", "translations"]
COOKIE = "veille_lang"
_lang: ContextVar[str] = ContextVar("veille_lang", default=DEFAULT)

router = APIRouter()


def current() -> str:
    return _lang.get()


def gettext_(message: str) -> str:
    return translations(_lang.get()).gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return translations(_lang.get()).ngettext(singular, plural, n)


def _(message: str, **params: object) -> str:
    """A route's message in the request's language, ``%(name)s`` filled from ``params``."""
    text = gettext_(message)
    return text % params if params else text


def N_(message: str) -> str:
    return message


def accept_language(header: str) -> str | None:
    """The supported language the ``Accept-Language`` header prefers most (q-values honoured)."""
    ranked = []
    for pos, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            key, _eq, value = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES and q > 0:
            ranked.append((-q, pos, base))
    return min(ranked)[2] if ranked else None


def choose(cookie: str | None, header: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    return accept_language(header or "") or DEFAULT


class Language:
    """ASGI middleware: sets the request's language before any route, handler or template runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            _lang.set(choose(request.cookies.get(COOKIE), request.headers.get("accept-language")))
        await self.app(scope, receive, send)


def _local(target: str | None) -> str:
    # Only local paths: the switch never sends anyone to another site.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/lang/{code}")
def switch(code: str, request: Request, next: str = "/") -> Response:
    """The header's language switch: remember the choice for a year, back to the page."""
    response = RedirectResponse(_local(next), status_code=303)
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response
