"""The dashboard: notices per week per label, source health, relevance (rules, model, its cross-validation,
outdated scores), outbox backlog."""

from __future__ import annotations

import textwrap
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func
from sqlmodel import select

from core.dates import as_day
from nlp.status import status
from storage.db import session_scope
from storage.health import source_states
from storage.models import CrawlRun, Delivery, LabelScore, Notice, Source
from storage.web_users import WebUser
from web.auth import require_user
from web.pages import render
from web.views import week_start, weekly_chart

router = APIRouter()
FAILURE_WINDOW = timedelta(days=7)
LEGEND_CHARS = 18


def _weekly(s, weeks: int, tz: str) -> tuple[dict[str, dict[date, int]], list[date]]:
    """Counts per label per week; the weeks end at the current one (local time), quiet weeks count zero."""
    end = week_start(datetime.now(ZoneInfo(tz)).date())
    start = end - timedelta(weeks=weeks - 1)
    rows = s.exec(
        select(LabelScore.label, Notice.published_at)
        .join(Notice, Notice.id == LabelScore.notice_id)
        .where(LabelScore.selected, Notice.published_at >= start)
    )
    counts: dict[str, dict[date, int]] = defaultdict(Counter)
    for label, when in rows:
        wk = week_start(as_day(when))
        if wk <= end:
            counts[label][wk] += 1
    return dict(counts), [start + timedelta(weeks=i) for i in range(weeks)]


def _sources(s) -> list[dict]:
    since = datetime.now(UTC) - FAILURE_WINDOW
    failures = dict(
        s.exec(
            select(CrawlRun.source, func.count())
            .where(CrawlRun.status == "failed", CrawlRun.started_at >= since)
            .group_by(CrawlRun.source)
        ).all()
    )
    out = []
    for src in s.exec(select(Source).order_by(Source.name)):
        last = s.exec(select(CrawlRun).where(CrawlRun.source == src.name).order_by(CrawlRun.id.desc())).first()
        out.append({"src": src, "failures": failures.get(src.name, 0), "last": last})
    return out


def _outbox(s) -> dict:
    rows = s.exec(select(Delivery.status, Delivery.channel, func.count()).group_by(Delivery.status, Delivery.channel))
    by = [(status, channel, n) for status, channel, n in rows]
    oldest = s.exec(select(func.min(Delivery.created_at)).where(Delivery.status != "sent")).one()
    return {"rows": sorted(by), "backlog": sum(n for st, _c, n in by if st != "sent"), "oldest": oldest}


def _relevance(request: Request) -> dict:
    """The rules and model in force, the model's cross-validation, outdated scores."""
    return status(request.app.state.engine, request.app.state.settings)


def short_name(labels: dict[str, str], label: str) -> str:
    """A label in the chart's legend: its profile name, up to " — " (``DEAI — Évaluation…`` -> ``DEAI``)."""
    name = labels.get(label, label).split(" — ", 1)[0]
    return textwrap.shorten(name, LEGEND_CHARS, placeholder="…")  # the legend is 190 px wide


@router.get("/dashboard")
def dashboard(request: Request, weeks: int = 52, user: WebUser = Depends(require_user)) -> Response:
    weeks = min(max(weeks, 4), 156)

    health = {st.name: st for st in source_states(request.app.state.engine, request.app.state.settings)}
    with session_scope(request.app.state.engine) as s:
        counts, week_list = _weekly(s, weeks, request.app.state.settings.schedule.timezone)
        sources = [{**row, "health": health.get(row["src"].name)} for row in _sources(s)]
        outbox = _outbox(s)
        n_notices = s.exec(select(func.count()).select_from(Notice)).one()
    return render(
        request,
        "dashboard.html",
        user=user,
        chart=weekly_chart({short_name(request.app.state.labels, k): v for k, v in counts.items()}, week_list),
        weeks=weeks,
        first_week=week_list[0],
        today=datetime.now(ZoneInfo(request.app.state.settings.schedule.timezone)).date(),  # the last week's end
        sources=sources,
        outbox=outbox,
        relevance=_relevance(request),
        n_notices=n_notices,
    )
