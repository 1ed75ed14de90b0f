"""Login and logout (password accounts; with a trusted header the proxy does this)."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from web.auth import authenticate, checked_form, current_user, end_sessions, start_session
from web.i18n import N_, _
from web.pages import flash, render
from web.security import client_address

ROLE_NAMES = {"reader": N_("reader"), "analyst": N_("analyst")}

router = APIRouter()


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect to another site after login.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    if request.app.state.settings.web.trusted_header:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request, form: dict = Depends(checked_form)) -> Response:
    state = request.app.state
    target = _safe_next(form.get("next"))
    name, password = form.get("name", ""), form.get("password", "")
    address = client_address(request, state.settings)
    wait = state.login_throttle.attempt(name, address)
    if wait:
        page = render(
            request,
            "login.html",
            status_code=429,
            next=target,
            error=_("Too many login attempts: try again in %(seconds)s s.", seconds=wait),
        )
        page.headers["Retry-After"] = str(wait)
        return page
    # The KDF runs in a worker thread (the event loop stays free), at most KDF_SLOTS at once (bounded memory).
    user = await anyio.to_thread.run_sync(authenticate, state.engine, name, password, limiter=state.kdf_limiter)
    if user is None:
        return render(request, "login.html", status_code=401, next=target, error=_("Unknown user or wrong password."))
    state.login_throttle.succeeded(name, address)
    start_session(request, user)
    flash(request, _("Logged in as %(name)s (%(role)s).", name=user.name, role=_(ROLE_NAMES.get(user.role, user.role))))
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request, _form: dict = Depends(checked_form)) -> Response:
    user = current_user(request)
    if user is not None and not request.app.state.settings.web.trusted_header:
        end_sessions(request.app.state.engine, user.name)  # every cookie of this account, copies included
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
