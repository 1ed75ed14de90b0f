"""The rules page: view the active rule file, edit it, validate, preview the backtest, save; and see
what a phrase catches in the archive.

The rules engine is the nlp stage's. Checks and previews run in a worker process with a time and a
memory limit (web/rules_worker.py); the server remembers which texts it previewed for each session and
saves only one of those (the form's hidden field only says which text the page shows).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from core.textfile import read_text
from nlp import rules
from nlp.phrase_words import phrase_words
from storage.db import session_scope
from storage.models import Notice
from storage.web_users import WebUser
from web import rules_worker
from web.auth import checked_form, require_analyst, require_user
from web.i18n import _
from web.pages import flash, render

router = APIRouter()
SHOWN_PER_LIST = 25
LINE_RE = re.compile(r":(\d+):")
PREVIEWS_PER_SESSION = 20
SESSIONS_KEPT = 1000  # previews are remembered for the most recent sessions (in memory, per server process)
_lock = threading.Lock()


@dataclass
class LabelChange:
    label: str
    gained: list[tuple[int, str]]  # (notice id, title), first SHOWN_PER_LIST
    lost: list[tuple[int, str]]
    n_gained: int
    n_lost: int


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _page(request: Request, user: WebUser, text: str | None = None, status_code: int = 200, **ctx: object) -> Response:
    settings = request.app.state.settings
    path = rules.rules_path(settings)
    try:
        current = read_text(path, rules.RulesError) if path.exists() else ""
    except rules.RulesError as exc:  # saved in another encoding: shown as best it reads, with why
        current = path.read_bytes().decode("utf-8", "replace")
        ctx.setdefault("error", str(exc).replace(str(path), path.name))
    if text is None and "error" not in ctx:
        ctx["error"] = _refused(settings)
    ctx.setdefault("error", None)
    err = ctx["error"]
    m = LINE_RE.search(err) if isinstance(err, str) else None
    return render(
        request,
        "rules.html",
        status_code=status_code,
        user=user,
        path=path if user.can_edit else path.name,  # a reader is shown a name, not a server path
        text=current if text is None else text,
        changed=text is not None and text != current,
        error_line=int(m.group(1)) if m else None,
        **ctx,
    )


def _refused(settings: object) -> str | None:
    """Why the file in place is refused, when the last good rules are in force instead."""
    path = rules.rules_path(settings)
    try:
        refused = rules.active_rules(settings).refused
    except rules.RulesError as exc:
        return str(exc).replace(str(path), path.name)
    if not refused:
        return None
    # The file's name, not its server path (readers see this line too).
    return _("%(why)s (file refused: the last good rules stay in force)", why=refused.replace(str(path), path.name))


@router.get("/rules")
def rules_page(request: Request, user: WebUser = Depends(require_user)) -> Response:
    return _page(request, user)


def _check(request: Request, text: str) -> dict:
    """Validate and preview ``text`` in the worker: ``{"error": ...}`` (one line) or the page's preview."""
    settings = request.app.state.settings

    url = request.app.state.engine.url.render_as_string(hide_password=False)
    name = rules.rules_path(settings).name
    try:
        out = rules_worker.run_limited(
            rules_worker.check_and_preview,
            settings,
            str(settings.home),
            url,
            text,
            name,
            seconds=rules_worker.CHECK_SECONDS,
            memory_mb=rules_worker.CHECK_MEMORY_MB,
        )
    except rules_worker.CheckFailed as exc:
        return {"error": str(exc)}
    if "error" in out:
        return out
    return _preview(request, out["labels"], out["note"])


def _previews(request: Request, user: WebUser) -> set[str]:
    """The text digests this session had previewed (server-side; bounded)."""
    sid = request.session.get("rules_sid")
    if not sid:
        sid = request.session["rules_sid"] = secrets.token_urlsafe(16)
    state = request.app.state
    with _lock:
        store = getattr(state, "rules_previews", None)
        if store is None:
            store = state.rules_previews = OrderedDict()
        key = (user.name, sid)
        store[key] = seen = store.pop(key, set())
        while len(store) > SESSIONS_KEPT:
            store.popitem(last=False)
        return seen


