"""The commands that run the whole watch: ``run``, ``schedule``, ``demo`` and ``status``."""

from __future__ import annotations

import shlex
import shutil
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.dates import paris_time, today_brussels
from veille.commands.base import console, err, safe, state

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("schedule")(schedule_cmd)
    app.command("demo")(demo_cmd)
    app.command("status")(status_cmd)


def _print_summary(summary) -> None:  # veille.pipeline.CycleSummary

    for source in summary.abandoned:
        console.print(f"source {safe(source)} : un relevé laissé inachevé par un processus arrêté a été clos en échec")
    table = Table(title="sources", expand=False)
    for col in ("source", "état", "nouv.", "màj", "inch.", "304", "raison"):
        table.add_column(col, overflow="fold")
    for r in summary.sources:
        table.add_row(
            safe(r.source),
            ("[yellow]ok[/yellow]" if r.warnings else "[green]ok[/green]") if r.ok else "[red]échec[/red]",
            str(r.new),
            str(r.updated),
            str(r.unchanged),
            str(r.not_modified),
            safe(r.error or (f"{len(r.warnings)} avertissement(s) : {r.warnings[0]}" if r.warnings else "")),
        )
    console.print(table)
    if summary.rescored:
        console.print(f"{summary.rescored} notice(s) reclassée(s) (autres règles ou autre modèle)")
    if summary.labels:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.labels.items()))
        console.print(f"notices par unité : {counts}", soft_wrap=False)  # wrapped between counts, not in one
    for name, stats in (("alertes", summary.alerts), ("digests", summary.digests)):
        if stats is not None:
            console.print(delivery_line(name, stats))


def delivery_line(name: str, stats) -> str:  # alerts.delivery.DeliveryStats
    """Messages are what people receive; a message carries several notices for one recipient."""
    return (
        f"{name} : {plural(stats.messages, 'message')} ({plural(stats.sent, 'notice')} × destinataire), "
        f"{stats.pending} en attente, {stats.failed} en échec"
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n > 1 else ''}"


def in_progress(exc: Exception) -> None:
    """Another process holds the archive's lock: say so in one line and exit 75 (EX_TEMPFAIL), having
    done nothing. Not an error of the user's: a scheduled cycle or another command is running."""
    from storage.lock import EXIT_IN_PROGRESS

    err.print(f"{escape(str(exc))} ; rien n'a été fait", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_IN_PROGRESS)


def _cycle(sources: list[str] | None, wait: float):
    from veille.pipeline import run_cycle

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("démarrage", total=None)
        return run_cycle(
            state.engine(),
            state.settings,
            sources=sources,
            progress=lambda msg: bar.update(task, description=msg),
            wait=wait,
        )


def run_cmd(
    source: list[str] = typer.Option(
        [], "--source", "-s", help="Seulement ces sources (défaut : chaque source dont le relevé est dû)."
    ),
    all_sources: bool = typer.Option(False, "--all", help="Relever chaque source active, due ou non."),
    wait: float = typer.Option(
        0.0, "--wait", min=0.0, help="Secondes d'attente d'un cycle en cours (défaut : sortie 75 aussitôt)."
    ),
) -> None:
    """Un cycle complet : relever les sources dues, archiver, classer, envoyer alertes et digests dus.

    Sortie 0 : fait ; 1 : une source ou un envoi en échec ; 75 : un autre cycle tient l'archive, rien fait."""
    from storage.lock import RunInProgress

    names = list(source) or ([s.name for s in state.settings.sources if s.enabled] if all_sources else None)
    try:
        summary = _cycle(names, wait)
    except RunInProgress as exc:
        in_progress(exc)
    _print_summary(summary)
    if not summary.ok:
        for r in summary.failed_sources:
            err.print(f"source {safe(r.source)} en échec : {safe(r.error or '?')}")
        if summary.failed_deliveries:
            err.print(f"{summary.failed_deliveries} envoi(s) en échec : voir `veille deliveries --failed`")
        raise typer.Exit(1)


def schedule_cmd() -> None:
    """Lancer l'ordonnanceur jusqu'à SIGTERM (relevés à l'intervalle de chaque source, digests à l'heure configurée)."""
    import logging

    import scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state.engine()  # validate the config and reach the archive before starting
    scheduler.run_forever(str(state.config) if state.config else None)


def status_cmd() -> None:
    """Sources (dernier succès, dernier échec et pourquoi), prochains relevés, envois en attente."""
    import scheduler
    from storage.deliveries import status_counts
    from storage.health import source_health, source_states
    from veille.commands.base import console, safe, state, status_name

    db = state.archive()  # read with sqlite3 when it can (a quick answer), else SQLAlchemy
    health_rows = source_health(db)
    table = Table(title="sources")
    # A source's name is typed after --source: never cut nor wrapped (80 columns fit the longest shipped one).
    table.add_column("source", no_wrap=True)
    table.add_column("état", overflow="fold")
    for col in ("dernier succès", "dernier échec"):  # narrow terminal: the day, then the time, below it
        table.add_column(col, overflow="fold", max_width=10 if console.width < 120 else None)
    table.add_column("raison", overflow="fold")
    states = {st.name: st for st in source_states(db, state.settings)}
    for s in health_rows:
        st = states.get(s.name)
        health = safe(st.text) if st and st.state in ("quiet", "degraded") else (st.label if st else "")
        table.add_row(escape(s.name), health, _when(s.last_success), _when(s.last_failure), safe(s.last_error or ""))
    console.print(table)
    runs = scheduler.next_runs(state.settings, db)
    if runs:
        console.print(
            "prochains relevés : " + ", ".join(f"{j} {_when(t)}" for j, t in sorted(runs, key=lambda r: str(r[1])))
        )
    else:
        console.print("prochains relevés : l'ordonnanceur n'a pas encore tourné (`veille schedule`)")
    rows = status_counts(db)
    console.print("boîte d'envoi : " + (", ".join(f"{status_name(st)} {n}" for st, n in rows) or "vide"))


