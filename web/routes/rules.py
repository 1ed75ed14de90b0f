"""The rules page: view the active rule file, edit it, validate, preview the backtest, save; and see
what a phrase catches in the archive.

The rules engine is the nlp stage's (imported on first use: it loads spaCy). Saving requires a preview of
exactly the text being saved.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from storage.db import session_scope
from storage.models import Notice
from veille.textfile import read_text
from web.app import flash, render
from web.auth import checked_form, require_analyst, require_user
from web.models import WebUser

router = APIRouter()
SHOWN_PER_LIST = 25
LINE_RE = re.compile(r":(\d+):")


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
    from nlp import rules

    path = rules.rules_path(request.app.state.settings)
    try:
        current = read_text(path, rules.RulesError) if path.exists() else ""
    except rules.RulesError as exc:  # saved in another encoding: shown as best it reads, with why
        current = path.read_bytes().decode("utf-8", "replace")
        ctx.setdefault("error", str(exc))
    ctx.setdefault("error", None)
    err = ctx["error"]
    m = LINE_RE.search(err) if isinstance(err, str) else None
    return render(
        request,
        "rules.html",
        status_code=status_code,
        user=user,
        path=path,
        text=current if text is None else text,
        changed=text is not None and text != current,
        error_line=int(m.group(1)) if m else None,
        **ctx,
    )


@router.get("/rules")
def rules_page(request: Request, user: WebUser = Depends(require_user)) -> Response:
    return _page(request, user)


def _validate(request: Request, text: str) -> str | None:
    """The parser's one-line ``file:line: problem``, or None when the text is valid."""
    from nlp import rules

    try:
        rules.parse_rules(text, rules.rules_path(request.app.state.settings).name)
    except rules.RulesError as exc:
        return str(exc)
    return None


def _titles(request: Request, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    with session_scope(request.app.state.engine) as s:
        rows = s.exec(select(Notice.id, Notice.title_fr, Notice.title_en).where(Notice.id.in_(ids)))
        return {i: fr or en or f"notice {i}" for i, fr, en in rows}


def _preview(request: Request, text: str) -> dict:
    """The page's ``preview`` (label changes) and ``preview_note`` (what the backtest wants the analyst to know)."""
    from nlp.backtest import backtest

    result = backtest(request.app.state.engine, request.app.state.settings, text, filename="candidate")
    changes = []
    for label, res in sorted(result.labels.items()):
        gained, lost = list(res.gained), list(res.lost)
        titles = _titles(request, gained[:SHOWN_PER_LIST] + lost[:SHOWN_PER_LIST])
        changes.append(
            LabelChange(
                label=label,
                gained=[(i, titles.get(i, f"notice {i}")) for i in gained[:SHOWN_PER_LIST]],
                lost=[(i, titles.get(i, f"notice {i}")) for i in lost[:SHOWN_PER_LIST]],
                n_gained=len(gained),
                n_lost=len(lost),
            )
        )
    return {"preview": changes, "preview_note": result.note}


@router.get("/rules/words")
def rules_words(
    request: Request, phrase: str = "", lang: str = "any", user: WebUser = Depends(require_user)
) -> Response:
    """What a phrase catches in the archive (phrases match stems): a check before adding it to a rule."""
    from nlp.phrase_words import phrase_words

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
    error = _validate(request, text)
    if error:
        return _page(request, user, text=text, status_code=422, error=error)
    return _page(request, user, text=text, previewed=_digest(text), **_preview(request, text))


@router.post("/rules/save")
def save_rules(
    request: Request, user: WebUser = Depends(require_analyst), form: dict = Depends(checked_form)
) -> Response:
    from nlp import rules

    text = _clean(form.get("rules", ""))
    error = _validate(request, text)
    if error:
        return _page(request, user, text=text, status_code=422, error=error)
    if form.get("previewed") != _digest(text):
        # The text changed since its preview: show the preview of this text before saving it.
        return _page(
            request,
            user,
            text=text,
            status_code=409,
            previewed=_digest(text),
            **_preview(request, text),
            notice="The text changed since the last preview: check this preview, then save again.",
        )
    version = rules.save_rules(request.app.state.settings, text, user.name)
    flash(
        request,
        f"Rules saved as version {version} by {user.name}; the previous version is kept. The archive is "
        "re-scored with them by the next cycles, newest notices first (or now: veille classify).",
    )
    return RedirectResponse("/rules", status_code=303)
