"""``veille digest`` and ``veille deliveries``."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table


def register(app: typer.Typer) -> None:
    app.command("digest")(digest_cmd)
    app.command("deliveries")(deliveries_cmd)


def digest_cmd(
    label: str | None = typer.Option(None, "--label", "-l", help="Only this label (an extra digest)."),
    since: str | None = typer.Option(None, "--since", help="Cover items since YYYY-MM-DD instead of the last digest."),
    send: bool = typer.Option(False, "--send/--dry-run", help="Send (default: show what would be sent)."),
) -> None:
    """Build the daily digests; show them (--dry-run, the default) or send them (--send)."""
    from alerts import send_digests
    from veille.cli import _date, console, fail, state
    from veille.config import ConfigError

    try:
        stats = send_digests(
            state.engine(), state.settings, label=label, since=_date(since, "--since"), dry_run=not send
        )
    except ConfigError as exc:
        fail(str(exc))
    for p in stats.previews:
        console.rule(f"{escape(p.channel)} → {escape(p.recipient)} ({p.items} items)")
        console.print(escape(p.subject), style="bold", highlight=False)
        console.print(escape(p.text), highlight=False)
    for note in stats.notes:
        console.print(escape(note), style="dim", highlight=False)
    for e in stats.errors:
        console.print(f"[red]failed:[/red] {escape(e)}", highlight=False)
    what = "would send" if not send else "sent"
    count = stats.pending if not send else stats.sent
    console.print(
        f"{what} {count} item deliveries in {len(stats.previews) if not send else stats.messages} messages; "
        f"failed {stats.failed}, uncertain {stats.uncertain}"
    )


def deliveries_cmd(
    failed: bool = typer.Option(False, "--failed", help="Only failed and uncertain deliveries."),
    retry: str | None = typer.Option(
        None, "--retry", help="Queue this batch again (after checking it did not arrive)."
    ),
    limit: int = typer.Option(50, "--limit", "-n"),
) -> None:
    """The outbox: recent deliveries, with the last error."""
    from sqlmodel import select

    from alerts.outbox import retry as retry_batch
    from storage.db import session_scope
    from storage.models import Delivery
    from veille.cli import console, state

    engine = state.engine()
    if retry:
        n = retry_batch(engine, retry)
        console.print(f"{n} deliveries of {escape(retry)} queued again")
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
            r.sent_at.strftime("%Y-%m-%d %H:%M") if r.sent_at and r.status == "sent" else "",
            *([escape(r.batch or "")] if failed else []),
            escape(r.last_error or ""),
        ]
        table.add_row(*cells)
    console.print(table)
    console.print(f"{len(rows)} deliveries shown")
