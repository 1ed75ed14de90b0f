"""Calendar feeds: ``/calendar/{label}.ics`` and ``/calendar/all.ics``, read by calendar clients.

A calendar client cannot log in: each feed is opened by a secret token in the URL
(``?token=...``, created and revoked with ``veille calendar token create|revoke``). A missing, wrong,
revoked or other feed's token gets 404, the same answer as an unknown feed (nothing to probe).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from alerts.calendar import calendar_ics
from storage.calendar_tokens import ALL, check_token
from web.i18n import _

router = APIRouter()


@router.get("/calendar/{feed}.ics")
async def calendar_feed(request: Request, feed: str, token: str | None = None) -> Response:
    engine, settings = request.app.state.engine, request.app.state.settings
    known = feed == ALL or feed in request.app.state.labels
    if not known or not await run_in_threadpool(check_token, engine, feed, token):
        raise HTTPException(status_code=404, detail=_("No such calendar."))
    body = await run_in_threadpool(calendar_ics, engine, settings, None if feed == ALL else feed)
    headers = {"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"}
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)
