"""``veille serve`` and ``veille users``: run the workbench, manage its accounts."""

from __future__ import annotations

import contextlib
import gc
import sys

import typer

from core.dates import paris_time
from veille.commands.base import console, fail, state
from veille.commands.french import ask_twice

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).

users_app = typer.Typer(help="Comptes de l'atelier web.", no_args_is_help=True)


def serve(
    host: str | None = typer.Option(
        None, "--host", help="Adresse d'écoute (défaut : \\[web] host dans veille.toml, sinon 127.0.0.1)."
    ),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port (défaut : \\[web] port dans veille.toml, sinon 8000)."
    ),
) -> None:
    """Lancer l'atelier web des analystes."""
    import uvicorn

    from web.app import create_app

    settings = state.settings
    app = create_app(settings, state.engine())
    host, port = host or settings.web.host, port or settings.web.port
    console.print(f"atelier sur http://{host}:{port}/ (Ctrl-C pour arrêter)")
    _load_nlp(settings)
    # What start-up loaded (spaCy, SQLAlchemy, templates) lives as long as the server: keep it out of
    # the cyclic GC, whose full passes over it otherwise add ~60 ms pauses to searches.
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


def _load_nlp(settings) -> None:  # core.config.Settings
    """Load the rules and the model now, not on the first notice or dashboard page (about 3 s)."""
    from nlp.classify import versions_in_force
    from nlp.rules import RulesError
    from web.rules_worker import warm

    with contextlib.suppress(RulesError):  # no good rules at all: the rules page shows why
        versions_in_force(settings)
    warm()  # the worker that runs rule checks and previews (web/rules_worker.py)


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., metavar="NOM", help="Nom de connexion."),
    role: str = typer.Option(..., "--role", help="reader (lecture seule) ou analyst (avis, règles)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Lire le mot de passe sur l'entrée standard."),
    no_password: bool = typer.Option(
        False, "--no-password", help="Sans mot de passe : seulement pour le mode en-tête de confiance."
    ),
) -> None:
    """Créer un compte (ou changer son rôle, son mot de passe)."""
    from storage.web_users import ROLES
    from web.auth import add_user, check_user_name

    if role not in ROLES:
        fail(f"--role : {' ou '.join(ROLES)}, pas {role!r}")
    try:
        check_user_name(name)  # before asking for a password
    except ValueError as exc:
        fail(str(exc))
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not no_password:
        password = ask_twice("Mot de passe", "Confirmez le mot de passe")
    if password is not None and len(password) < 8:
        fail("le mot de passe doit avoir au moins 8 caractères")
    try:
        user = add_user(state.engine(), name, role, password)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"utilisateur {user.name} : {user.role}" + ("" if password is not None else " (sans mot de passe)"))


@users_app.command("remove")
def users_remove(name: str = typer.Argument(..., metavar="NOM", help="Nom de connexion.")) -> None:
    """Supprimer un compte : ses sessions prennent fin aussitôt (ses avis gardent son nom)."""
    from web.auth import remove_user

    if not remove_user(state.engine(), name):
        fail(f"aucun utilisateur {name!r}")
    console.print(f"utilisateur {name} supprimé ; ses sessions sont closes", markup=False, highlight=False)


@users_app.command("list")
def users_list() -> None:
    """Lister les comptes et leurs rôles."""
    from storage.web_user_list import accounts

    users = accounts(state.archive())  # sqlite3 alone on a SQLite archive: a quick answer
    for u in users:
        last = paris_time(u.last_login, short=True) or "jamais"
        console.print(f"{u.name}\t{u.role}\tdernière connexion {last}", markup=False, highlight=False)
    if not users:
        console.print("aucun compte (veille users add NOM pour en créer un)")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(users_app, name="users")