def _when(t: datetime | None) -> str:
    return paris_time(t, short=True) or "—"


def _demo_settings(base_url: str, home: Path, profile: str):  # Settings
    """The replay config, with the archive and outbox in the demo folder (kept for later commands)."""
    from core.config import load_settings
    from crawlers.replay import config_text

    cfg = home / "veille.toml"
    text = config_text(base_url).replace('profile = "has"', f'profile = "{profile}"', 1)
    cfg.write_text(
        f'outbox_dir = "{home / "outbox"}"\n' + text + f'\n[storage]\nurl = "sqlite:///{home / "veille.db"}"\n',
        encoding="utf-8",
    )
    return load_settings(cfg)


def _demo_calendar(engine, settings, home: Path) -> Path:
    """The demo's deadlines, once per item with the recipients it goes to; written as an iCalendar file too."""
    from alerts.calendar import calendar_ics
    from alerts.config import load_routing
    from alerts.deadlines import deadline_items, open_candidates
    from alerts.routing import recipients

    today = today_brussels()
    routing, cands = load_routing(settings), open_candidates(engine, today)
    items: dict[int, tuple] = {}
    for r in recipients(routing):
        for e in deadline_items(cands, routing, r.labels, today):
            items.setdefault(e.notice_id, (e, []))[1].append(r.address)
    console.print("\n[bold]Échéances[/bold] (section des digests)")
    for e, who in sorted(items.values(), key=lambda it: (it[0].deadline or today, it[0].notice_id)):
        console.print(f"• {e.deadline_text} ({e.left_text}) · {e.kind_name}")  # each line within 80 columns
        console.print(f"  {safe(e.title, 76)}")
        lines = textwrap.wrap(", ".join(who), 76, break_long_words=False, break_on_hyphens=False)
        for i, line in enumerate(lines):  # addresses whole, within 80 columns
            console.print(f"  [dim]{' ' if i else '→'} {escape(line)}[/dim]")
    path = home / "calendar.ics"
    path.write_bytes(calendar_ics(engine, settings))
    return path


def demo_cmd(
    home: Path | None = typer.Option(
        None, "--home", help="Dossier de l'archive de démonstration (défaut : $VEILLE_HOME/demo)."
    ),
) -> None:
    """Rejouer hors ligne les sources enregistrées livrées avec veille, à travers toute la chaîne."""
    from crawlers.replay import serve
    from storage.db import open_archive
    from storage.lock import RunInProgress
    from veille.pipeline import run_cycle

    base = state.settings.home
    home = home or base / "demo"
    home.mkdir(parents=True, exist_ok=True)
    server, url = serve()
    try:
        settings = _demo_settings(url, home, state.settings.profile)
        engine = open_archive(settings.database_url)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as bar:
            task = bar.add_task("relecture des sources enregistrées", total=None)
            summary = run_cycle(
                engine,
                settings,
                sources=[s.name for s in settings.sources],
                digest_since=date(2000, 1, 1),
                progress=lambda m: bar.update(task, description=m),
            )
    except RunInProgress as exc:  # another demo on the same folder
        in_progress(exc)
    finally:
        server.close()
    _print_summary(summary)
    ics = _demo_calendar(engine, settings, home)
    # One folder per delivery channel (alerts/channels): say which ones this run filled.
    folders = sorted(f"{p.name}/" for p in settings.outbox.glob("*") if p.is_dir())
    per_channel = f" ; un dossier par canal : {', '.join(folders)}" if folders else ""
    console.print(f"\narchive : {settings.database_url}")
    console.print(f"boîte d'envoi (digests, alertes{per_channel}) : {settings.outbox}")
    console.print(f"calendrier (échéances, dates d'application) : {ics}")
    console.print("\nPour continuer sur cette archive (à copier-coller) :")
    veille = shlex.join(invoked_as())
    for line in (
        f"export VEILLE_HOME={shlex.quote(str(home))} VEILLE_CONFIG={shlex.quote(str(home / 'veille.toml'))}",
        f"{veille} search 'dispositifs médicaux'",
        f"{veille} serve    # l'atelier web",
    ):
        console.print(f"  {escape(line)}", soft_wrap=True, highlight=False)


def invoked_as() -> list[str]:
    """How the person started veille, so that a printed command works when pasted: ``veille`` when it is on
    PATH, else the path typed (``.venv/bin/veille``), else ``python -m veille``."""
    argv0 = sys.argv[0]
    if argv0.endswith("__main__.py"):
        return [sys.executable, "-m", "veille"]
    on_path = shutil.which("veille")
    if on_path and Path(on_path).resolve() == Path(argv0).resolve():
        return ["veille"]
    return [argv0]
