"""``veille feedback add | undo | list``: an analyst's verdict on a notice's label (``nlp.verdicts``)."""

from __future__ import annotations

import getpass

import typer

from core.profiles import load_labels
from veille.commands.base import console, fail, state

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).

feedback_app = typer.Typer(
    help="Analysts' verdicts on a notice's labels (final for that notice).", no_args_is_help=True
)
VERDICTS = {"right": True, "wrong": False}


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")


def _check(notice_id: int, label: str) -> None:
    from storage.db import session_scope
    from storage.models import Notice

    labels = load_labels(state.settings)
    if label not in labels:
        fail(f"unknown label {label!r} (the profile has: {', '.join(labels)})")
    with session_scope(state.engine()) as s:
        if s.get(Notice, notice_id) is None:
            fail(f"no notice with id {notice_id}")


@feedback_app.command("add")
def add_cmd(
    notice_id: int = typer.Argument(..., help="The notice's id."),
    label: str = typer.Argument(..., help="The label, e.g. daqss."),
    verdict: str = typer.Argument(..., help="right (the label applies) or wrong (it does not)."),
    user: str | None = typer.Option(None, "--user", help="Who decides (default: the login name)."),
    comment: str | None = typer.Option(None, "--comment"),
) -> None:
    """Record a verdict: it overrides the score's selection for this notice and feeds training."""
    from nlp.verdicts import describe, record
    from storage.db import session_scope

    if verdict not in VERDICTS:
        fail(f"verdict {verdict!r}: use right or wrong")
    _check(notice_id, label)
    with session_scope(state.engine(), write=True) as s:
        v = record(s, notice_id, label, VERDICTS[verdict], user or getpass.getuser(), comment)
    console.print(f"notice {notice_id}, {label} : {describe(v.as_dict())}", markup=False, highlight=False)


@feedback_app.command("undo")
def undo_cmd(
    notice_id: int = typer.Argument(..., help="The notice's id."),
    label: str = typer.Argument(..., help="The label whose verdict to withdraw."),
) -> None:
    """Withdraw the verdict in force on a notice's label: the score decides again (or the verdict before)."""
    from nlp.verdicts import describe, undo
    from storage.db import session_scope

    _check(notice_id, label)
    with session_scope(state.engine(), write=True) as s:
        gone, now = undo(s, notice_id, label)
    if gone is None:
        fail(f"notice {notice_id} has no verdict on {label}")
    then = f"verdict en force : {describe(now.as_dict())}" if now else "le score décide de nouveau"
    msg = f"notice {notice_id}, {label} : verdict retiré ({describe(gone.as_dict())}) ; {then}"
    console.print(msg, markup=False, highlight=False)


@feedback_app.command("list")
def list_cmd(notice_id: int = typer.Argument(..., help="The notice's id.")) -> None:
    """The verdicts in force on a notice."""
    from nlp.verdicts import describe, latest
    from storage.db import session_scope

    with session_scope(state.engine()) as s:
        verdicts = latest(s, [notice_id])
    for (_, label), v in sorted(verdicts.items()):
        console.print(f"{label} : {describe(v.as_dict())}", markup=False, highlight=False)
    if not verdicts:
        console.print(f"notice {notice_id}: no verdict", markup=False)
