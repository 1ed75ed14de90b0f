"""``veille digest`` and ``veille deliveries``.

The commands import what they use inside their bodies, on purpose: ``veille --help`` and every other
command load this module, and must not pay for the alerts stage (start-up speed, docs/benchmarks.md).
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from core.config import ConfigError
from core.dates import paris_time
from veille.commands.base import _date, check_labels, console, fail, safe, state
from veille.commands.cycle import in_progress

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).

calendar_app = typer.Typer(help="The deadline calendar (iCalendar) and its feed tokens.", invoke_without_command=True)
token_app = typer.Typer(help="Secret tokens of the workbench's calendar feeds.", no_args_is_help=True)
calendar_app.add_typer(token_app, name="token")


def register(app: typer.Typer) -> None:
    app.command("digest")(digest_cmd)
    app.command("deliveries")(deliveries_cmd)
    app.command("reminders")(reminders_cmd)
    app.add_typer(calendar_app, name="calendar")


def reminders_cmd() -> None:
    """Send the deadline reminders due today (N working days before each deadline)."""
    from alerts.reminders import send_reminders
    from storage.lock import RunInProgress
    from storage.runs import exclusive

    engine = state.engine()
    try:
        with exclusive(engine):  # one sender per archive at a time (storage.lock)
            stats = send_reminders(engine, state.settings)
    except ConfigError as exc:
        fail(str(exc))
    except RunInProgress as exc:
        in_progress(exc)
    for note in stats.notes:
        console.print(escape(note), style="dim", highlight=False)
    for e in stats.errors:
        console.print(f"[red]failed:[/red] {escape(e)}", highlight=False)
    console.print(f"reminders: sent {stats.sent} in {stats.messages} messages; failed {stats.failed}")


@calendar_app.callback()
def calendar_cmd(
    ctx: typer.Context,
    label: str | None = typer.Option(None, "--label", "-l", help="Only this label's events."),
    ics: str | None = typer.Option(None, "--ics", help="Write the calendar to this .ics file (default: list)."),
) -> None:
    """Deadlines of consultations, draft acts and funding calls, and application dates of watched acts."""
    if ctx.invoked_subcommand:
        return
    from alerts.calendar import calendar_ics, events

    check_labels([label] if label else [])
    try:
        if ics:
            data = calendar_ics(state.engine(), state.settings, label)
            try:
                with open(ics, "wb") as fh:
                    fh.write(data)
            except OSError as exc:
                fail(f"--ics: cannot write {ics}: {exc.strerror}")
            console.print(f"{_n(data.count(b'BEGIN:VEVENT'), 'event')} written to {escape(ics)}")
            return
        evs = events(state.engine(), state.settings, label)
    except ConfigError as exc:
        fail(str(exc))
    table = Table(expand=True)
    for col in ("date", "until", "event", "labels"):
        table.add_column(col, overflow="fold")
    for e in evs:
        until = (e.end.fromordinal(e.end.toordinal() - 1)).isoformat() if e.end else ""
        table.add_row(e.start.isoformat(), until, safe(e.summary), escape(", ".join(e.labels)))
    console.print(table)
    console.print(_n(len(evs), "event"))


@token_app.command("create")
def token_create(
    label: str = typer.Option("all", "--label", "-l", help="The feed: a label, or 'all'."),
    note: str | None = typer.Option(None, "--note", help="Who it is for."),
) -> None:
    """A new secret for a calendar feed (shown once): /calendar/<label>.ics?token=..."""
    from storage.calendar_tokens import ALL, create_token

    check_labels([label], alternative=ALL)
    tid, token = create_token(state.engine(), label, note)
    web = state.settings.web
    console.print(f"token {tid} for feed {escape(label)} (shown once, keep it):")
    # One unbroken line each: they are copied into a calendar client.
    console.print(token, soft_wrap=True, highlight=False)
    console.print(
        f"http://{web.host}:{web.port}/calendar/{escape(label)}.ics?token={token}", soft_wrap=True, highlight=False
    )


@token_app.command("revoke")
def token_revoke(token: str = typer.Argument(..., help="The token, or its id (veille calendar token list).")) -> None:
    """Revoke a calendar feed token: its feed URL stops working at once."""
    from storage.calendar_tokens import revoke_token

    if not revoke_token(state.engine(), token):
        fail("no live token with that id or value")
    console.print("token revoked")


@token_app.command("list")
def token_list() -> None:
    """Calendar feed tokens (ids, feeds, notes; never the secrets)."""
    from storage.calendar_tokens import list_tokens

    table = Table()
    for col in ("id", "feed", "note", "created", "revoked"):
        table.add_column(col)
    for t in list_tokens(state.engine()):
        revoked = paris_time(t.revoked_at, short=True)
        table.add_row(str(t.id), escape(t.feed), escape(t.note or ""), paris_time(t.created_at, short=True), revoked)
    console.print(table)


def _n(n: int, word: str, many: str | None = None) -> str:
    """``1 message``, ``2 messages``, ``0 messages``."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def digest_cmd(
    label: str | None = typer.Option(None, "--label", "-l", help="Only this label (an extra digest)."),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Cover the items first seen by the watch since YYYY-MM-DD (not their publication date), "
        "instead of those since each recipient's last digest.",
    ),
    preview: str | None = typer.Option(
        None,
        "--preview",
        metavar="DATE",
        help="Show what the digests of YYYY-MM-DD held (from the outbox, even once sent) or, for today, "
        "would hold. Never sends.",
    ),
    send: bool = typer.Option(False, "--send/--dry-run", help="Send (default: show what would be sent)."),
) -> None:
    """Build the daily digests; show them (--dry-run, the default) or send them (--send)."""
    from contextlib import nullcontext

    from alerts import send_digests
    from alerts.jobs import preview_digests
    from storage.lock import RunInProgress
    from storage.runs import exclusive

    check_labels([label] if label else [])
    if preview and (send or since):
        fail("--preview shows a day's digests as they are: it takes neither --send nor --since")
    engine = state.engine()
    try:
        if preview:
            stats = preview_digests(engine, state.settings, _date(preview, "--preview"), label)
        else:
            with exclusive(engine) if send else nullcontext():  # a dry run writes nothing: no lock
                stats = send_digests(
                    engine, state.settings, label=label, since=_date(since, "--since"), dry_run=not send
                )
    except ConfigError as exc:
        fail(str(exc))
    except RunInProgress as exc:
        in_progress(exc)
    for p in stats.previews:
        console.rule(f"{escape(p.channel)} → {escape(p.recipient)} ({_n(p.items, 'item')})")
        console.print(escape(p.subject), style="bold", highlight=False)
        console.print(escape(p.text), highlight=False)
    for note in stats.notes:
        console.print(escape(note), style="dim", highlight=False)
    for e in stats.errors:
        console.print(f"[red]failed:[/red] {escape(e)}", highlight=False)
    if preview:
        console.print(
            f"{_n(len(stats.previews), 'message')}: {_n(stats.sent, 'item delivery', 'item deliveries')} sent, "
            f"{stats.pending} pending, failed {stats.failed}, uncertain {stats.uncertain}"
        )
        return
    what = "would send" if not send else "sent"
    count = stats.pending if not send else stats.sent
    messages = len(stats.previews) if not send else stats.messages
    console.print(
        f"{what} {_n(count, 'item delivery', 'item deliveries')} in {_n(messages, 'message')}; "
        f"failed {stats.failed}, uncertain {stats.uncertain}"
    )


