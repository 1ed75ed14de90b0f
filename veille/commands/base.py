"""The `veille` app object, the helpers every command module shares, and the archive commands (search, config, db)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.errors import UserError
from veille.commands.french import FrenchGroup

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).

if TYPE_CHECKING:  # pydantic and the config models load on first use: `veille --help` is quicker
    from core.config import Settings


class VeilleGroup(FrenchGroup):
    """Every command's user errors (config, rules, archive, query) end as one line, never a traceback."""

    def invoke(self, ctx):  # click's signature
        try:
            return super().invoke(ctx)
        except UserError as exc:
            fail(str(exc))


# No --install-completion / --show-completion: shell completion is set up once by the operator (docs/decisions.md).
app = typer.Typer(
    help="Veille réglementaire européenne et alertes de la HAS.",
    no_args_is_help=True,
    cls=VeilleGroup,
    add_completion=False,
)
db_app = typer.Typer(help="La base de l'archive.", no_args_is_help=True)
app.add_typer(db_app, name="db")


class MessageConsole(Console):
    """A message (plain text) is printed on one line whatever the terminal width: a path, an id or a URL in it is
    never cut, and what scripts and tests read does not depend on COLUMNS. Tables and other renderables still fit
    the width."""

    def print(self, *objects: object, soft_wrap: bool | None = None, **kwargs: object) -> None:  # type: ignore[override]
        if soft_wrap is None and all(isinstance(o, str) for o in objects):
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)


console = MessageConsole()
err = MessageConsole(stderr=True)


@dataclass
class State:
    config: Path | None = None
    profile: str | None = None
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from core.config import ConfigError, check_profile, load_settings

            try:
                self._settings = load_settings(self.config)
            except ConfigError as exc:
                fail(str(exc))
            if self.profile:
                try:
                    check_profile(self.profile, self._settings.profiles_dir)
                except ValueError as exc:
                    fail(f"--profile : {exc}")
                self._settings.profile = self.profile
        return self._settings

    def engine(self):  # sqlalchemy Engine, imported lazily
        from storage.db import ArchiveUnavailable, open_archive

        try:
            return open_archive(self.settings.database_url)
        except ArchiveUnavailable as exc:
            fail(str(exc))

    def archive(self):  # storage.reader.Archive
        """The archive for reading: through the standard library's sqlite3 when it is a SQLite file at the newest
        schema (no SQLAlchemy to import: a quick answer), else the engine, which creates and migrates."""
        from storage.reader import ArchiveUnavailable, fast_archive

        try:
            db = fast_archive(self.settings.database_url)
        except ArchiveUnavailable as exc:
            fail(str(exc))
        return db if db is not None else self.engine()


state = State()


def safe(value: object, limit: int | None = None) -> str:
    """Text from the web for the terminal: no control characters (an ANSI escape in a title could clear
    the screen or plant a link), one line, Rich markup escaped."""
    from alerts.escape import clean

    return escape(clean(value, limit))


def tr(message: str, **params: object) -> str:
    """A message of the shared catalogues (``core/locale``, English message ids) in French, the CLI's language
    (docs/decisions.md, *The CLI's language*); ``%(name)s`` filled from ``params``."""
    from core.catalog import translations

    text = translations("fr").gettext(message)
    return text % params if params else text


def status_name(code: str) -> str:
    """A delivery or run status in French (``sent`` -> envoyé); an unknown code as itself."""
    from core.names import STATUSES

    return tr(STATUSES[code]) if code in STATUSES else code


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error and exit; no stack trace for a user's mistake."""
    err.print(f"[red]erreur :[/red] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.callback()
def main(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Fichier de configuration (défaut : $VEILLE_HOME/veille.toml)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", "-p", help="Nom du profil (défaut : celui de la configuration, has)."
    ),
) -> None:
    state.config, state.profile = config, profile


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", metavar="RÉVISION")) -> None:
    """Appliquer les migrations Alembic (faites de toute façon à la première ouverture)."""
    from storage.db import ArchiveUnavailable, display_url, upgrade

    try:
        upgrade(state.settings.database_url, revision)
    except ArchiveUnavailable as exc:
        fail(str(exc))
    console.print(f"archive {display_url(state.settings.database_url)} : révision {revision}")


