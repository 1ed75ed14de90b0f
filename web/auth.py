"""Accounts, sessions and CSRF for the workbench.

Passwords are stored as salted scrypt hashes (``hashlib.scrypt``, stdlib). A session is a signed
cookie (Starlette's SessionMiddleware, itsdangerous) holding the user name, the account's session stamp
and a per-session CSRF token; every POST must echo that token. The stamp includes the account's
``session_version``, raised by logout and password changes: a cookie made before no longer names anyone.
With ``[web] trusted_header`` set, the reverse proxy names the user instead of the login form; the role
still comes from the ``web_user`` table (reader if absent).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import UTC
from pathlib import Path

from fastapi import HTTPException, Request
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import Settings
from core.dates import now_utc
from storage.db import session_scope
from storage.web_users import ROLES, WebUser
from web.i18n import _

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# scrypt(n=2^14, r=8) takes 16 MiB and ~50 ms: the server hashes at most this many passwords at once.
KDF_SLOTS = 2
# Checked against when the name is unknown or has no password: the same one KDF call as for a known name.
DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'A' * 22}==${'A' * 86}=="
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """Raised by :func:`require_user`; the app turns it into a redirect to the login page."""


# --- passwords ------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, want)


# --- accounts -------------------------------------------------------------------------------


def check_user_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        raise ValueError(f"nom de connexion de 1 à 100 caractères, sans espace : {name!r}")
    return name


def add_user(engine: Engine, name: str, role: str, password: str | None) -> WebUser:
    """Create an account, or update the role/password of an existing one."""
    name = check_user_name(name)
    if role not in ROLES:
        raise ValueError(f"rôle parmi {', '.join(ROLES)}, pas {role!r}")
    with session_scope(engine, write=True) as s:
        user = s.exec(select(WebUser).where(WebUser.name == name)).first()
        if user is None:
            user = WebUser(name=name, role=role, created_at=now_utc())
            s.add(user)
        user.role = role
        if password is not None:
            user.password_hash = hash_password(password)
            user.session_version += 1  # a new password ends the sessions opened with the old one
        s.flush()
        return user


def remove_user(engine: Engine, name: str) -> bool:
    """Delete an account (its sessions end with it); False if there is none. Its feedback keeps its name."""
    with session_scope(engine, write=True) as s:
        user = s.exec(select(WebUser).where(WebUser.name == name)).first()
        if user is None:
            return False
        s.delete(user)
        return True


def end_sessions(engine: Engine, name: str) -> None:
    """Every session cookie of ``name`` made so far stops working (logout ends them all)."""
    with session_scope(engine, write=True) as s:
        s.exec(update(WebUser).where(WebUser.name == name).values(session_version=WebUser.session_version + 1))


def session_stamp(user: WebUser) -> str:
    """What a session cookie must carry to name ``user``: the row (a re-created account is another) and
    its session version."""
    created = user.created_at
    if created is not None:  # the naive UTC form cookies have always carried
        created = created.astimezone(UTC).replace(tzinfo=None)
    return f"{user.id}:{created.isoformat() if created else ''}:{user.session_version}"


def get_user(engine: Engine, name: str) -> WebUser | None:
    with session_scope(engine) as s:
        return s.exec(select(WebUser).where(WebUser.name == name)).first()


def authenticate(engine: Engine, name: str, password: str) -> WebUser | None:
    user = get_user(engine, name.strip())
    stored = user.password_hash if user is not None and user.password_hash else None
    # One KDF call whether or not the name exists and has a password: the answer time tells nothing.
    good = verify_password(password, stored or DUMMY_HASH)
    if user is None or stored is None or not good:
        return None
    with session_scope(engine, write=True) as s:
        row = s.get(WebUser, user.id)
        row.last_login = now_utc()
    return user


# --- session secret -------------------------------------------------------------------------


def session_secret(settings: Settings) -> str:
    """The cookie signing key: config/env if set, else a random key kept in $VEILLE_HOME/web_secret."""
    if settings.web.session_secret is not None:
        return settings.web.session_secret.get_secret_value()
    path: Path = settings.home / "web_secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


# --- per-request identity -------------------------------------------------------------------


def current_user(request: Request) -> WebUser | None:
    app = request.app
    header = app.state.settings.web.trusted_header
    if header:
        name = (request.headers.get(header) or "").strip()
        if not name:
            return None
        user = get_user(app.state.engine, name)
        return user or WebUser(name=name, role="reader", created_at=now_utc())
    name = request.session.get("user")
    if not name:
        return None
    user = get_user(app.state.engine, name)
    if user is None or request.session.get("stamp") != session_stamp(user):
        # Logged out elsewhere, password changed, account removed: this cookie names no one any more.
        request.session.pop("user", None)
        request.session.pop("stamp", None)
        return None
    return user


def start_session(request: Request, user: WebUser) -> None:
    request.session.clear()  # a fresh session (and CSRF token) after login
    request.session["user"] = user.name
    request.session["stamp"] = session_stamp(user)
    csrf_token(request)


def require_user(request: Request) -> WebUser:
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    return user


def require_analyst(request: Request) -> WebUser:
    user = require_user(request)
    if not user.can_edit:
        raise HTTPException(403, _("Analysts only: your account is read-only."))
    return user


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: Request) -> dict[str, str]:
    """The POSTed form, after checking its CSRF token against the session's (403 if it differs)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    want = request.session.get("csrf")
    if not want or not isinstance(sent, str) or not hmac.compare_digest(sent, want):
        raise HTTPException(403, _("Missing or wrong CSRF token: reload the page and try again."))
    return {k: v for k, v in form.items() if isinstance(v, str)}