def _remember(request: Request, user: WebUser, digest: str) -> None:
    seen = _previews(request, user)
    with _lock:
        if len(seen) >= PREVIEWS_PER_SESSION:
            seen.pop()
        seen.add(digest)


def _titles(request: Request, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    with session_scope(request.app.state.engine) as s:
        rows = s.exec(select(Notice.id, Notice.title_fr, Notice.title_en).where(Notice.id.in_(ids)))
        return {i: fr or en or _("notice %(id)s", id=i) for i, fr, en in rows}


def _preview(request: Request, labels: dict[str, tuple[list[int], list[int]]], note: str | None) -> dict:
    """The page's ``preview`` (label changes) and ``preview_note`` (what the backtest wants the analyst to know)."""
    changes = []
    for label, (gained, lost) in sorted(labels.items()):
        titles = _titles(request, gained[:SHOWN_PER_LIST] + lost[:SHOWN_PER_LIST])
        changes.append(
            LabelChange(
                label=label,
                gained=[(i, titles.get(i, _("notice %(id)s", id=i))) for i in gained[:SHOWN_PER_LIST]],
                lost=[(i, titles.get(i, _("notice %(id)s", id=i))) for i in lost[:SHOWN_PER_LIST]],
                n_gained=len(gained),
                n_lost=len(lost),
            )
        )
    return {"preview": changes, "preview_note": note}


@router.get("/rules/words")
def rules_words(
    request: Request, phrase: str = "", lang: str = "any", user: WebUser = Depends(require_user)
) -> Response:
    """What a phrase catches in the archive (phrases match stems): a check before adding it to a rule."""
    ctx: dict = {"words_phrase": phrase, "words_lang": lang}
    try:
        ctx["words"] = phrase_words(request.app.state.engine, request.app.state.settings, phrase, lang)
    except ValueError as exc:
        return _page(request, user, status_code=422, words_error=str(exc), **ctx)
    return _page(request, user, **ctx)


@router.post("/rules/check")
def check_rules(
    request: Request, user: WebUser = Depends(require_analyst), form: dict = Depends(checked_form)
) -> Response:
    text = _clean(form.get("rules", ""))
    result = _check(request, text)
    if "error" in result:
        return _page(request, user, text=text, status_code=422, **result)
    digest = _digest(text)
    _remember(request, user, digest)
    return _page(request, user, text=text, previewed=digest, **result)


@router.post("/rules/save")
def save_rules(
    request: Request, user: WebUser = Depends(require_analyst), form: dict = Depends(checked_form)
) -> Response:
    text = _clean(form.get("rules", ""))
    digest = _digest(text)
    if digest not in _previews(request, user):
        # Not previewed by this session (or changed since): show the preview of this text before saving it.
        result = _check(request, text)
        if "error" in result:
            return _page(request, user, text=text, status_code=422, **result)
        _remember(request, user, digest)
        notice = _("The text changed since the last preview: check this preview, then save again.")
        return _page(request, user, text=text, status_code=409, previewed=digest, notice=notice, **result)
    try:  # checked within limits by the preview: parsing it here again is bounded
        version = rules.save_rules(
            request.app.state.settings, text, user.name, filename=rules.rules_path(request.app.state.settings).name
        )
    except rules.RulesError as exc:  # a label removed from the profile since, or the history not writable
        return _page(request, user, text=text, status_code=422, error=str(exc))
    flash(
        request,
        _(
            "Rules saved as version %(version)s by %(user)s; the previous version is kept. The archive is "
            "re-scored with them by the next cycles, newest notices first (or now: veille classify).",
            version=version,
            user=user.name,
        ),
    )
    return RedirectResponse("/rules", status_code=303)