@app.command("search")
def search_cmd(
    query: str = typer.Argument(
        "", metavar="REQUÊTE", help='Mots, "expressions", OR, -exclusion ; accents et flexions ignorés.'
    ),
    label: list[str] = typer.Option([], "--label", "-l", help="Thématique (étiquette du profil), répétable."),
    min_score: float | None = typer.Option(
        None, "--min-score", min=0.0, max=1.0, help="Score minimal de la thématique (avec --label)."
    ),
    source: list[str] = typer.Option([], "--source", help="Source (nom de la configuration), répétable."),
    doc_type: list[str] = typer.Option([], "--type", help="Type de document, répétable."),
    since: str | None = typer.Option(None, "--since", help="Publié depuis AAAA-MM-JJ."),
    until: str | None = typer.Option(None, "--until", help="Publié jusqu'au AAAA-MM-JJ."),
    sort: str = typer.Option("relevance", "--sort", help="relevance (pertinence) | date"),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Nombre de résultats affichés."),
    fmt: str = typer.Option(
        "table", "--format", "-f", help="table | csv | json (csv et json : tous les champs, sur la sortie standard)."
    ),
    exact: bool = typer.Option(False, "--exact", help="Mots tels qu'écrits : pas aussi dans l'autre langue."),
) -> None:
    """Recherche plein texte dans l'archive ; aussi par CELEX, numéro d'acte (2025/117), procédure ou ELI."""
    from storage.search import Filters, QueryError, export_csv, export_rows, search

    if sort not in ("relevance", "date"):
        fail("--sort : 'relevance' ou 'date'")
    if fmt not in ("table", "csv", "json"):
        fail(f"--format : {fmt!r} n'est pas table, csv ni json")
    check_labels(label)
    check_facets(source, doc_type)
    filters = Filters(
        labels=label,
        min_score=min_score,
        sources=source,
        doc_types=doc_type,
        date_from=_date(since, "--since"),
        date_to=_date(until, "--until"),
    )
    db = state.archive()
    try:
        result = search(db, query, filters, sort=sort, limit=limit, lexicon=None if exact else lexicon(db))
    except QueryError as exc:
        fail(str(exc))
    if fmt != "table":  # plain stdout, no Rich: a file for the analysts' notes
        rows = export_rows(result.hits)
        typer.echo(export_csv(rows) if fmt == "csv" else json.dumps(rows, ensure_ascii=False, indent=1), nl=False)
        return
    table = Table(show_lines=False, expand=True)
    table.add_column("id", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("titre · source · extrait", overflow="fold", ratio=1)  # the title gets the width
    table.add_column("thématiques", no_wrap=True)
    for h in result.hits:
        when = h.published_at.isoformat() if h.published_at else ""
        labels = "\n".join(f"{k} {v:.2f}" for k, v in sorted(h.labels.items(), key=lambda kv: -kv[1]))
        # Crawled text may contain Rich markup and terminal escapes: safe() neutralises both.
        text = f"{safe(h.title)}\n[cyan]{safe(h.source)}[/cyan] [dim]{safe(h.snippet_text)}[/dim]"
        table.add_row(str(h.notice_id), when, text, labels)
    if not result.hits:  # no empty table: the count says it
        console.print("aucune notice trouvée.")
        return
    console.print(table)
    more = "+" if result.total_is_lower_bound else ""
    plural = "s" if result.total > 1 or more else ""
    console.print(f"{result.total}{more} notice{plural} trouvée{plural} ; {len(result.hits)} affichée(s).")


def lexicon(db):  # storage.crosslang.Lexicon
    """The cross-language lexicon of the archive (learned here only if no run has since it changed). Read from the
    archive, it needs no spaCy: the rules (nlp, spaCy) are read only to relearn (a RulesError is one line)."""
    from storage.crosslang import lexicon as learned

    def rule_units(settings: Settings) -> list[tuple[str, str]]:
        from nlp.phrase_pairs import rule_units as units  # imported here: spaCy, only when relearning

        return units(settings)

    return learned(db, state.settings, rule_units)


def check_labels(labels: list[str], option: str = "--label", alternative: str | None = None) -> None:
    """A misspelt label would otherwise filter everything out and look like an empty archive.
    ``alternative``: a value the option also takes (the calendar feeds' ``all``)."""
    from core.config import ConfigError
    from core.profiles import load_labels

    try:
        known = load_labels(state.settings)
    except ConfigError as exc:
        fail(str(exc))
    for label in labels:
        if label not in known and label != alternative:
            also = f", ou {alternative!r}" if alternative else ""
            fail(
                f"{option} : thématique inconnue {label!r} (profil {state.settings.profile} : {', '.join(known)}{also})"
            )


def check_facets(sources: list[str], doc_types: list[str]) -> None:
    """An unknown --source or --type would match nothing and look like an empty archive: name the values that exist."""
    from core.config import difflib_close
    from storage.search import stored_values

    if not sources and not doc_types:
        return
    stored = {c: stored_values(state.archive(), c) for c in ("source", "doc_type")}
    known = {"--source": stored["source"] | {src.name for src in state.settings.sources}, "--type": stored["doc_type"]}
    for option, given in (("--source", sources), ("--type", doc_types)):
        for value in given:
            if value not in known[option]:
                names = ", ".join(sorted(known[option])) or "aucune pour l'instant"
                fail(f"{option} : valeur inconnue {value!r} (connues : {names}){difflib_close(value, known[option])}")


def _date(value: str | None, option: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} : pas une date AAAA-MM-JJ : {value!r}")


@app.command("config")
def config_cmd() -> None:
    """Valider la configuration, les thématiques et le routage du profil ; afficher où se trouvent les données."""
    from alerts.channels import check_options
    from alerts.config import load_routing
    from core.config import ConfigError, config_path
    from core.profiles import load_profile
    from storage.urls import display_url

    s = state.settings
    try:  # each file in force, refused in one `file:line: key: problem` line; no spaCy (a start-up under 0.5 s)
        profile = load_profile(s)
        routing = load_routing(s)
        kinds = check_options(config_path(state.config))
    except ConfigError as exc:
        fail(str(exc))
    console.print(f"profil : {s.profile}\ndossier : {s.home}\narchive : {display_url(s.database_url)}")
    console.print(f"boîte d'envoi : {s.outbox}\nmodèles : {s.models}\nsources : {len(s.sources)}")
    console.print(f"canaux : {', '.join(kinds)}")
    console.print(f"fichiers du profil : {profile.path}, {profile.file('routing.toml')}")
    console.print("thématiques (id : nom -> destinataires) :")
    for label in profile.labels.values():
        route = routing.labels.get(label.id)
        to = [*route.email, *route.slack, *(f"webhook:{h}" for h in route.webhooks)] if route else []
        to += [f"webhook:{name}" for name, hook in routing.webhooks.items() if label.id in hook.labels]
        # one line each, never cut: the addresses are what people check here
        console.print(
            f"  {label.id}: {escape(label.name)} -> {escape(', '.join(dict.fromkeys(to))) or '-'}", soft_wrap=True
        )
