"""What every page handler needs: render a template with the user, CSRF token and flash messages.

Routes reach the app through ``request.app.state`` (templates, engine, settings, labels), never by
importing ``web.app``, which imports them.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from web.auth import csrf_token, current_user


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
