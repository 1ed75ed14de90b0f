"""Login and logout (password accounts; with a trusted header the proxy does this)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from web.app import flash, render
from web.auth import authenticate, checked_form, csrf_token

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
def login(request: Request, form: dict = Depends(checked_form)) -> Response:
    target = _safe_next(form.get("next"))
    user = authenticate(request.app.state.engine, form.get("name", ""), form.get("password", ""))
    if user is None:
        return render(request, "login.html", status_code=401, next=target, error="Unknown user or wrong password.")
    request.session.clear()  # a fresh session (and CSRF token) after login
    request.session["user"] = user.name
    csrf_token(request)
    flash(request, f"Logged in as {user.name} ({user.role}).")
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request, _form: dict = Depends(checked_form)) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
