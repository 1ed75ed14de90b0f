"""The analysts' loop in the workbench: the decisions worth a minute of labelling (``nlp.review``), newest
notices first, each linked to its notice page, where the verdict is given."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from nlp.review import review
from storage.web_users import WebUser
from web.auth import require_user
from web.pages import render

router = APIRouter()


@router.get("/review")
def review_page(
    request: Request, label: str | None = None, n: int = 50, user: WebUser = Depends(require_user)
) -> Response:
    labels = request.app.state.labels
    label = label if label in labels else None
    items = review(request.app.state.engine, request.app.state.settings, label, min(max(n, 1), 500))
    return render(request, "review.html", user=user, items=items, label=label)