def deliveries_cmd(
    failed: bool = typer.Option(False, "--failed", help="Only failed and uncertain deliveries."),
    retry: str | None = typer.Option(
        None, "--retry", help="Queue this batch again (after checking it did not arrive)."
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1),
) -> None:
    """The outbox: recent deliveries, with the last error."""
    from sqlmodel import select

    from alerts.outbox import retry as retry_batch
    from storage.db import session_scope
    from storage.models import Delivery

    engine = state.engine()
    if retry:
        n = retry_batch(engine, retry)
        if not n:
            fail(f"--retry: nothing to queue again in batch {retry!r} (no such batch, or none of it failed)")
        console.print(f"{_n(n, 'delivery', 'deliveries')} of {escape(retry)} queued again")
        return
    with session_scope(engine) as s:
        q = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
        if failed:
            q = q.where(Delivery.status.in_(("failed", "uncertain")))
        rows = list(s.exec(q))
    table = Table(expand=True)
    # The batch (needed for --retry) only where something needs retrying: narrow terminals.
    cols = ["id", "notice", "recipient", "via", "status", "tries", "sent", *(["batch"] if failed else []), "last error"]
    for col in cols:
        table.add_column(col, overflow="fold")
    for r in rows:
        color = {"sent": "green", "failed": "red", "uncertain": "yellow"}.get(r.status, "white")
        cells = [
            str(r.id),
            str(r.notice_id),
            escape(r.recipient),
            f"{r.channel} {r.purpose}",
            f"[{color}]{r.status}[/{color}]",
            str(r.attempts),
            paris_time(r.sent_at, short=True) if r.status == "sent" else "",
            *([escape(r.batch or "")] if failed else []),
            safe(r.last_error or ""),
        ]
        table.add_row(*cells)
    console.print(table)
    console.print(f"{_n(len(rows), 'delivery', 'deliveries')} shown")
