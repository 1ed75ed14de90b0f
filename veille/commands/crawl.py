"""``veille crawl``: fetch the configured sources once and store what is new or changed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from core.errors import ConfigError
from veille.commands.base import console, fail, state
from veille.commands.cycle import in_progress

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).


def register(app: typer.Typer) -> None:
    app.command("crawl")(crawl_cmd)


def crawl_cmd(
    source: list[str] = typer.Option(
        [], "--source", "-s", help="Nom de source (répétable) ; défaut : toutes les sources actives."
    ),
    since: str | None = typer.Option(None, "--since", help="AAAA-MM-JJ : relire les sources SPARQL depuis cette date."),
    record: Path | None = typer.Option(
        None, "--record", help="Enregistrer ici chaque réponse reçue (jeu de relecture)."
    ),
) -> None:
    """Relever les sources (Scrapy, requêtes conditionnelles) et archiver les notices nouvelles ou modifiées."""
    from veille.crawl import crawl

    start = None
    if since:
        try:
            start = date.fromisoformat(since)
        except ValueError:
            fail(f"--since : pas une date AAAA-MM-JJ : {since!r}")
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
    table = Table(title="relevé", expand=True)
    for col in ("source", "état", "nouv.", "màj", "inch.", "requêtes", "304", "octets"):
        table.add_column(col, overflow="fold")
    for r in results:
        status = "[green]ok[/green]" if r.ok else f"[red]échec[/red] : {escape(r.error or '')}"
        if r.ok and r.warnings:
            status += f" [yellow]({len(r.warnings)} avertissement(s))[/yellow]"
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
            console.print(f"[yellow]avertissement[/yellow] {escape(r.source)} : {escape(w)}", highlight=False)
    if record:
        console.print(f"réponses enregistrées dans {record} (routes.jsonl + bodies/)")
    failed = [r.source for r in results if not r.ok]
    if failed:
        raise typer.Exit(1)
