"""``veille crawl``: fetch the configured sources once and store what is new or changed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from core.config import ConfigError
from veille.commands.base import console, fail, state
from veille.commands.cycle import in_progress

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).


def register(app: typer.Typer) -> None:
    app.command("crawl")(crawl_cmd)


def crawl_cmd(
    source: list[str] = typer.Option([], "--source", "-s", help="Source name (repeatable); default: all enabled."),
    since: str | None = typer.Option(None, "--since", help="YYYY-MM-DD: re-read SPARQL sources from this date."),
    record: Path | None = typer.Option(None, "--record", help="Save every live response here (replay bundle)."),
) -> None:
    """Crawl sources (Scrapy, conditional GETs) and store new and changed notices."""
    from veille.crawl import crawl

    start = None
    if since:
        try:
            start = date.fromisoformat(since)
        except ValueError:
            fail(f"--since: not a date YYYY-MM-DD: {since!r}")
    from storage.lock import RunInProgress
    from storage.runs import exclusive

    engine = state.engine()
    try:
        with exclusive(engine):  # one crawl per archive at a time; closes runs a dead process left open
            results = crawl(state.settings, engine, names=source or None, since=start, record_dir=record)
    except ConfigError as exc:
        fail(str(exc))
    except RunInProgress as exc:
        in_progress(exc)
    table = Table(title="crawl", expand=True)
    for col in ("source", "status", "new", "updated", "unchanged", "requests", "304", "bytes"):
        table.add_column(col, overflow="fold")
    for r in results:
        status = "[green]ok[/green]" if r.ok else f"[red]failed[/red]: {escape(r.error or '')}"
        if r.ok and r.warnings:
            status += f" [yellow]({len(r.warnings)} warnings)[/yellow]"
        table.add_row(
            escape(r.source),
            status,
            str(r.new),
            str(r.updated),
            str(r.unchanged),
            str(r.requests),
            str(r.not_modified),
            f"{r.bytes:,}",
        )
    console.print(table)
    for r in results:
        for w in r.warnings[:5]:
            console.print(f"[yellow]warning[/yellow] {escape(r.source)}: {escape(w)}", highlight=False)
    if record:
        console.print(f"responses recorded in {record} (routes.jsonl + bodies/)")
    failed = [r.source for r in results if not r.ok]
    if failed:
        raise typer.Exit(1)
