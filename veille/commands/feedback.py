"""``veille feedback add | undo | list``: an analyst's verdict on a notice's label (``nlp.verdicts``)."""

from __future__ import annotations

import getpass

import typer

from veille.commands.base import console, fail, state

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).

feedback_app = typer.Typer(
    help="Avis des analystes sur les thématiques d'une notice (définitifs pour cette notice).", no_args_is_help=True
)
VERDICTS = {"right": True, "wrong": False}


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")


def _check(notice_id: int, label: str) -> None:
    from core.profiles import load_labels
    from storage.db import session_scope
    from storage.models import Notice

    labels = load_labels(state.settings)
    if label not in labels:
        fail(f"thématique inconnue {label!r} (le profil a : {', '.join(labels)})")
    with session_scope(state.engine()) as s:
        if s.get(Notice, notice_id) is None:
            fail(f"aucune notice d'id {notice_id}")


@feedback_app.command("add")
def add_cmd(
    notice_id: int = typer.Argument(..., metavar="ID", help="L'id de la notice."),
    label: str = typer.Argument(..., metavar="THÉMATIQUE", help="La thématique, par ex. daqss."),
    verdict: str = typer.Argument(
        ..., metavar="AVIS", help="right (la thématique s'applique) ou wrong (elle ne s'applique pas)."
    ),
    user: str | None = typer.Option(None, "--user", help="Qui décide (défaut : le nom de connexion)."),
    comment: str | None = typer.Option(None, "--comment", help="Un commentaire."),
) -> None:
    """Enregistrer un avis : il l'emporte sur la sélection par le score pour cette notice et nourrit l'entraînement."""
    from nlp.verdicts import record
    from storage.db import session_scope
    from storage.feedback import describe

    if verdict not in VERDICTS:
        fail(f"avis {verdict!r} : right ou wrong")
    _check(notice_id, label)
    with session_scope(state.engine(), write=True) as s:
        v = record(s, notice_id, label, VERDICTS[verdict], user or getpass.getuser(), comment)
    console.print(f"notice {notice_id}, {label} : {describe(v.as_dict())}", markup=False, highlight=False)


@feedback_app.command("undo")
def undo_cmd(
    notice_id: int = typer.Argument(..., metavar="ID", help="L'id de la notice."),
    label: str = typer.Argument(..., metavar="THÉMATIQUE", help="La thématique dont retirer l'avis."),
) -> None:
    """Retirer l'avis en vigueur sur une thématique d'une notice : le score décide de nouveau (ou l'avis précédent)."""
    from nlp.verdicts import undo
    from storage.db import session_scope
    from storage.feedback import describe

    _check(notice_id, label)
    with session_scope(state.engine(), write=True) as s:
        gone, now = undo(s, notice_id, label)
    if gone is None:
        fail(f"la notice {notice_id} n'a pas d'avis sur {label}")
    then = f"verdict en force : {describe(now.as_dict())}" if now else "le score décide de nouveau"
    msg = f"notice {notice_id}, {label} : verdict retiré ({describe(gone.as_dict())}) ; {then}"
    console.print(msg, markup=False, highlight=False)


@feedback_app.command("list")
def list_cmd(notice_id: int = typer.Argument(..., metavar="ID", help="L'id de la notice.")) -> None:
    """Les avis en vigueur sur une notice."""
    from storage.feedback import describe, verdicts_in_force
    from storage.reader import reading

    with reading(state.archive()) as r:  # sqlite3 alone on a SQLite archive: a quick answer
        verdicts = verdicts_in_force(r, [notice_id])
    for (_, label), v in sorted(verdicts.items()):
        console.print(f"{label} : {describe(v.as_dict())}", markup=False, highlight=False)
    if not verdicts:
        console.print(f"notice {notice_id} : aucun avis", markup=False)
