"""``veille digest`` and ``veille deliveries``.

The commands import what they use inside their bodies, on purpose: ``veille --help`` and every other
command load this module, and must not pay for the alerts stage (start-up speed, docs/benchmarks.md).
"""

from __future__ import annotations

from datetime import date

import typer
from rich.markup import escape
from rich.table import Table

from core.dates import paris_time
from core.errors import ConfigError
from veille.commands.base import _date, check_labels, console, fail, safe, state
from veille.commands.cycle import in_progress

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).

calendar_app = typer.Typer(
    help="Le calendrier des échéances (iCalendar) et les jetons de ses flux.", invoke_without_command=True
)
token_app = typer.Typer(help="Jetons secrets des flux de calendrier de l'atelier.", no_args_is_help=True)
calendar_app.add_typer(token_app, name="token")


def register(app: typer.Typer) -> None:
    app.command("digest")(digest_cmd)
    app.command("deliveries")(deliveries_cmd)
    app.command("reminders")(reminders_cmd)
    app.add_typer(calendar_app, name="calendar")


def reminders_cmd() -> None:
    """Envoyer les rappels d'échéance dus aujourd'hui (N jours ouvrés avant chaque échéance)."""
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
        console.print(f"[red]échec :[/red] {escape(e)}", highlight=False)
    console.print(
        f"rappels : {_n(stats.messages, 'message')} envoyé(s) ({stats.sent} notice(s) × destinataire) ; "
        f"en échec {stats.failed}"
    )


@calendar_app.callback()
def calendar_cmd(
    ctx: typer.Context,
    label: str | None = typer.Option(None, "--label", "-l", help="Seulement les événements de cette thématique."),
    ics: str | None = typer.Option(None, "--ics", help="Écrire le calendrier dans ce fichier .ics (défaut : liste)."),
) -> None:
    """Échéances des consultations, projets d'actes et appels à financement, et dates d'application des actes suivis."""
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
                fail(f"--ics : impossible d'écrire {ics} : {exc.strerror}")
            console.print(f"{_n(data.count(b'BEGIN:VEVENT'), 'événement')} écrit(s) dans {escape(ics)}")
            return
        evs = events(state.engine(), state.settings, label)
    except ConfigError as exc:
        fail(str(exc))
    table = Table(expand=True)
    for col in ("date", "jusqu'au", "événement", "thématiques"):
        table.add_column(col, overflow="fold")
    for e in evs:
        until = (e.end.fromordinal(e.end.toordinal() - 1)).isoformat() if e.end else ""
        table.add_row(e.start.isoformat(), until, safe(e.summary), escape(", ".join(e.labels)))
    console.print(table)
    console.print(_n(len(evs), "événement"))


@token_app.command("create")
def token_create(
    label: str = typer.Option("all", "--label", "-l", help="Le flux : une thématique, ou 'all'."),
    note: str | None = typer.Option(None, "--note", help="À qui il est destiné."),
) -> None:
    """Un nouveau secret pour un flux de calendrier (affiché une fois) : /calendar/<label>.ics?token=..."""
    from storage.calendar_tokens import ALL, create_token

    check_labels([label], alternative=ALL)
    tid, token = create_token(state.engine(), label, note)
    web = state.settings.web
    console.print(f"jeton {tid} du flux {escape(label)} (affiché une seule fois, conservez-le) :")
    # One unbroken line each: they are copied into a calendar client.
    console.print(token, soft_wrap=True, highlight=False)
    console.print(
        f"http://{web.host}:{web.port}/calendar/{escape(label)}.ics?token={token}", soft_wrap=True, highlight=False
    )


@token_app.command("revoke")
def token_revoke(
    token: str = typer.Argument(..., metavar="JETON", help="Le jeton, ou son id (veille calendar token list)."),
) -> None:
    """Révoquer un jeton de flux de calendrier : son adresse cesse aussitôt de fonctionner."""
    from storage.calendar_tokens import revoke_token

    if not revoke_token(state.engine(), token):
        fail("aucun jeton actif avec cet id ou cette valeur")
    console.print("jeton révoqué")


@token_app.command("list")
def token_list() -> None:
    """Jetons des flux de calendrier (ids, flux, notes ; jamais les secrets)."""
    from storage.calendar_token_list import tokens

    found = tokens(state.archive())  # sqlite3 alone on a SQLite archive: a quick answer
    if not found:
        console.print("aucun jeton (veille calendar token create pour en créer un)")
        return
    table = Table()
    for col in ("id", "flux", "note", "créé", "révoqué"):
        table.add_column(col)
    for t in found:
        revoked = paris_time(t.revoked_at, short=True)
        table.add_row(str(t.id), escape(t.feed), escape(t.note or ""), paris_time(t.created_at, short=True), revoked)
    console.print(table)


def _n(n: int, word: str, many: str | None = None) -> str:
    """``0 message``, ``1 message``, ``2 messages`` (French: the singular up to 1)."""
    return f"{n} {word if n <= 1 else many or word + 's'}"


def digest_cmd(
    label: str | None = typer.Option(None, "--label", "-l", help="Seulement cette thématique (un digest en plus)."),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Couvrir les éléments vus pour la première fois par la veille depuis AAAA-MM-JJ (pas leur date de "
        "publication), au lieu de ceux depuis le dernier digest de chaque destinataire.",
    ),
    preview: str | None = typer.Option(
        None,
        "--preview",
        metavar="DATE",
        help="Montrer ce que contenaient les digests du AAAA-MM-JJ (depuis la boîte d'envoi, même envoyés) ou, "
        "pour aujourd'hui, ce qu'ils contiendraient. N'envoie jamais.",
    ),
    send: bool = typer.Option(False, "--send/--dry-run", help="Envoyer (défaut : montrer ce qui serait envoyé)."),
) -> None:
    """Composer les digests du jour ; les montrer (--dry-run, par défaut) ou les envoyer (--send)."""
    from alerts import send_digests
    from alerts.jobs import preview_digests

    check_labels([label] if label else [])
    if preview and (send or since):
        fail("--preview montre les digests d'un jour tels quels : ni --send ni --since avec lui")
    start = _date(since, "--since")
    try:
        if send:
            stats = _send_digests(label, start)
        elif preview:  # a preview and a dry run only read: the quick way (state.archive), and no lock
            stats = preview_digests(state.archive(), state.settings, _date(preview, "--preview"), label)
        else:
            stats = send_digests(state.archive(), state.settings, label=label, since=start, dry_run=True)
    except ConfigError as exc:
        fail(str(exc))
    for p in stats.previews:
        console.rule(f"{escape(p.channel)} → {escape(p.recipient)} ({_n(p.items, 'élément')})")
        console.print(escape(p.subject), style="bold", highlight=False)
        console.print(escape(p.text), highlight=False)
    for note in stats.notes:
        console.print(escape(note), style="dim", highlight=False)
    for e in stats.errors:
        console.print(f"[red]échec :[/red] {escape(e)}", highlight=False)
    if preview:
        console.print(
            f"{_n(len(stats.previews), 'message')} : {stats.sent} notice(s) × destinataire envoyée(s), "
            f"{stats.pending} en attente, {stats.failed} en échec, {stats.uncertain} incertaine(s)"
        )
        return
    what = "enverrait" if not send else "envoyé(s)"
    count = stats.pending if not send else stats.sent
    messages = len(stats.previews) if not send else stats.messages
    head = f"{what} {_n(messages, 'message')}" if not send else f"{_n(messages, 'message')} {what}"
    console.print(
        f"{head} ({count} notice(s) × destinataire) ; {stats.failed} en échec, {stats.uncertain} incertain(s)"
    )


def _send_digests(label: str | None, since: date | None):  # alerts.delivery.DeliveryStats
    from alerts import send_digests
    from storage.lock import RunInProgress
    from storage.runs import exclusive

    engine = state.engine()
    try:
        with exclusive(engine):
            return send_digests(engine, state.settings, label=label, since=since)
    except RunInProgress as exc:
        in_progress(exc)


def deliveries_cmd(
    failed: bool = typer.Option(False, "--failed", help="Seulement les envois en échec ou incertains."),
    retry: str | None = typer.Option(
        None, "--retry", help="Remettre ce lot en file (après avoir vérifié qu'il n'est pas arrivé)."
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Nombre d'envois affichés."),
) -> None:
    """La boîte d'envoi : les envois récents, avec la dernière erreur."""
    from core.names import PURPOSES
    from storage.deliveries import recent_deliveries
    from veille.commands.base import console, fail, safe, state, status_name, tr

    if retry:
        from alerts.outbox import retry as retry_batch  # the outbox's machinery only to queue again

        n = retry_batch(state.engine(), retry)
        if not n:
            fail(f"--retry : rien à remettre en file dans le lot {retry!r} (lot inconnu, ou rien en échec)")
        console.print(f"{_n(n, 'envoi')} du lot {escape(retry)} remis en file")
        return
    rows = recent_deliveries(state.archive(), limit, unsettled_only=failed)  # sqlite3 when it can: a quick answer
    table = Table()
    # Narrow terminals (80 columns): the batch (needed for --retry) only where something needs retrying, the
    # error only when a row has one, a day and a time on two lines.
    errors = any(r.last_error for r in rows)
    cols = ["id", "notice", "destinataire", "via", "état", "essais", "envoyé", *(["lot"] if failed else [])]
    for col in [*cols, *(["dernière erreur"] if errors else [])]:
        table.add_column(col, overflow="fold", max_width=10 if col == "envoyé" and console.width < 120 else None)
    for r in rows:
        color = {"sent": "green", "failed": "red", "uncertain": "yellow"}.get(r.status, "white")
        cells = [
            str(r.id),
            str(r.notice_id),
            escape(r.recipient),
            f"{r.channel}\n{tr(PURPOSES[r.purpose]) if r.purpose in PURPOSES else r.purpose}",
            f"[{color}]{status_name(r.status)}[/{color}]",
            str(r.attempts),
            paris_time(r.sent_at, short=True) if r.status == "sent" else "",
            *([escape(r.batch or "")] if failed else []),
            *([safe(r.last_error or "")] if errors else []),
        ]
        table.add_row(*cells)
    console.print(table)
    console.print(f"{_n(len(rows), 'envoi')} affiché(s)")
